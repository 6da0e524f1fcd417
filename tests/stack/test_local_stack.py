"""The local stack: real PostgreSQL, Redis, fault proxy and service, broken on purpose and cleaned up.

What every backend guarantees runs here as `TestLocalStackContract` (tests/stack/contract.py); the rest is
what only local processes have: the servers behind the proxies, process trees that must not outlive the
stack, an external Toxiproxy, and `chaos stack up`. The service's own reaction to faults (readiness, timeouts,
fail-fast) is tested with the service.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
import redis

from chaos.proxy import FaultProxy
from chaos.proxy.client import ToxiproxyClient
from chaos.stack.base import DEPENDENCIES, Capability, Dependency
from chaos.stack.local import FaultProxyMode, LocalStack
from tests.stack.contract import (
    RunningService,
    StackContract,
    assert_nothing_answers,
    assert_sigterm_stops_everything,
    stack_up,
)
from tests.stack.probes import alive, holds_within, process_tree, refuses

pytestmark = pytest.mark.integration

EVENT = {"source": "stack-test", "type": "order.placed", "occurred_at": "2026-11-26T10:00:00Z"}


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack() as running:
        yield running


def _process_state(pid: int) -> str:
    """The state letter of /proc/<pid>/stat: R, S, T (stopped by a signal)..."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def test_the_service_reaches_the_local_servers_through_the_proxies(stack: LocalStack) -> None:
    endpoints = stack.endpoints
    assert stack.service_env["DATABASE_URL"] == endpoints.proxied_database_url
    assert stack.service_env["REDIS_URL"] == endpoints.proxied_redis_url
    proxies = stack.toxiproxy().proxies()
    assert proxies["postgres"].upstream == f"127.0.0.1:{stack.server('postgres').port}"
    assert proxies["redis"].upstream == f"127.0.0.1:{stack.server('redis').port}"
    assert f":{proxies['postgres'].listen_port}/" in endpoints.proxied_database_url
    assert f":{proxies['redis'].listen_port}/" in endpoints.proxied_redis_url


class TestLocalStackContract(StackContract[LocalStack]):
    declared_capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {"proxy-faults", "dependency-process", "service-reconfigure", "rolling-restart", "deploy-checkout"}
    )

    def dependency_state(self, stack: LocalStack, name: Dependency) -> str:
        pid = stack.server(name).pid
        if pid is None:
            return "exited"
        return "paused" if _process_state(pid) in {"T", "t"} else "running"

    def assert_crashed(self, stack: LocalStack, name: Dependency) -> None:
        server = stack.server(name)
        assert server.pids() == []
        # The server keeps no public exit status; its leader's is what a crash is told by.
        assert server._process is not None
        assert server._process.returncode == -signal.SIGKILL

    def service(self, stack: LocalStack) -> RunningService:
        return stack.service

    def service_instance(self, stack: LocalStack) -> object:
        return stack.service.pid


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
    assert_nothing_answers(endpoints)


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
    with stack_up(["--port", "0", "--proxy-port", "0"], within_s=90) as (process, text):
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
        assert_sigterm_stops_everything(process, within_s=60)
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
