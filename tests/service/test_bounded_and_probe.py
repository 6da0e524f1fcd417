"""`within` answers at its bound even when cleanup is slow; readiness checks are single-flight and cached;
the database gate caps concurrency and refuses quickly when full."""

from __future__ import annotations

import asyncio
import time

import pytest

from service.db import DatabaseGate
from service.errors import ApiError
from service.readiness import ReadinessProbe
from service.timeouts import abandoned_count, within


async def test_within_returns_results_and_errors() -> None:
    async def answer() -> int:
        return 42

    async def broken() -> None:
        raise ValueError("broken")

    assert await within(1, answer()) == 42
    with pytest.raises(ValueError, match="broken"):
        await within(1, broken())


async def test_within_answers_at_the_bound_while_slow_cleanup_goes_on_in_the_background() -> None:
    cleaned_up = asyncio.Event()

    async def stuck_with_slow_cleanup() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            await asyncio.sleep(0.3)  # like a driver waiting on a hung server while cancelling
            cleaned_up.set()
            raise

    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await within(0.05, stuck_with_slow_cleanup())
    answered_after = time.monotonic() - started
    assert not cleaned_up.is_set(), "the caller was answered before the cleanup finished"
    assert abandoned_count() >= 1
    await asyncio.wait_for(cleaned_up.wait(), 2)
    await asyncio.sleep(0)
    assert answered_after < 0.3


async def test_readiness_rounds_are_shared_and_cached() -> None:
    calls = 0

    async def counted_check() -> str:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return "ok"

    probe = ReadinessProbe({"database": counted_check}, timeout_s=1, cache_s=0.2)
    results = await asyncio.gather(*(probe.results() for _ in range(50)))
    assert calls == 1, "fifty concurrent probes cost one check"
    assert all(result["database"].up for result in results)
    await probe.results()
    assert calls == 1, "a fresh result is reused"
    await asyncio.sleep(0.25)
    await probe.results()
    assert calls == 2, "a stale result is refreshed"


async def test_a_hung_check_is_reported_down_at_its_timeout() -> None:
    async def hung() -> None:
        await asyncio.sleep(60)

    async def fine() -> None:
        return None

    probe = ReadinessProbe({"database": hung, "redis": fine}, timeout_s=0.05, cache_s=0)
    results = await asyncio.wait_for(probe.results(), 1)
    assert results["database"].up is False
    assert results["database"].error == "no answer within 0.05s"
    assert results["redis"].up is True


async def test_gate_caps_concurrency_and_refuses_when_the_wait_is_too_long() -> None:
    gate = DatabaseGate(capacity=2, queue_timeout_s=0.05, max_queue=10)
    await gate.acquire(1)
    await gate.acquire(1)
    with pytest.raises(ApiError) as refused:
        await gate.acquire(1)
    assert (refused.value.status, refused.value.code) == (503, "DB_OVERLOADED")
    assert refused.value.headers["Retry-After"] == "1"
    gate.release()
    await gate.acquire(1)  # a freed slot is usable again


async def test_gate_refuses_at_once_when_the_queue_is_full() -> None:
    gate = DatabaseGate(capacity=1, queue_timeout_s=5, max_queue=1)
    await gate.acquire(1)
    waiter = asyncio.create_task(gate.acquire(5))
    await asyncio.sleep(0.01)
    started = time.monotonic()
    with pytest.raises(ApiError):
        await gate.acquire(5)
    assert time.monotonic() - started < 1, "no waiting when the queue is full"
    gate.release()
    await waiter
