"""RB-RL-REDIS with batched counting (service/rate_counts.py), against a real Redis: the limit holds exactly
when the batch is 1, within `workers × (batch - 1)` otherwise, a principal is never refused before its limit,
and the counts are the ones the `limits` library keeps (a rolling deploy's previous release shares them)."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator

import pytest
from limits import RateLimitItem, parse
from limits.aio.storage import RedisStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from service.rate_counts import SYNC_EVERY, BatchedWindowCounter, batch_size

pytestmark = pytest.mark.integration


@pytest.fixture
async def storage(redis_url: str) -> AsyncIterator[RedisStorage]:
    # A prefix of its own per test, so no count survives from another test or run.
    store = RedisStorage("async+" + redis_url, implementation="redispy", key_prefix=f"test-rl-{uuid.uuid4().hex[:8]}")
    yield store
    await store.bridge.get_connection().aclose()  # type: ignore[attr-defined]


class CountingCounter(BatchedWindowCounter):
    """The counter, counting its calls to Redis."""

    calls = 0

    async def _sync_once(self, item: RateLimitItem, key: str) -> bool:
        self.calls += 1
        return await super()._sync_once(item, key)


class Worker:
    """One worker's counter, used as the rate limiter uses it."""

    def __init__(self, storage: RedisStorage) -> None:
        self.counter = CountingCounter(storage)

    @property
    def round_trips(self) -> int:
        return self.counter.calls

    async def hit(self, item: RateLimitItem, key: str) -> bool:
        return self.counter.admit_locally(item, key) or await self.counter.sync(item, key)


def test_the_batch_is_at_most_one_percent_of_the_limit() -> None:
    assert batch_size(parse("3/minute")) == 1
    assert batch_size(parse("120/minute")) == 1
    assert batch_size(parse("800/minute")) == 8
    assert batch_size(parse("6000/minute")) == SYNC_EVERY


async def test_a_small_limit_is_exact_across_workers(storage: RedisStorage) -> None:
    item = parse("50/minute")
    workers = [Worker(storage), Worker(storage)]
    decisions = [await random.choice(workers).hit(item, "p/exact") for _ in range(80)]
    assert decisions == [True] * 50 + [False] * 30
    assert sum(worker.round_trips for worker in workers) == 80  # batch 1: every request asks Redis


async def test_a_large_limit_holds_within_the_stated_bound_with_far_fewer_round_trips(storage: RedisStorage) -> None:
    item = parse("1600/minute")
    batch = batch_size(item)
    workers = [Worker(storage) for _ in range(3)]
    decisions = [await random.choice(workers).hit(item, "p/bound") for _ in range(1500)]
    round_trips = sum(worker.round_trips for worker in workers)
    assert round_trips <= 1500 / (batch - 1) + len(workers), f"{round_trips} round trips for 1500 requests"
    # Over the limit every request asks Redis (a refusal is decided on its fresh count only).
    decisions += [await random.choice(workers).hit(item, "p/bound") for _ in range(700)]
    assert all(decisions[:1600]), "refused before the limit was reached"
    assert 1600 <= sum(decisions) <= 1600 + len(workers) * (batch - 1)


async def test_concurrent_requests_in_one_worker_are_not_counted_twice(storage: RedisStorage) -> None:
    item = parse("1600/minute")
    worker = Worker(storage)
    key = item.key_for("p", "concurrent")
    decisions = await asyncio.gather(*(worker.hit(item, key) for _ in range(2000)))
    assert 1600 <= sum(decisions) <= 1600 + batch_size(item) - 1
    assert worker.round_trips < 600, f"{worker.round_trips} calls: the waiters did not share the one out"
    # Every admitted request reaches Redis at the next sync: one more (refused) request flushes the rest.
    assert not await worker.counter.sync(item, key)
    stats = await SlidingWindowCounterRateLimiter(storage).get_window_stats(item, "p", "concurrent")
    assert stats.remaining == 0


async def test_counts_are_shared_with_the_limits_library(storage: RedisStorage) -> None:
    item = parse("10/minute")
    by_limits = SlidingWindowCounterRateLimiter(storage)
    for _ in range(4):
        assert await by_limits.hit(item, "events-read", "shared")
    worker = Worker(storage)
    key = item.key_for("events-read", "shared")  # the key the rate limiter passes
    decisions = [await worker.hit(item, key) for _ in range(8)]
    assert decisions == [True] * 6 + [False] * 2
    assert not await by_limits.hit(item, "events-read", "shared")
    stats = await by_limits.get_window_stats(item, "events-read", "shared")
    assert stats.remaining == 0


async def test_a_switch_to_the_fallback_forgets_what_the_worker_knew(storage: RedisStorage) -> None:
    item = parse("1600/minute")
    worker = Worker(storage)
    assert await worker.hit(item, "p/forget")
    assert worker.counter.tracked == 1
    worker.counter.forget_all()
    assert worker.counter.tracked == 0
    assert await worker.hit(item, "p/forget")
    assert worker.round_trips == 2  # asked Redis again rather than trusting a view from before
