"""What every stack backend guarantees, written once and run against each backend.

A backend's test module subclasses `StackContract` (tests/stack/test_local_stack.py for `LocalStack`,
tests/stack/test_docker_stack.py for `DockerStack`), provides a module-scoped `stack` fixture holding a running
stack, and says how to observe what `StackBackend` does not expose (a dependency's state, which start of the
service is running). Only what the stack guarantees is asserted: where things answer, that faults reach what
they should, that broken dependencies come back, that the service can be rolled out and drained, and the
capabilities the backend declares. What only one backend has (process trees, an external Toxiproxy, container
labels, orphans) is tested in that backend's module, with the helpers at the end of this one.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar, Generic, Protocol, TypeVar, get_args

import asyncpg
import httpx
import pytest
import redis

from chaos.proxy.client import ToxiproxyClient
from chaos.stack.base import DEPENDENCIES, Capability, Dependency, NotCapable, StackBackend, StackEndpoints
from tests.stack.probes import (
    assert_database_and_service_back,
    assert_postgres_latency_slows_reads_and_recovers,
    assert_redis_stops_and_restarts,
    holds_within,
    ingest,
    refuses,
)

REPO = Path(__file__).resolve().parents[1]
EVENT = {"source": "stack-contract", "type": "order.placed", "occurred_at": "2026-11-26T10:00:00Z"}
CAPABILITIES: tuple[Capability, ...] = get_args(Capability)
# A state change (SIGSTOP reaching every process, a container freezing) may land just after the call returns.
STATE_SETTLES_S = 5.0

S = TypeVar("S", bound=StackBackend)


class RunningService(Protocol):
    """What the contract needs from a backend's service handle (`ServiceProcess`, `DockerService`)."""

    @property
    def running(self) -> bool: ...

    def terminate(self) -> None: ...

    def wait(self, timeout: float) -> int | None: ...


def addresses(endpoints: StackEndpoints) -> tuple[str, ...]:
    """Every URL a stack answers on: the service, the fault proxy's API, each dependency direct and proxied."""
    return (
        endpoints.api_url,
        endpoints.proxy_api_url,
        endpoints.database_url,
        endpoints.proxied_database_url,
        endpoints.redis_url,
        endpoints.proxied_redis_url,
    )


def _on_loopback(url: str) -> bool:
    return "@127.0.0.1:" in url or "://127.0.0.1:" in url


