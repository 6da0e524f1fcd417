"""PostgreSQL connections: the request pool behind its bounded gate (`Database.run`), and the readiness engine.

Every request's database work goes through `Database.run`, which makes the runbook's DB promises hold:
- overload protection (RB-DB-OVERLOAD): at most `DB_MAX_CONCURRENCY` operations at once per worker; a
  request waits at most `DB_QUEUE_TIMEOUT_S` for a slot, else 503 DB_OVERLOADED with Retry-After;
- fail-fast (RB-DB-FAILFAST): the work is answered within `DB_REQUEST_TIMEOUT_S` whatever the database does
  (down, refusing, hung), as 503 DEPENDENCY_UNAVAILABLE with Retry-After, never a 500 or a hang
  (service/db_errors.py decides which failures those are);
- recovery without restart (RB-DB-RECOVER): connections are checked before use and replaced when broken.

Request work runs on an asyncpg pool, one statement per request: a statement is atomic by itself, so the
pool runs in autocommit (no BEGIN/ROLLBACK around it) and does not reset a connection it gets back (the
service sets no session state). That costs one round trip per read where SQLAlchemy's pool with
`pool_pre_ping` took several (docs/BENCHMARKS.md). "Checked before use" costs no round trip: a connection
whose server went away (stopped, restarted, crashed: the socket is closed) is seen as closed when it is taken
from the pool and replaced (`DB_POOL_PRE_PING=true` adds a `SELECT 1` round trip before each use, for
networks that lose connections without closing them). A read that still meets a connection lost mid-flight
is retried once on a fresh one, within the same bound; a write is not retried (its client can retry with the
same ids).

The table definitions alembic works from are in service/events/tables.py.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg
import orjson
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from service import metrics
from service.db_errors import connection_lost, is_unavailable, unavailable_error
from service.errors import ApiError
from service.settings import Settings
from service.timeouts import within

T = TypeVar("T")
RETRY_AFTER_OVERLOADED_S = 1


def _json_dumps(value: object) -> str:
    return orjson.dumps(value).decode()


def create_engine(settings: Settings, *, pool_size: int | None = None) -> AsyncEngine:
    """A pooled SQLAlchemy engine whose every wait is bounded (the readiness check's own connection)."""
    return create_async_engine(
        settings.sqlalchemy_database_url,
        pool_size=pool_size or settings.db_pool_size,
        max_overflow=0,
        pool_timeout=settings.db_request_timeout_s,
        pool_pre_ping=True,
        json_serializer=_json_dumps,
        json_deserializer=orjson.loads,
        connect_args={
            "timeout": settings.db_connect_timeout_s,
            "command_timeout": settings.db_statement_timeout_s,
            "server_settings": _server_settings(settings),
        },
    )


def _server_settings(settings: Settings) -> dict[str, str]:
    return {
        "application_name": "events-api",
        # The server gives up on a statement too, so a slow database is not loaded further.
        "statement_timeout": str(int(settings.db_statement_timeout_s * 1000)),
        # Many short concurrent statements: a parallel plan forks background workers for one request's
        # scan, which costs more than it saves here and takes cores from the other requests (the 30-day
        # stats query is faster without: docs/BENCHMARKS.md).
        "max_parallel_workers_per_gather": "0",
    }


async def _prepare_connection(connection: asyncpg.Connection) -> None:
    """jsonb in and out as Python objects, (de)serialised by orjson."""
    await connection.set_type_codec("jsonb", encoder=_json_dumps, decoder=orjson.loads, schema="pg_catalog")


async def _keep_session(connection: asyncpg.Connection) -> None:
    """Nothing to reset: the service runs single statements in autocommit and sets no session state.
    (asyncpg still rolls back a transaction left open, which the service never does.)"""


def create_pool(settings: Settings) -> asyncpg.Pool:
    """The request pool (not yet initialised: `await` it). It opens connections on demand, so the service
    starts while the database is down and connects once it is back."""
    return asyncpg.create_pool(
        settings.asyncpg_dsn,
        min_size=0,
        max_size=settings.db_pool_size,
        timeout=settings.db_connect_timeout_s,
        command_timeout=settings.db_statement_timeout_s,
        server_settings=_server_settings(settings),
        init=_prepare_connection,
        reset=_keep_session,
    )


class DatabaseGate:
    """A concurrency cap with a short, bounded queue in front of database work."""

    def __init__(self, *, capacity: int, queue_timeout_s: float, max_queue: int) -> None:
        self._slots = asyncio.Semaphore(capacity)
        self._queue_timeout_s = queue_timeout_s
        self._max_queue = max_queue
        self._waiting = 0

    def _overloaded(self) -> ApiError:
        metrics.DB_GATE_REJECTED.inc()
        return ApiError(
            503,
            "DB_OVERLOADED",
            "The database is at capacity; retry shortly.",
            headers={"Retry-After": str(RETRY_AFTER_OVERLOADED_S)},
        )

    async def acquire(self, budget_s: float) -> None:
        if not self._slots.locked():
            await self._slots.acquire()  # a free slot: taken at once, no timer needed
        else:
            if self._waiting >= self._max_queue:
                raise self._overloaded()
            self._waiting += 1
            try:
                async with asyncio.timeout(min(self._queue_timeout_s, budget_s)):
                    await self._slots.acquire()
            except TimeoutError:
                raise self._overloaded() from None
            finally:
                self._waiting -= 1
        metrics.DB_GATE_IN_USE.inc()

    def release(self) -> None:
        metrics.DB_GATE_IN_USE.dec()
        self._slots.release()


Operation = Callable[[asyncpg.Connection], Awaitable[T]]


class Database:
    """The request pool plus the gate; `run` is the only way request handlers reach PostgreSQL."""

    def __init__(self, settings: Settings) -> None:
        self._pool = create_pool(settings)
        self._opened = False
        self._request_timeout_s = settings.db_request_timeout_s
        self._pre_ping = settings.db_pool_pre_ping
        self.gate = DatabaseGate(
            capacity=settings.db_concurrency,
            queue_timeout_s=settings.db_queue_timeout_s,
            max_queue=settings.db_max_queue,
        )

    async def open(self) -> None:
        """Initialise the pool (connects nothing: connections open on first use)."""
        if not self._opened:
            await self._pool
            self._opened = True

    async def _attempt(self, operation: Operation[T]) -> T:
        # No timeout of its own: `run` bounds the whole of the work (`within`) and cancels a wait for a
        # connection at the deadline; asyncpg's acquire timeout would add a task and a timer to every request.
        async with self._pool.acquire() as connection:
            if self._pre_ping:
                await connection.execute("SELECT 1")
            return await operation(connection)

    async def _work(self, operation: Operation[T], retry: bool) -> T:
        try:
            return await self._attempt(operation)
        except Exception as error:
            if not (retry and connection_lost(error)):
                raise
        # The connection was lost under a read (the server restarted while it sat in the pool, say):
        # asyncpg has dropped it, so this runs on a fresh one.
        return await self._attempt(operation)

    async def run(self, operation: Operation[T], *, read_only: bool = False) -> T:
        """Run `operation(connection)` (one statement) under the gate and the request bound, translating
        unavailability to 503. `read_only` operations are retried once on a connection found lost."""
        started = time.monotonic()
        await self.gate.acquire(self._request_timeout_s)
        try:
            deadline = started + self._request_timeout_s
            return await within(deadline - time.monotonic(), self._work(operation, read_only))
        except ApiError:
            raise
        except Exception as error:
            if not is_unavailable(error):
                raise
            metrics.DEPENDENCY_ERRORS.labels("database").inc()
            raise unavailable_error() from error
        finally:
            self.gate.release()

    async def dispose(self) -> None:
        """Close the pool; connections to a database that no longer answers are dropped, not waited for."""
        if self._opened:
            try:
                await asyncio.wait_for(self._pool.close(), self._request_timeout_s)
            except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                self._pool.terminate()
