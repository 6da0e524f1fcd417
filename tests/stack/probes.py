"""Probes shared by the stack tests (local and Docker): what answers, what refuses, how fast a read is."""

from __future__ import annotations

import asyncio
import re
import socket
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import redis

from chaos.proxy.client import ProxyHandle
from chaos.stack.base import StackBackend


def _port_of(url: str) -> int:
    """The port of a service URL (credentials, if any, are skipped)."""
    match = re.search(r":(\d+)(/|$)", url.split("@")[-1])
    if match is None:
        raise ValueError(f"no port in {url.split('@')[-1]!r}")
    return int(match.group(1))


def alive(pid: int) -> bool:
    """The process exists and has not exited (a zombie has)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def process_tree(pid: int) -> set[int]:
    """`pid` and every process descended from it, read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, frontier = set(), [pid]
    while frontier:
        current = frontier.pop()
        found.add(current)
        frontier.extend(children.get(current, ()))
    return found


def refuses(url: str) -> bool:
    """Whether the URL's loopback port refuses connections (nothing listens there)."""
    try:
        socket.create_connection(("127.0.0.1", _port_of(url)), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def holds_within(condition: Callable[[], bool], within_s: float = 30.0, interval_s: float = 0.1) -> bool:
    """Retry `condition` until it holds (True) or `within_s` has passed (False)."""
    deadline = time.monotonic() + within_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval_s)
    return True


def ingest(api: httpx.Client, event: dict[str, Any]) -> str:
    """Store one event through the API and return its id."""
    response = api.post("/api/v1/events", json=event)
    assert response.status_code == 201, response.text
    return str(response.json()["ids"][0])


def median_get_s(api: httpx.Client, event_id: str, rounds: int = 5) -> float:
    timings = []
    for _ in range(rounds):
        started = time.perf_counter()
        assert api.get(f"/api/v1/events/{event_id}").status_code == 200
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def assert_postgres_latency_slows_reads_and_recovers(
    postgres_proxy: ProxyHandle, api: httpx.Client, event: dict[str, Any]
) -> None:
    """A latency toxic on the postgres proxy reaches the service's reads, and its removal restores them."""
    event_id = ingest(api, event)
    baseline = median_get_s(api, event_id)
    # 150 ms per database round trip: a read makes several, and must stay inside the service's 2 s budget.
    with postgres_proxy.toxic(type="latency", attributes={"latency": 150}):
        slowed = median_get_s(api, event_id, rounds=3)
    recovered = median_get_s(api, event_id)
    assert slowed >= baseline + 0.125
    assert recovered < baseline + 0.1


async def assert_database_and_service_back(stack: StackBackend) -> None:
    """After a pause: both database URLs answer at once, and the service becomes ready again."""
    for url in (stack.database_url, stack.proxied_database_url):
        again = await asyncpg.connect(url)
        assert await again.fetchval("SELECT 1") == 1
        await again.close()
    assert await asyncio.to_thread(
        holds_within, lambda: httpx.get(f"{stack.api_url}/health/ready", timeout=5).status_code == 200
    )


def assert_redis_stops_and_restarts(stack: StackBackend) -> None:
    """A stopped Redis refuses directly and fails through the proxy; after a restart both paths answer."""
    direct = redis.Redis.from_url(stack.redis_url, socket_timeout=2)
    proxied = redis.Redis.from_url(stack.proxied_redis_url, socket_timeout=2)
    try:
        assert proxied.ping()
        stack.stop_dependency("redis")
        assert refuses(stack.redis_url)
        with pytest.raises(redis.ConnectionError):
            proxied.ping()  # the proxy accepts, then finds no upstream
        stack.restart_dependency("redis")
        assert direct.ping()
        assert proxied.ping()
    finally:
        direct.close()
        proxied.close()