class StackContract(ABC, Generic[S]):
    """The contract every backend's tests run; subclass it as `Test<Backend>Contract` in the backend's module."""

    declared_capabilities: ClassVar[frozenset[Capability]]

    # -- what each backend says about itself ---------------------------------------------------------------
    @abstractmethod
    def dependency_state(self, stack: S, name: Dependency) -> str:
        """The dependency's state as observed on it (not a flag the stack keeps): running, paused or exited."""

    @abstractmethod
    def assert_crashed(self, stack: S, name: Dependency) -> None:
        """The dependency's processes died of SIGKILL, as in a crash."""

    @abstractmethod
    def service(self, stack: S) -> RunningService: ...

    @abstractmethod
    def service_instance(self, stack: S) -> object:
        """What tells one start of the service from the next (a process id, a container id)."""

    # -- fixtures ----------------------------------------------------------------------------------------------
    @pytest.fixture
    def healthy(self, stack: S) -> Iterator[S]:
        """The stack, with its dependencies running and its proxies clean again after the test."""
        yield stack
        for name in DEPENDENCIES:
            # Safe in any state (test_dependency_operations_are_safe_in_any_state), as drills' rollbacks rely on.
            stack.resume_dependency(name)
            stack.start_dependency(name)
        stack.toxiproxy().reset()

    @pytest.fixture
    def api(self, stack: S) -> Iterator[httpx.Client]:
        with httpx.Client(base_url=stack.api_url, headers={"X-API-Key": stack.api_key}, timeout=15) as client:
            yield client

    def _settles(self, stack: S, name: Dependency, state: str) -> bool:
        return holds_within(lambda: self.dependency_state(stack, name) == state, within_s=STATE_SETTLES_S)

    # -- where things answer -----------------------------------------------------------------------------------
    def test_every_endpoint_is_on_loopback_and_an_event_goes_in_and_comes_back(
        self, stack: S, api: httpx.Client
    ) -> None:
        endpoints = stack.endpoints
        for url in addresses(endpoints):
            assert _on_loopback(url), url
        assert endpoints.proxied_database_url != endpoints.database_url
        assert endpoints.proxied_redis_url != endpoints.redis_url
        assert set(stack.toxiproxy().proxies()) == {"postgres", "redis"}

        assert httpx.get(f"{stack.api_url}/health/live").status_code == 200
        event_id = ingest(api, EVENT)
        assert api.get(f"/api/v1/events/{event_id}").json()["id"] == event_id

    async def test_the_direct_and_proxied_database_urls_reach_the_migrated_database(self, stack: S) -> None:
        for url in (stack.database_url, stack.proxied_database_url):
            connection = await asyncpg.connect(url)
            try:
                assert await connection.fetchval("SELECT count(*) FROM alembic_version") == 1
            finally:
                await connection.close()

    # -- faults --------------------------------------------------------------------------------------------------
    def test_latency_on_the_postgres_proxy_slows_reads_and_recovers(self, healthy: S, api: httpx.Client) -> None:
        assert_postgres_latency_slows_reads_and_recovers(healthy.proxy("postgres"), api, EVENT)

    async def test_a_paused_database_hangs_until_resumed(self, healthy: S) -> None:
        connection = await asyncpg.connect(healthy.database_url)
        healthy.pause_dependency("postgres")
        try:
            assert await asyncio.to_thread(self._settles, healthy, "postgres", "paused")
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(connection.fetchval("SELECT 1"), 0.5)
        finally:
            healthy.resume_dependency("postgres")
        await connection.close(timeout=5)
        await assert_database_and_service_back(healthy)

    def test_dependencies_stop_crash_and_come_back_on_the_same_port(self, healthy: S, api: httpx.Client) -> None:
        event_id = ingest(api, EVENT)

        healthy.kill_dependency("postgres")
        assert refuses(healthy.database_url)
        assert self._settles(healthy, "postgres", "exited")
        self.assert_crashed(healthy, "postgres")
        healthy.start_dependency("postgres")
        assert holds_within(lambda: api.get(f"/api/v1/events/{event_id}").status_code == 200)  # a crash keeps commits

        assert_redis_stops_and_restarts(healthy)

    def test_dependency_operations_are_safe_in_any_state(self, healthy: S) -> None:
        """Drills' rollbacks resume and start whatever they touched, whatever state it was left in."""
        healthy.resume_dependency("redis")  # not paused
        healthy.start_dependency("redis")  # already running
        assert self._settles(healthy, "redis", "running")
        healthy.pause_dependency("redis")
        healthy.pause_dependency("redis")
        assert self._settles(healthy, "redis", "paused")
        healthy.stop_dependency("redis")  # a paused server is stopped too
        assert self._settles(healthy, "redis", "exited")
        healthy.kill_dependency("redis")  # already down
        healthy.resume_dependency("redis")
        healthy.stop_dependency("redis")
        assert self._settles(healthy, "redis", "exited")
        healthy.start_dependency("redis")
        assert self._settles(healthy, "redis", "running")
        assert redis.Redis.from_url(healthy.redis_url, socket_timeout=2).ping()
        healthy.pause_dependency("redis")
        healthy.kill_dependency("redis")  # a paused server can be killed
        assert self._settles(healthy, "redis", "exited")
        healthy.restart_dependency("redis")
        assert redis.Redis.from_url(healthy.proxied_redis_url, socket_timeout=2).ping()

    # -- the service -------------------------------------------------------------------------------------------
    def test_restart_service_rolls_out_a_new_environment(self, healthy: S, api: httpx.Client) -> None:
        api_url = healthy.api_url
        before = self.service_instance(healthy)
        healthy.restart_service(env_overrides={"APP_VERSION": "9.9.9-rollout"})
        assert healthy.api_url == api_url  # same port
        assert self.service_instance(healthy) != before
        assert httpx.get(f"{api_url}/health/live").json()["version"] == "9.9.9-rollout"
        healthy.restart_service()
        assert httpx.get(f"{api_url}/health/live").json()["version"] == "9.9.9-rollout"  # the rollout stays
        assert healthy.service_env["APP_VERSION"] == "9.9.9-rollout"
        ingest(api, EVENT)
        log = healthy.endpoints.service_log
        assert log is not None
        assert '"route":"/api/v1/events"' in log.read_text()  # the service's JSON log lines reach the host

    def test_sigterm_drains_the_service_and_it_exits_0(self, healthy: S) -> None:
        service = self.service(healthy)
        service.terminate()
        assert service.wait(30) == 0
        assert not service.running
        healthy.restart_service()
        assert httpx.get(f"{healthy.api_url}/health/live").status_code == 200

    # -- capabilities --------------------------------------------------------------------------------------------
    def test_the_backend_supports_exactly_the_capabilities_it_declares(self, stack: S) -> None:
        assert stack.capabilities == self.declared_capabilities
        for capability in CAPABILITIES:
            assert stack.supports(capability) == (capability in self.declared_capabilities), capability

    def test_require_refuses_what_the_backend_lacks_naming_the_backend_and_what_it_offers(self, stack: S) -> None:
        def check(backend: StackBackend) -> None:
            offered = sorted(backend.capabilities)
            listed = ", ".join(offered) or "none beyond the basic contract"
            for capability in CAPABILITIES:
                if capability in offered:
                    backend.require(capability)
                    continue
                with pytest.raises(NotCapable) as refused:
                    backend.require(capability)
                expected = f"the {type(backend).__name__} backend cannot {capability} (it offers: {listed})"
                assert str(refused.value) == expected

        check(stack)
        # The same backend declaring less (built, not started: requiring is a question, not an action).
        for kept in (frozenset(), frozenset({"deploy-checkout"})):
            narrower: Any = type(f"Narrower{type(stack).__name__}", (type(stack),), {"capabilities": kept})
            check(narrower())


# -- helpers for what each backend tests on its own ------------------------------------------------------------


def assert_nothing_answers(endpoints: StackEndpoints) -> None:
    """After a stack stopped: none of its addresses accepts a connection, and its fault proxy is gone."""
    for url in addresses(endpoints):
        assert refuses(url), url
    assert not ToxiproxyClient(endpoints.proxy_api_url).running()


@contextmanager
def stack_up(arguments: Sequence[str], *, within_s: float) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """`python -m chaos stack up ARGUMENTS`, read until it says it is up; yields the process and what it printed.
    A process still running when the block ends is killed."""
    command = [sys.executable, "-m", "chaos", "stack", "up", *arguments]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    output: list[str] = []
    try:
        deadline = time.monotonic() + within_s
        while not any("Ctrl-C stops everything" in line for line in output):
            assert time.monotonic() < deadline, "".join(output)
            line = process.stdout.readline()
            assert line, "".join(output)
            output.append(line)
        yield process, "".join(output)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def assert_sigterm_stops_everything(process: subprocess.Popen[str], *, within_s: float) -> None:
    """SIGTERM to `chaos stack up`: it exits 0 and says it left nothing running."""
    process.terminate()
    rest, _ = process.communicate(timeout=within_s)
    assert process.returncode == 0, rest
    assert "nothing left running" in rest
