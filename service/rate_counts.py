"""Sliding-window rate-limit counts in Redis with one round trip per batch of requests, not per request.

The Redis round trip was the largest cost of an API request (120–160 µs of CPU per request, redis-py's own
per-command cost 60–80 µs of it; docs/BENCHMARKS.md). Here a worker admits most requests on what it already
knows and tells Redis about them in batches:

- each worker keeps, per (policy, principal), the window's weighted count as Redis last answered (`known`)
  and the requests it admitted since then without asking (`pending`);
- a request is admitted without a round trip when the worker synced within `MAX_AGE_S`, fewer than
  `batch - 1` requests are pending, and `known + pending + 1` stays within the limit;
- otherwise the request syncs: one Lua call adds the pending requests to the window (they were admitted
  already) and admits this one only if the window still has room, answering the new count.
  A request is therefore only ever refused on Redis's fresh count, never on a stale local one.

Bound (RB-RL-REDIS, docs/BENCHMARKS.md): requests admitted but not yet counted in Redis are at most
`batch - 1` per worker for each principal and policy, so within any window a principal gets at most
`limit + workers × (batch - 1)` requests through (over every worker of every instance), and is never refused
earlier than with a check per request. `batch` is `SYNC_EVERY` (16), but at most 1 % of the limit, so a small
limit (the tests' `3/minute`, the anonymous policy's per-address `120/minute`) is checked exactly, per request.

The Lua script works on the keys and with the arithmetic of the `limits` library's sliding-window counter
(`acquire_sliding_window.lua`, limits 5.8.0), so counts taken through `limits` (the previous release during a
rolling deploy, `get_window_stats` for a 429's headers) and through this module are one count;
tests/service/test_rate_counts.py pins that.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, Final, cast

from limits import RateLimitItem
from limits.aio.storage import RedisStorage

SYNC_EVERY: Final = 16
# A count older than this is asked for again, so an idle worker does not admit on a stale view.
MAX_AGE_S: Final = 1.0
# Principals tracked per worker; any beyond are checked per request (exact), so memory stays bounded.
MAX_TRACKED: Final = 4096

# `limits`' acquire_sliding_window.lua, with `pending` added unconditionally (those requests were admitted
# already) and one more admitted only if it fits. Returns {admitted 0/1, weighted count after}.
_SYNC_SCRIPT: Final = """
local limit = tonumber(ARGV[1])
local expiry = tonumber(ARGV[2]) * 1000
local pending = tonumber(ARGV[3])

local current_ttl = tonumber(redis.call('pttl', KEYS[2]))
if current_ttl > 0 and current_ttl < expiry then
    -- the current window ended: it becomes the previous one (as limits does it)
    redis.call('rename', KEYS[2], KEYS[1])
    redis.call('set', KEYS[2], 0, 'PX', current_ttl + expiry)
end

local previous_count = tonumber(redis.call('get', KEYS[1])) or 0
local previous_ttl = tonumber(redis.call('pttl', KEYS[1])) or 0
local current_count = tonumber(redis.call('get', KEYS[2])) or 0
if previous_ttl <= 0 then
    previous_ttl = 0
end
local weighted = math.floor(previous_count * previous_ttl / expiry) + current_count + pending

local admitted = 0
if weighted + 1 <= limit then
    admitted = 1
end
local amount = pending + admitted
if amount > 0 then
    if redis.call('exists', KEYS[2]) == 1 then
        redis.call('incrby', KEYS[2], amount)
    else
        redis.call('set', KEYS[2], amount, 'PX', expiry * 2)
    end
