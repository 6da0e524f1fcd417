"""The Docker stack: real containers for PostgreSQL, Redis, the fault proxy and the service, broken on purpose
and removed afterwards. As tests/integration/test_stack.py does for the local stack, only what the stack
guarantees is asserted: where things answer (127.0.0.1 only), that faults reach what they should, and that
nothing outlives the stack, even a test process that was killed.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import docker
import httpx
import pytest
import redis

from chaos.docker_stack import LABEL_DIRECTORY, LABEL_OWNER, LABEL_STACK, DockerStack, remove_orphans
from chaos.stack import DEPENDENCIES, make_stack, resolve_backend
from chaos.toxiproxy_client import ToxiproxyClient
from tests.stack_probes import (
    assert_database_and_service_back,
    assert_postgres_latency_slows_reads_and_recovers,
    assert_redis_stops_and_restarts,
    holds_within,
    ingest,
    refuses,
)

REPO = Path(__file__).resolve().parents[2]
EVENT = {"source": "docker-stack-test", "type": "order.placed", "occurred_at": "2026-11-26T10:00:00Z"}


@pytest.fixture(scope="module")
def client() -> Iterator[docker.DockerClient]:
    engine = docker.from_env()
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def stack() -> Iterator[DockerStack]:
    with DockerStack(workers=2, progress=print) as running:
        yield running


@pytest.fixture
def healthy(stack: DockerStack) -> Iterator[DockerStack]:
    """The stack, with its dependencies running and its proxies clean again after the test."""
    yield stack
    for name in DEPENDENCIES:
        container = stack.container(name)
        container.reload()
        if container.status == "paused":
            stack.resume_dependency(name)
        elif container.status != "running":
            stack.start_dependency(name)
    stack.toxiproxy().reset()


@pytest.fixture
def api(stack: DockerStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.api_url, headers={"X-API-Key": stack.api_key}, timeout=15) as session:
        yield session


def _stack_resources(client: docker.DockerClient, stack_id: str) -> tuple[list[Any], list[Any]]:
    label = f"{LABEL_STACK}={stack_id}"
    return client.containers.list(all=True, filters={"label": label}), client.networks.list(filters={"label": label})


def test_every_part_is_a_container_on_the_stack_network_published_on_loopback_only(
    stack: DockerStack, client: docker.DockerClient, api: httpx.Client
) -> None:
    containers, networks = _stack_resources(client, stack.id)
    assert len(networks) == 1
    network = networks[0].name
    roles = {container.labels["io.executable-runbook.role"]: container for container in containers}
    assert set(roles) == {"postgres", "redis", "proxy", "api"}  # the one-shot migration is gone
    for role, container in roles.items():
        attached = container.attrs["NetworkSettings"]["Networks"]
        assert set(attached) == {network}, role
        assert role in attached[network]["Aliases"], role
        bindings = container.attrs["HostConfig"]["PortBindings"]
        assert bindings, role
        for binding in (entry for entries in bindings.values() for entry in entries):
            assert binding["HostIp"] == "127.0.0.1", (role, binding)
    endpoints = stack.endpoints
    for url in (endpoints.api_url, endpoints.proxy_api_url, endpoints.database_url, endpoints.redis_url):
        assert "@127.0.0.1:" in url or "://127.0.0.1:" in url
    # The service reaches its dependencies through the proxy container, by name.
    assert "@proxy:15432/" in stack.service_env["DATABASE_URL"]
    assert stack.service_env["REDIS_URL"] == "redis://proxy:16379/0"
    proxies = stack.toxiproxy().proxies()
    assert {name: proxy.upstream for name, proxy in proxies.items()} == {
        "postgres": "postgres:5432",
        "redis": "redis:6379",
    }
    event_id = ingest(api, EVENT)
    assert api.get(f"/api/v1/events/{event_id}").json()["id"] == event_id


def test_the_service_runs_the_image_as_a_non_root_user(stack: DockerStack) -> None:
    container = stack.container("api")
    assert container.attrs["Config"]["User"] == "10001:10001"
    result = container.exec_run(["id", "-u"])
    assert isinstance(result.output, bytes)
    assert result.output.decode().strip() == "10001"


async def test_the_direct_and_proxied_database_urls_reach_the_migrated_database(stack: DockerStack) -> None:
    for url in (stack.database_url, stack.proxied_database_url):
        connection = await asyncpg.connect(url)
        try:
            assert await connection.fetchval("SELECT count(*) FROM alembic_version") == 1
        finally:
            await connection.close()


def test_latency_on_the_postgres_proxy_slows_reads_and_recovers(healthy: DockerStack, api: httpx.Client) -> None:
    assert_postgres_latency_slows_reads_and_recovers(healthy.proxy("postgres"), api, EVENT)


async def test_a_paused_database_hangs_until_resumed(healthy: DockerStack) -> None:
    connection = await asyncpg.connect(healthy.database_url)
    healthy.pause_dependency("postgres")
    try:
        container = healthy.container("postgres")
        container.reload()
        assert container.status == "paused"
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(connection.fetchval("SELECT 1"), 0.5)
    finally:
        healthy.resume_dependency("postgres")
    await connection.close(timeout=5)
    await assert_database_and_service_back(healthy)


def test_dependencies_stop_crash_and_come_back_on_the_same_port(healthy: DockerStack, api: httpx.Client) -> None:
    event_id = ingest(api, EVENT)

    healthy.kill_dependency("postgres")
    assert refuses(healthy.database_url)
    healthy.container("postgres").reload()
    assert healthy.container("postgres").attrs["State"]["ExitCode"] == 137  # SIGKILL
    healthy.start_dependency("postgres")
    assert holds_within(lambda: api.get(f"/api/v1/events/{event_id}").status_code == 200)  # a crash keeps commits

    assert_redis_stops_and_restarts(healthy)


def test_dependency_operations_are_safe_in_any_state(healthy: DockerStack) -> None:
    """As on the local stack (drills' rollbacks resume and start whatever they touched)."""

    def status() -> str:
        container = healthy.container("redis")
        container.reload()
        return str(container.status)

    healthy.resume_dependency("redis")  # not paused
    healthy.start_dependency("redis")  # already running
    assert status() == "running"
    healthy.pause_dependency("redis")
    healthy.pause_dependency("redis")
    assert status() == "paused"
    healthy.stop_dependency("redis")  # a paused server is stopped too
    assert status() == "exited"
    healthy.kill_dependency("redis")  # already down
    healthy.resume_dependency("redis")
    healthy.stop_dependency("redis")
    assert status() == "exited"
    healthy.start_dependency("redis")
    assert status() == "running"
    assert redis.Redis.from_url(healthy.redis_url, socket_timeout=2).ping()
    healthy.pause_dependency("redis")
    healthy.kill_dependency("redis")  # a paused server can be killed
    assert status() == "exited"
    healthy.restart_dependency("redis")
    assert redis.Redis.from_url(healthy.proxied_redis_url, socket_timeout=2).ping()


def test_restart_service_rolls_out_a_new_environment_in_a_new_container(
    healthy: DockerStack, api: httpx.Client
) -> None:
    api_url = healthy.api_url
    old_id = healthy.service.id
    healthy.restart_service(env_overrides={"APP_VERSION": "9.9.9-rollout"})
    assert healthy.api_url == api_url  # same port
    assert healthy.service.id != old_id
    assert httpx.get(f"{api_url}/health/live").json()["version"] == "9.9.9-rollout"
    healthy.restart_service()
    assert httpx.get(f"{api_url}/health/live").json()["version"] == "9.9.9-rollout"  # the rollout stays
    assert healthy.service_env["APP_VERSION"] == "9.9.9-rollout"
    ingest(api, EVENT)
    log = Path(healthy.endpoints.service_log or "").read_text()
    assert '"route":"/api/v1/events"' in log  # the service's JSON log lines reach the host-side file


def test_sigterm_drains_the_service_container_and_it_exits_0(healthy: DockerStack) -> None:
    service = healthy.service
    service.terminate()
    assert service.wait(30) == 0
    assert not service.running
    healthy.restart_service()
    assert httpx.get(f"{healthy.api_url}/health/live").status_code == 200


def test_the_service_image_refuses_to_start_without_its_secrets(stack: DockerStack) -> None:
    env = {**os.environ, **stack.service_env}
    env.pop("API_KEY")
    result = subprocess.run(
        [*stack.service_command, "--bind", "127.0.0.1:0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "refusing to start" in result.stderr
    assert "API_KEY: is required" in result.stderr
    assert stack.service_env["JWT_SECRET"] not in result.stderr + result.stdout


def test_a_failing_block_leaves_no_container_network_or_directory(client: docker.DockerClient) -> None:
    seen: dict[str, Any] = {}

    def a_test_that_fails() -> None:
        with DockerStack() as stack:
            seen["id"], seen["directory"], seen["endpoints"] = stack.id, stack.directory, stack.endpoints
            containers, networks = _stack_resources(client, stack.id)
            assert len(containers) == 4
            assert len(networks) == 1
            raise RuntimeError("the test failed")

    with pytest.raises(RuntimeError, match="the test failed"):
        a_test_that_fails()
    assert _stack_resources(client, seen["id"]) == ([], [])
    assert not seen["directory"].exists()
    endpoints = seen["endpoints"]
    for url in (endpoints.api_url, endpoints.proxy_api_url, endpoints.database_url, endpoints.redis_url):
        assert refuses(url)
    assert not ToxiproxyClient(endpoints.proxy_api_url).running()


def test_what_a_killed_process_left_is_removed_by_the_next_stack(client: docker.DockerClient) -> None:
    script = (
        "import time\nfrom chaos.docker_stack import DockerStack\n"
        "stack = DockerStack().start()\nprint(stack.id, flush=True)\ntime.sleep(600)\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        assert process.stdout is not None
        stack_id = process.stdout.readline().strip()
        assert stack_id, "the child did not start its stack"
        containers, _ = _stack_resources(client, stack_id)
        assert len(containers) == 4
        assert all(c.labels[LABEL_OWNER].split("/")[1] == str(process.pid) for c in containers)
        directory = Path(containers[0].labels[LABEL_DIRECTORY])
        assert directory.is_dir()
    finally:
        process.send_signal(signal.SIGKILL)  # no atexit, no cleanup: what a crashed test run leaves
        process.wait()
    assert len(_stack_resources(client, stack_id)[0]) == 4
    assert remove_orphans(client) >= 5  # what every new DockerStack does first
    assert _stack_resources(client, stack_id) == ([], [])
    assert not directory.exists()


def test_make_stack_chooses_the_backend() -> None:
    assert resolve_backend("local")[0] == "local"
    assert resolve_backend("docker")[0] == "docker"
    chosen, reason = resolve_backend("auto")
    assert chosen == "docker", reason  # the engine answers and the images are present (make docker-test)
    assert isinstance(make_stack("auto"), DockerStack)
    with pytest.raises(ValueError, match="unknown stack backend"):
        resolve_backend("kubernetes")


def test_stack_up_with_the_docker_backend_prints_the_endpoints_and_removes_everything_on_sigterm(
    client: docker.DockerClient,
) -> None:
    command = [sys.executable, "-m", "chaos", "stack", "up", "--backend", "docker", "--port", "0", "--proxy-port", "0"]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    output: list[str] = []
    try:
        deadline = time.monotonic() + 120
        while not any("Ctrl-C stops everything" in line for line in output):
            assert time.monotonic() < deadline, "".join(output)
            line = process.stdout.readline()
            assert line, "".join(output)
            output.append(line)
        text = "".join(output)
        assert "backend: Docker containers (asked for)" in text
        api_url = re.search(r"API\s+(http://127\.0\.0\.1:\d+)", text).group(1)  # type: ignore[union-attr]
        key = re.search(r"API key\s+(\S+)", text).group(1)  # type: ignore[union-attr]
        stack_id = re.search(r"network rb-stack-(\w+)", text).group(1)  # type: ignore[union-attr]
        assert httpx.post(f"{api_url}/api/v1/events", json=EVENT, headers={"X-API-Key": key}).status_code == 201
        assert len(_stack_resources(client, stack_id)[0]) == 4
        process.send_signal(signal.SIGTERM)
        rest, _ = process.communicate(timeout=90)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, rest
    assert "nothing left running" in rest
    assert _stack_resources(client, stack_id) == ([], [])
    assert refuses(api_url)
