"""The embedded stack of the benchmarks: the project's own throwaway stack (chaos.stack.local.LocalStack), with
the service talking to PostgreSQL and Redis directly and rate limits out of the way."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from conformance.perf.console import Progress, stderr

if TYPE_CHECKING:
    from chaos.stack.local import LocalStack

# The embedded stack is the project's own: benchmarks measure the service, not its rate limits (which
# would answer 429 long before the database is busy) or the fault proxy (which sits between the service
# and its dependencies for the drills, and costs a hop per round trip).
# The overload gate admits DB_POOL_SIZE requests per worker at once and sheds those that wait longer than
# DB_QUEUE_TIMEOUT_S (503 DB_OVERLOADED). 32 benchmark clients put 16 on each of 2 workers; with the default
# pool of 10, a CPU stall on the shared 2-core machine turned queued requests into 503s although the database
# was not the bottleneck (docs/BENCHMARKS.md, issue 14 section). 20 leaves room for the whole load.
BENCH_SERVICE_ENV: dict[str, str] = {
    "RATE_LIMIT_READ": "100000000/minute",
    "RATE_LIMIT_WRITE": "100000000/minute",
    "DB_POOL_SIZE": "20",
    "LOG_LEVEL": "INFO",
}


def start_embedded_stack(
    *, workers: int, progress: Progress = stderr, service_env: Mapping[str, str] | None = None
) -> LocalStack:
    """chaos.stack.local.LocalStack with the service talking to PostgreSQL and Redis directly (not through the
    fault proxy) and rate limits far above what one load generator sends. The caller stops it."""
    # Imported when a stack is started: a remote profile needs none of the stack's dependencies.
    from chaos.stack.local import LocalStack

    stack = LocalStack(workers=workers, service_env={**BENCH_SERVICE_ENV, **(service_env or {})}, progress=progress)
    stack.start()
    try:
        progress("service: restarting it with direct PostgreSQL/Redis URLs (benchmarks bypass the fault proxy)")
        stack.restart_service({"DATABASE_URL": stack.database_url, "REDIS_URL": stack.redis_url})
    except BaseException:
        stack.stop()
        raise
    return stack
