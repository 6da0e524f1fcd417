"""Options shared by the service's Redis clients (readiness check and rate-limit storage).

After Redis restarts, every connection a client pooled is dead although Redis is up again, and the first
command on each fails with "Connection closed by server". Without a retry, the next readiness round would
call Redis down and the rate limiter would fall back to memory because of a restart that is already over.
One immediate retry on a fresh connection gives Redis's real answer; a Redis that is really down fails the
retry just as fast. Timeouts are not retried: the callers bound every Redis call (`HEALTH_CHECK_TIMEOUT_S`,
`RATE_LIMIT_REDIS_TIMEOUT_S`), and a hung Redis must be reported within that bound.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError


def redis_client_options(timeout_s: float) -> dict[str, Any]:
    """Keyword arguments for `redis.asyncio.Redis.from_url` (also accepted by `limits`' RedisStorage)."""
    return {
        "socket_timeout": timeout_s,
        "socket_connect_timeout": timeout_s,
        "retry": Retry(NoBackoff(), retries=1, supported_errors=(RedisConnectionError,)),
        "retry_on_error": [RedisConnectionError],
    }
