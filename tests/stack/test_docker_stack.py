"""The Docker stack: real containers for PostgreSQL, Redis, the fault proxy and the service, broken on purpose
and removed afterwards.

What every backend guarantees runs here as `TestDockerStackContract` (tests/stack/contract.py); the rest is
what only containers have: the stack's network and loopback-only port bindings, the image's user and start-up
checks, labels that let the next stack remove what a killed test process left, and `chaos stack up --backend
docker`.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import docker
import httpx
import pytest

from chaos.stack import make_stack, resolve_backend
from chaos.stack.base import Capability, Dependency, NotCapable
from chaos.stack.docker import LABEL_DIRECTORY, LABEL_OWNER, LABEL_STACK, DockerStack, remove_orphans
from tests.stack.contract import (
    RunningService,
    StackContract,
    assert_nothing_answers,
    assert_sigterm_stops_everything,
    stack_up,
)
from tests.stack.probes import refuses

pytestmark = pytest.mark.docker

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


def _stack_resources(client: docker.DockerClient, stack_id: str) -> tuple[list[Any], list[Any]]:
    label = f"{LABEL_STACK}={stack_id}"
    return client.containers.list(all=True, filters={"label": label}), client.networks.list(filters={"label": label})


def test_every_part_is_a_container_on_the_stack_network_published_on_loopback_only(
    stack: DockerStack, client: docker.DockerClient
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
    # The service reaches its dependencies through the proxy container, by name.
    assert "@proxy:15432/" in stack.service_env["DATABASE_URL"]
    assert stack.service_env["REDIS_URL"] == "redis://proxy:16379/0"
    proxies = stack.toxiproxy().proxies()
    assert {name: proxy.upstream for name, proxy in proxies.items()} == {
        "postgres": "postgres:5432",
        "redis": "redis:6379",
    }


def test_the_service_runs_the_image_as_a_non_root_user(stack: DockerStack) -> None:
    container = stack.container("api")
    assert container.attrs["Config"]["User"] == "10001:10001"
    result = container.exec_run(["id", "-u"])
    assert isinstance(result.output, bytes)
    assert result.output.decode().strip() == "10001"


class TestDockerStackContract(StackContract[DockerStack]):
    declared_capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {"proxy-faults", "dependency-process", "service-reconfigure"}
    )

    def dependency_state(self, stack: DockerStack, name: Dependency) -> str:
        container = stack.container(name)
        container.reload()
        return str(container.status)

    def assert_crashed(self, stack: DockerStack, name: Dependency) -> None:
        container = stack.container(name)
        container.reload()
        assert container.attrs["State"]["ExitCode"] == 137  # SIGKILL

    def service(self, stack: DockerStack) -> RunningService:
        return stack.service

    def service_instance(self, stack: DockerStack) -> object:
        return stack.service.id


def test_without_deploy_checkout_the_service_cannot_move_to_another_checkout(stack: DockerStack) -> None:
    running = stack.service.id
    with pytest.raises(NotCapable, match="cannot deploy-checkout"):
        stack.rolling_restart_service(code_root=REPO)
    with pytest.raises(NotCapable, match="cannot deploy-checkout"):
        stack.rolling_restart_service(application="service.app:app")
    assert stack.service.id == running  # refused before anything changed


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
    assert_nothing_answers(seen["endpoints"])


def test_what_a_killed_process_left_is_removed_by_the_next_stack(client: docker.DockerClient) -> None:
    script = (
        "import time\nfrom chaos.stack.docker import DockerStack\n"
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
    arguments = ["--backend", "docker", "--port", "0", "--proxy-port", "0"]
    with stack_up(arguments, within_s=120) as (process, text):
        assert "backend: Docker containers (asked for)" in text
        api_url = re.search(r"API\s+(http://127\.0\.0\.1:\d+)", text).group(1)  # type: ignore[union-attr]
        key = re.search(r"API key\s+(\S+)", text).group(1)  # type: ignore[union-attr]
        stack_id = re.search(r"network rb-stack-(\w+)", text).group(1)  # type: ignore[union-attr]
        assert httpx.post(f"{api_url}/api/v1/events", json=EVENT, headers={"X-API-Key": key}).status_code == 201
        assert len(_stack_resources(client, stack_id)[0]) == 4
        assert_sigterm_stops_everything(process, within_s=90)
    assert _stack_resources(client, stack_id) == ([], [])
    assert refuses(api_url)
