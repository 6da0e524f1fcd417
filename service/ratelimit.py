"""Per-principal rate limits in Redis, with the runbook's degraded mode when Redis fails (RB-RL-REDIS/DEGRADED).

Counting uses the `limits` library's sliding-window-counter strategy, against Redis (shared by every worker
and instance) or in process memory. Against Redis, a worker counts in batches (service/rate_counts.py): one
round trip per up to `SYNC_EVERY` requests of a principal, with a stated bound — at most
`workers × (batch - 1)` requests over the limit per window, never a refusal before the limit is reached.

Policy when Redis is down or slow — fail open, with local limits: a Redis call that errors or takes longer
than `RATE_LIMIT_REDIS_TIMEOUT_S` switches this worker to in-memory counters with the same limits (so while
degraded, the effective limit is multiplied by the number of worker processes). The switch is logged once,
counted, and shown in the `rate_limit_backend` gauge. A background probe pings Redis every
`RATE_LIMIT_PROBE_INTERVAL_S` and switches back by itself when Redis answers again. No request ever fails
because Redis did.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from dataclasses import dataclass
from typing import Literal

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.errors import StorageError
from redis.exceptions import RedisError

from service import metrics
from service.errors import ApiError
from service.rate_counts import BatchedWindowCounter
from service.redis_options import redis_client_options
from service.settings import Settings
from service.timeouts import within

log = logging.getLogger("service.ratelimit")

PolicyName = Literal["events:read", "events:write", "anonymous"]
_REDIS_FAILURES = (StorageError, RedisError, OSError, TimeoutError)


@dataclass(frozen=True, slots=True)
class Policy:
    name: str
    item: RateLimitItem

    @property
    def window_s(self) -> int:
        return int(self.item.get_expiry())


def _policies(settings: Settings) -> dict[PolicyName, Policy]:
    return {
        "events:read": Policy("events-read", parse(settings.rate_limit_read)),
        "events:write": Policy("events-write", parse(settings.rate_limit_write)),
        "anonymous": Policy("anonymous", parse(settings.rate_limit_anonymous)),
    }


class RateLimiter:
    """Checks a request against its policy; raises 429 problem+json when over the limit."""

    def __init__(self, settings: Settings) -> None:
        self.policies = _policies(settings)
        self._timeout_s = settings.rate_limit_redis_timeout_s
        self._probe_interval_s = settings.rate_limit_probe_interval_s
        self._memory = SlidingWindowCounterRateLimiter(MemoryStorage())
        self._redis_storage: RedisStorage | None = None
        self._redis: SlidingWindowCounterRateLimiter | None = None
        self._counter: BatchedWindowCounter | None = None
        if settings.rate_limit_backend == "redis":
            self._redis_storage = RedisStorage(
                "async+" + settings.redis_url.get_secret_value(),
                implementation="redispy",
                wrap_exceptions=True,
                key_prefix="events-api-rl",
                **redis_client_options(settings.rate_limit_redis_timeout_s),
            )
            self._redis = SlidingWindowCounterRateLimiter(self._redis_storage)
            self._counter = BatchedWindowCounter(self._redis_storage)
        self.using_redis = self._redis is not None
        self._probe: asyncio.Task[None] | None = None
        self._show_backend()

    @property
    def backend(self) -> str:
        return "redis" if self.using_redis else "memory"

    def _show_backend(self) -> None:
        metrics.RATE_LIMIT_BACKEND.labels("redis").set(1 if self.using_redis else 0)
        metrics.RATE_LIMIT_BACKEND.labels("memory").set(0 if self.using_redis else 1)

    def fall_back(self, reason: str) -> None:
        """Use the in-process counters until the probe sees Redis answer again (logged once per switch)."""
        if not self.using_redis:
            return
        self.using_redis = False
        if self._counter is not None:
            self._counter.forget_all()
        self._show_backend()
        metrics.RATE_LIMIT_BACKEND_CHANGES.labels("memory").inc()
        log.warning(
            "rate limiting switched to the in-process fallback: Redis failed",
            extra={"rate_limit_backend": "memory", "reason": reason},
        )

    def _recover(self) -> None:
        self.using_redis = True
        self._show_backend()
        metrics.RATE_LIMIT_BACKEND_CHANGES.labels("redis").inc()
        log.warning("rate limiting is back on Redis", extra={"rate_limit_backend": "redis"})

    async def _hit(self, policy: Policy, identity: str) -> bool:
        # The policy's name is part of the key: `limits` builds keys from the rate and the identifiers, so
        # two policies with the same rate would otherwise count in one bucket.
        if self.using_redis and self._counter is not None:
            key = policy.item.key_for(policy.name, identity)  # the key `limits` would use
            if self._counter.admit_locally(policy.item, key):
                return True
            try:
                return await within(self._timeout_s, self._counter.sync(policy.item, key))
            except _REDIS_FAILURES as error:
                self.fall_back(type(error).__name__)
        return await self._memory.hit(policy.item, policy.name, identity)

    async def _seconds_to_reset(self, policy: Policy, identity: str) -> tuple[int, int]:
        """(remaining, seconds until the window lets a request through again)."""
        limiter = self._redis if self.using_redis and self._redis is not None else self._memory
        try:
            stats = await within(self._timeout_s, limiter.get_window_stats(policy.item, policy.name, identity))
        except _REDIS_FAILURES:
            return 0, policy.window_s
        return stats.remaining, max(1, math.ceil(stats.reset_time - time.time()))

    async def check(self, policy_name: PolicyName, identity: str) -> None:
        """Count this request; 429 RATE_LIMITED with Retry-After and RateLimit headers when over."""
        policy = self.policies[policy_name]
        if await self._hit(policy, identity):
            return
        metrics.RATE_LIMITED.labels(policy.name).inc()
        remaining, reset_s = await self._seconds_to_reset(policy, identity)
        raise ApiError(
            429,
            "RATE_LIMITED",
            f"Rate limit of {policy.item.amount} per {policy.window_s} s exceeded; retry in {reset_s} s.",
            headers={
                "Retry-After": str(reset_s),
                "RateLimit-Policy": f'"{policy.name}";q={policy.item.amount};w={policy.window_s}',
                "RateLimit": f'"{policy.name}";r={remaining};t={reset_s}',
            },
            extra={"policy": policy.name},
        )

    async def _probe_redis(self) -> None:
        while True:
            await asyncio.sleep(self._probe_interval_s)
            if self.using_redis or self._redis_storage is None:
                continue
            with contextlib.suppress(*_REDIS_FAILURES):
                if await within(self._timeout_s, self._redis_storage.check()):
                    self._recover()

    def start(self) -> None:
        """Begin watching for Redis to come back (needs a running event loop)."""
        if self._redis is not None and self._probe is None:
            self._probe = asyncio.get_running_loop().create_task(self._probe_redis())

    async def stop(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe
            self._probe = None
