"""The local stack: real PostgreSQL, Redis, fault proxy and service, broken on purpose and cleaned up.

The service's own reaction to faults (readiness, timeouts, fail-fast) is tested with the service; here
only what the stack guarantees is asserted: where things answer, that faults reach what they should, and
that nothing outlives the stack.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import asyncpg
import httpx
import pytest
import redis

from chaos.proxy import FaultProxy
from chaos.stack import DEPENDENCIES, FaultProxyMode, LocalStack
from chaos.toxiproxy_client import ToxiproxyClient
from tests.stack_probes import (
    alive,
    assert_database_and_service_back,
    assert_postgres_latency_slows_reads_and_recovers,
    assert_redis_stops_and_restarts,
    holds_within,
    ingest,
    process_tree,
    refuses,
)

pytestmark = pytest.mark.integration

EVENT = {"source": "stack-test", "type": "order.placed", "occurred_at": "2026-11-26T10:00:00Z"}


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack() as running:
        yield running


@pytest.fixture
def healthy(stack: LocalStack) -> Iterator[LocalStack]:
    """The stack, with its dependencies running and its proxies clean again after the test."""
    yield stack
    for name in DEPENDENCIES:
        server = stack.server(name)
        if server._paused:
            server.resume()
        if not server.running:
            server.start()
    stack.toxiproxy().reset()


@pytest.fixture
def api(stack: LocalStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.api_url, headers={"X-API-Key": stack.api_key}, timeout=15) as client:
        yield client


def test_everything_answers_on_loopback_and_the_service_goes_through_the_proxies(
    stack: LocalStack, api: httpx.Client
) -> None:
    endpoints = stack.endpoints
    for url in (
        endpoints.api_url,
        endpoints.proxy_api_url,
        endpoints.database_url,
        endpoints.proxied_database_url,
        endpoints.redis_url,
        endpoints.proxied_redis_url,
    ):
        assert "@127.0.0.1:" in url or "://127.0.0.1:" in url
    assert stack.service_env["DATABASE_URL"] == endpoints.proxied_database_url
    assert stack.service_env["REDIS_URL"] == endpoints.proxied_redis_url
    assert endpoints.proxied_database_url != endpoints.database_url

    proxies = stack.toxiproxy().proxies()
    assert set(proxies) == {"postgres", "redis"}
    assert proxies["postgres"].upstream == f"127.0.0.1:{stack.server('postgres').port}"
    assert proxies["redis"].upstream == f"127.0.0.1:{stack.server('redis').port}"
    assert f":{proxies['postgres'].listen_port}/" in endpoints.proxied_database_url

    assert httpx.get(f"{stack.api_url}/health/live").status_code == 200
    event_id = ingest(api, EVENT)
    assert api.get(f"/api/v1/events/{event_id}").json()["id"] == event_id


async def test_the_direct_database_url_reaches_the_migrated_database(stack: LocalStack) -> None:
    connection = await asyncpg.connect(stack.database_url)
    try:
        assert await connection.fetchval("SELECT count(*) FROM alembic_version") == 1
    finally:
        await connection.close()


def test_latency_on_the_postgres_proxy_slows_reads_and_recovers(healthy: LocalStack, api: httpx.Client) -> None:
    assert_postgres_latency_slows_reads_and_recovers(healthy.proxy("postgres"), api, EVENT)


async def test_a_paused_database_hangs_until_resumed(healthy: LocalStack) -> None:
    connection = await asyncpg.connect(healthy.database_url)
    healthy.pause_dependency("postgres")
    try:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(connection.fetchval("SELECT 1"), 0.5)
    finally:
        healthy.resume_dependency("postgres")
    await connection.close(timeout=5)
    await assert_database_and_service_back(healthy)


def test_dependencies_stop_crash_and_come_back(healthy: LocalStack, api: httpx.Client) -> None:
    event_id = ingest(api, EVENT)

    healthy.kill_dependency("postgres")
    assert refuses(healthy.database_url)
    healthy.start_dependency("postgres")
    assert holds_within(lambda: api.get(f"/api/v1/events/{event_id}").status_code == 200)  # a crash keeps commits

    assert_redis_stops_and_restarts(healthy)


def test_restart_service_rolls_out_a_new_environment(healthy: LocalStack, api: httpx.Client) -> None:
    api_url = healthy.api_url
    old_pid = healthy.service.pid
    healthy.restart_service(env_overrides={"APP_VERSION": "9.9.9-rollout"})
    assert healthy.api_url == api_url  # same port
    assert healthy.service.pid != old_pid
    assert httpx.get(f"{api_url}/health/live").json()["version"] == "9.9.9-rollout"
    healthy.restart_service()
    assert httpx.get(f"{api_url}/health/live").json()["version"] == "9.9.9-rollout"  # the rollout stays
    assert healthy.service_env["APP_VERSION"] == "9.9.9-rollout"
    ingest(api, EVENT)


@pytest.mark.parametrize("fault_proxy", ["process", "thread"])
def test_a_failing_block_leaves_nothing_behind(fault_proxy: FaultProxyMode) -> None:
    seen: dict[str, Any] = {}

    def a_test_that_fails() -> None:
        with LocalStack(fault_proxy=fault_proxy) as stack:
            assert stack.service.pid is not None
            seen["pids"] = {pid for name in DEPENDENCIES for pid in stack.server(name).pids()}
            seen["pids"] |= process_tree(stack.service.pid)
            if fault_proxy == "process":
                assert stack.fault_proxy_process is not None
                assert stack.fault_proxy_process.pid is not None
                seen["pids"].add(stack.fault_proxy_process.pid)
            seen["directories"] = [stack.directory, stack.server("postgres").directory, stack.server("redis").directory]
            seen["endpoints"] = stack.endpoints
            raise RuntimeError("the test failed")

    with pytest.raises(RuntimeError, match="the test failed"):
        a_test_that_fails()
    pids, directories, endpoints = seen["pids"], seen["directories"], seen["endpoints"]
    assert len(pids) >= 4  # postgres and its helpers, redis, the service (and the fault proxy's process)
    assert holds_within(lambda: not any(alive(pid) for pid in pids), within_s=15)
    assert all(directory is not None for directory in directories)
    assert not any(directory.exists() for directory in directories)
    for url in (endpoints.api_url, endpoints.proxy_api_url, endpoints.database_url, endpoints.redis_url):
        assert refuses(url)
    assert refuses(endpoints.proxied_database_url)
    assert not ToxiproxyClient(endpoints.proxy_api_url).running()


def test_an_external_toxiproxy_gets_the_proxies_until_the_stack_stops() -> None:
    with FaultProxy() as external:
        client = ToxiproxyClient(external.api_url)
        with LocalStack(toxiproxy_url=external.api_url) as stack:
            assert stack.proxy_api_url == external.api_url
            assert set(client.proxies()) == {"postgres", "redis"}
            with stack.proxy("redis").toxic(type="latency", attributes={"latency": 300}):
                proxied = redis.Redis.from_url(stack.proxied_redis_url, socket_timeout=5)
                started = time.perf_counter()
                assert proxied.ping()
                assert time.perf_counter() - started >= 0.25
                proxied.close()
        assert client.proxies() == {}  # what the stack created there, it removed


def test_stack_up_prints_the_endpoints_and_stops_everything_on_sigterm() -> None:
    command = [sys.executable, "-m", "chaos", "stack", "up", "--port", "0", "--proxy-port", "0"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    output: list[str] = []
    try:
        deadline = time.monotonic() + 90
        while not any("Ctrl-C stops everything" in line for line in output):
            assert time.monotonic() < deadline, "".join(output)
            line = process.stdout.readline()
            assert line, "".join(output)
            output.append(line)
        text = "".join(output)
        assert "postgres: up on 127.0.0.1:" in text  # progress while starting
        api_url = re.search(r"API\s+(http://127\.0\.0\.1:\d+)", text).group(1)  # type: ignore[union-attr]
        key = re.search(r"API key\s+(\S+)", text).group(1)  # type: ignore[union-attr]
        proxy_url = re.search(r"fault proxy API\s+(http://\S+)", text).group(1)  # type: ignore[union-attr]
        for label in ("direct   postgresql://", "proxied  postgresql://", "direct   redis://", "proxied  redis://"):
            assert label in text
        children = process_tree(process.pid) - {process.pid}
        assert len(children) >= 5  # postgres (several), redis, the fault proxy, the service

        response = httpx.post(f"{api_url}/api/v1/events", json=EVENT, headers={"X-API-Key": key})
        assert response.status_code == 201
        assert set(ToxiproxyClient(proxy_url).proxies()) == {"postgres", "redis"}

        process.send_signal(signal.SIGTERM)
        rest, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, rest
    assert "nothing left running" in rest
    assert holds_within(lambda: not any(alive(pid) for pid in children), within_s=15)
    assert refuses(api_url)
    assert refuses(proxy_url)


def test_stack_up_refuses_a_taken_port() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "chaos", "stack", "up", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={**os.environ},
        )
    assert result.returncode == 3, "could not run, by README's exit-code table"
    assert f"port {port} on 127.0.0.1 is taken" in result.stderr
