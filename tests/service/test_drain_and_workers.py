"""RB-HEALTH-DRAIN and RB-OBS-METRICS across workers: the service run as operators run it."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from chaos.stack.servers import PostgresServer
from chaos.stack.service import ServiceProcess
from tests.helpers import API_KEY_HEADERS, event
from tests.own_servers import Servers

pytestmark = pytest.mark.integration


@pytest.fixture
def service(service_env: dict[str, str]) -> Iterator[ServiceProcess]:
    drain_env = {**service_env, "DRAIN_DELAY_S": "1.5", "DB_REQUEST_TIMEOUT_S": "6", "DB_STATEMENT_TIMEOUT_S": "5"}
    with ServiceProcess(drain_env, workers=2) as running:
        yield running


async def _hold_row_lock(postgres: PostgresServer, event_id: str) -> asyncpg.Connection:
    """Insert `event_id` in an open transaction: other inserts of that id wait until it ends."""
    connection = await asyncpg.connect(postgres.url("events"))
    await connection.execute("BEGIN")
    await connection.execute(
        "INSERT INTO events (id, source, type, occurred_at) VALUES ($1, 'lock', 'lock', now())", uuid.UUID(event_id)
    )
    return connection


async def test_sigterm_drains_then_finishes_in_flight_requests(
    service: ServiceProcess, healthy_servers: Servers
) -> None:
    postgres, _ = healthy_servers
    blocked_id = str(uuid.uuid4())
    holder = await _hold_row_lock(postgres, blocked_id)
    results: list[int | str] = []

    def in_flight() -> None:
        try:
            response = httpx.post(
                f"{service.base_url}/api/v1/events",
                json=event("drain", id=blocked_id),
                headers=API_KEY_HEADERS,
                timeout=15,
            )
            results.append(response.status_code)
        except httpx.HTTPError as error:
            results.append(type(error).__name__)

    threads = [threading.Thread(target=in_flight) for _ in range(6)]
    for thread in threads:
        thread.start()
    await asyncio.sleep(0.5)  # every request is now waiting on the row lock
    service.terminate()
    await asyncio.sleep(0.3)

    # A new connection: still accepted while draining.
    probe = await asyncio.to_thread(httpx.get, f"{service.base_url}/health/ready", timeout=5)
    assert probe.status_code == 503
    assert probe.json()["status"] == "draining"
    assert probe.headers["connection"] == "close"
    live = await asyncio.to_thread(httpx.get, f"{service.base_url}/health/live", timeout=5)
    assert live.status_code == 200

    await holder.execute("ROLLBACK")  # the waiting inserts can finish now
    await holder.close()
    for thread in threads:
        thread.join(20)
    assert sorted(results) == [200] * 5 + [201], "every accepted request finished"
    assert service.wait(20) == 0, service.log_tail()
    with pytest.raises(httpx.ConnectError):
        await asyncio.to_thread(httpx.get, f"{service.base_url}/health/live", timeout=2)


def _sample(metrics_text: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    for line in metrics_text.splitlines():
        match = re.fullmatch(rf"{name}\{{(.*)\}} (\S+)", line)
        if match and ",".join(sorted(match.group(1).split(","))) == wanted:
            return float(match.group(2))
    return 0.0


def test_metrics_count_every_worker(service: ServiceProcess) -> None:
    for _ in range(60):
        # A new connection each time, so both workers serve some of them.
        response = httpx.get(f"{service.base_url}/api/v1/events/{uuid.uuid4()}", headers=API_KEY_HEADERS)
        assert response.status_code == 404
    for _ in range(4):  # whichever worker answers /metrics, it reports the total
        text = httpx.get(f"{service.base_url}/metrics").text
        route = "/api/v1/events/<event_id>"
        assert _sample(text, "http_requests_total", method="GET", route=route, status="404") == 60
        assert _sample(text, "http_request_duration_seconds_count", method="GET", route=route) == 60
    worker_pids = set(re.findall(r'rate_limit_backend\{backend="redis",pid="(\d+)"\} 1\.0', text))
    assert len(worker_pids) == 2
    for name in ("dependency_up", "degraded_mode", "http_requests_in_flight", "db_gate_in_use", "app_info"):
        assert name in text


def test_a_worker_killed_by_an_outside_signal_stops_the_service_with_a_failure(service_env: dict[str, str]) -> None:
    with ServiceProcess(service_env, workers=2) as service:
        workers = _workers(service)
        assert len(workers) == 2
        os.kill(workers[0], signal.SIGKILL)  # as the kernel's OOM killer would
        code = service.wait(30)
        assert code is not None
        assert code != 0


def _workers(service: ServiceProcess) -> list[int]:
    """The supervisor's worker processes (forked: its children other than a multiprocessing resource tracker)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if parent == service.pid and b"resource_tracker" not in command:
                found.append(int(entry.name))
    return found


def test_hung_redis_or_database_never_blocks_liveness(healthy_servers: Servers, service_env: dict[str, str]) -> None:
    postgres, redis_server = healthy_servers
    with ServiceProcess(service_env, workers=1) as service:
        postgres.pause()
        redis_server.pause()
        try:
            started = time.monotonic()
            assert httpx.get(f"{service.base_url}/health/live", timeout=5).status_code == 200
            ready = httpx.get(f"{service.base_url}/health/ready", timeout=5)
            assert ready.status_code == 503
            assert ready.json()["failed_checks"] == ["database", "redis"]
            assert time.monotonic() - started < 5
        finally:
            postgres.resume()
            redis_server.resume()