end
return {admitted, weighted + admitted}
"""


def batch_size(item: RateLimitItem, sync_every: int = SYNC_EVERY) -> int:
    """Requests per round trip for `item`: `sync_every`, but at most 1 % of the limit (at least 1)."""
    return max(1, min(sync_every, item.amount // 100))


@dataclass(slots=True)
class _View:
    known: int  # the window's weighted count as Redis last answered, this worker's hits included
    pending: int  # admitted here since, not yet counted in Redis
    synced_at: float  # time.monotonic() of that answer
    window_s: int


class BatchedWindowCounter:
    """The Redis side of the rate limiter: `admit_locally` first (no I/O), else `await sync(...)`."""

    def __init__(self, storage: RedisStorage, *, sync_every: int = SYNC_EVERY) -> None:
        self._storage = storage
        self._sync_every = sync_every
        bridge = cast(Any, storage.bridge)
        self._prefixed = bridge.prefixed_key
        self._script = bridge.get_connection().register_script(_SYNC_SCRIPT)
        self._views: dict[str, _View] = {}
        self._in_flight: dict[str, asyncio.Future[None]] = {}

    def _keys(self, key: str) -> list[str]:
        # The key names of `limits`' RedisStorage for a sliding window: "{key}" and "{key}/-1", prefixed.
        current = f"{{{key}}}"
        return [self._prefixed(f"{current}/-1"), self._prefixed(current)]

    def admit_locally(self, item: RateLimitItem, key: str) -> bool:
        """True when this request is admitted without asking Redis (see the module docstring); False means
        `sync` decides, never that the request is refused."""
        view = self._views.get(key)
        if view is None:
            return False
        batch = batch_size(item, self._sync_every)
        if view.pending + 1 >= batch or view.known + view.pending + 1 > item.amount:
            return False
        if time.monotonic() - view.synced_at > MAX_AGE_S:
            return False
        view.pending += 1
        return True

    async def sync(self, item: RateLimitItem, key: str) -> bool:
        """Count the pending requests in Redis and this one if the window has room: True when admitted.
        Raises what redis-py raises; the pending requests then stay uncounted (within the bound).

        One call per principal and policy is out at a time: a request that finds one out waits for its
        answer and then tries to be admitted on it, so a burst of one principal's requests costs one round
        trip per batch, not one each (and cannot take every pooled Redis connection)."""
        while (out := self._in_flight.get(key)) is not None:
            await asyncio.shield(out)  # shielded: a waiter that times out must not cancel it for the others
            if self.admit_locally(item, key):
                return True
        answered = asyncio.get_running_loop().create_future()
        self._in_flight[key] = answered
        try:
            return await self._sync_once(item, key)
        finally:
            del self._in_flight[key]
            answered.set_result(None)

    async def _sync_once(self, item: RateLimitItem, key: str) -> bool:
        view = self._views.get(key)
        pending = 0
        if view is not None:
            pending, view.pending = view.pending, 0  # taken now: a concurrent sync must not send them again
        admitted, count = await self._script(self._keys(key), [item.amount, item.get_expiry(), pending])
        if batch_size(item, self._sync_every) > 1:
            self._remember(key, int(count), int(item.get_expiry()))
        return bool(admitted)

    def _remember(self, key: str, count: int, window_s: int) -> None:
        now = time.monotonic()
        view = self._views.get(key)
        if view is not None:
            view.known = count  # requests admitted locally while this call was out stay pending
            view.synced_at = now
            return
        if len(self._views) >= MAX_TRACKED:
            self._forget_idle(now)
            if len(self._views) >= MAX_TRACKED:
                return  # this principal is checked per request until room is made
        self._views[key] = _View(known=count, pending=0, synced_at=now, window_s=window_s)

    def _forget_idle(self, now: float) -> None:
        # A view with requests pending is kept (they are counted at its next sync) until the windows they
        # fall in are over (two: the sliding window weighs the previous one), when they no longer matter.
        idle = [
            key
            for key, view in self._views.items()
            if now - view.synced_at > (MAX_AGE_S if view.pending == 0 else 2 * view.window_s)
        ]
        for key in idle:
            del self._views[key]

    def forget_all(self) -> None:
        """Drop every view (on a switch to the memory fallback: Redis's count may be gone when it returns)."""
        self._views.clear()

    @property
    def tracked(self) -> int:
        return len(self._views)
