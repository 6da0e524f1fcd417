"""The database: table definitions (SQLAlchemy Core), the connection pool, and the bounded gate in front of it.

The schema itself is created and changed only by alembic (`migrations/`); the tables here describe it for
alembic and the readiness check, and `tests/integration/test_migrations.py` checks that the two agree.

Every request's database work goes through `Database.run`, which makes the runbook's DB promises hold:
- overload protection (RB-DB-OVERLOAD): at most `DB_MAX_CONCURRENCY` operations at once per worker; a
  request waits at most `DB_QUEUE_TIMEOUT_S` for a slot, else 503 DB_OVERLOADED with Retry-After;
- fail-fast (RB-DB-FAILFAST): the work is answered within `DB_REQUEST_TIMEOUT_S` whatever the database does
  (down, refusing, hung), as 503 DEPENDENCY_UNAVAILABLE with Retry-After, never a 500 or a hang;
- recovery without restart (RB-DB-RECOVER): connections are checked before use and replaced when broken.

Request work runs on an asyncpg pool, one statement per request: a statement is atomic by itself, so the
pool runs in autocommit (no BEGIN/ROLLBACK around it) and does not reset a connection it gets back (the
service sets no session state). Measured on the project's 2-core machine, a primary-key read through
SQLAlchemy's pool with `pool_pre_ping` took 6 round trips and 1.15 ms; this takes 1 round trip and 0.2 ms
(docs/BENCHMARKS.md). "Checked before use" costs no round trip: a connection whose server went away (stopped,
restarted, crashed: the socket is closed) is seen as closed when it is taken from the pool and replaced
(`DB_POOL_PRE_PING=true` adds a `SELECT 1` round trip before each use, for networks that lose connections
without closing them). A read that still meets a connection lost mid-flight is retried once on a fresh
one, within the same bound; a write is not retried (its client can retry with the same ids).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg
import orjson
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from service import metrics
from service.bounded import within
from service.errors import ApiError
from service.settings import Settings

T = TypeVar("T")
RETRY_AFTER_UNAVAILABLE_S = 2
RETRY_AFTER_OVERLOADED_S = 1

# SQLSTATE classes that mean "the database cannot serve now", not "this request is wrong":
# 08 connection exception, 53 insufficient resources, 57 operator intervention (shutdown, query
# cancelled by statement_timeout, cannot connect now), 58 system error.
_UNAVAILABLE_SQLSTATE_CLASSES = frozenset({"08", "53", "57", "58"})

metadata = MetaData()

events = Table(
    "events",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("source", Text, nullable=False),
    Column("type", Text, nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("attributes", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("written_by", Text, nullable=True),  # the principal that stored it (NULL before revision 0003)
    Column("attributes_size", Integer, nullable=True),  # bytes of compact JSON (NULL before revision 0003)
    CheckConstraint("char_length(source) BETWEEN 1 AND 128", name="ck_events_source_length"),
    CheckConstraint("attributes_size >= 0", name="ck_events_attributes_size"),
    CheckConstraint("char_length(type) BETWEEN 1 AND 128", name="ck_events_type_length"),
    # Each list/stats query filters by at most one of source/type and a time range, newest first.
    Index("ix_events_occurred_at_id", "occurred_at", "id"),
    Index("ix_events_source_occurred_at_id", "source", "occurred_at", "id"),
    Index("ix_events_type_occurred_at_id", "type", "occurred_at", "id"),
)


def _rollup(width: str) -> Table:
    """Events per (bucket start, source, type) at one bucket width, kept exact by triggers on `events`
    (migrations/versions/0002_event_count_rollups.py), so counts over long ranges read a few rows per bucket
    instead of every event."""
    return Table(
        f"event_counts_{width}",
        metadata,
        Column("bucket_start", DateTime(timezone=True), primary_key=True),
        Column("source", Text, primary_key=True),
        Column("type", Text, primary_key=True),
        Column("count", BigInteger, nullable=False),
        Index(f"ix_event_counts_{width}_source_bucket_start", "source", "bucket_start"),
        Index(f"ix_event_counts_{width}_type_bucket_start", "type", "bucket_start"),
        postgresql_with={"fillfactor": 80},  # room for the counts' HOT updates
    )


ROLLUP_WIDTHS = ("minute", "hour", "day")
event_counts = {width: _rollup(width) for width in ROLLUP_WIDTHS}


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
        # stats query took 18 ms with 2 parallel workers, 11 ms without, on the project's 2-core machine).
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


def is_unavailable(error: BaseException) -> bool:
    """Is this failure the database being unavailable (down, refusing, hung, shutting down)?"""
    if isinstance(error, OSError | TimeoutError):
        return True
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        sqlstate = getattr(current, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate[:2] in _UNAVAILABLE_SQLSTATE_CLASSES:
            return True
        if isinstance(current, OSError | TimeoutError | asyncpg.ConnectionDoesNotExistError) or _unusable(current):
            return True
        current = current.__cause__ or current.__context__
    return False


def _unusable(error: BaseException) -> bool:
    """asyncpg found the connection unusable before the statement reached the server: closed ("connection is
    closed", it went away between taking it and using it), or left mid-operation by the failure of the one
    before it (InternalClientError "cannot switch to state 12; another operation (2) is in progress", seen in
    drills right after a database crash)."""
    if isinstance(error, asyncpg.InternalClientError):
        return True
    return isinstance(error, asyncpg.InterfaceError) and "connection is closed" in str(error)


def _connection_lost(error: BaseException) -> bool:
    """The connection died under the statement (not a timeout, not the server refusing work)."""
    return isinstance(error, asyncpg.ConnectionDoesNotExistError | ConnectionError) or _unusable(error)


def unavailable_error() -> ApiError:
    return ApiError(
        503,
        "DEPENDENCY_UNAVAILABLE",
        "The database is unavailable; retry later.",
        headers={"Retry-After": str(RETRY_AFTER_UNAVAILABLE_S)},
        extra={"dependency": "database"},
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

    async def _attempt(self, operation: Operation[T], deadline: float) -> T:
        async with self._pool.acquire(timeout=max(deadline - time.monotonic(), 0.001)) as connection:
            if self._pre_ping:
                await connection.execute("SELECT 1")
            return await operation(connection)

    async def _work(self, operation: Operation[T], deadline: float, retry: bool) -> T:
        try:
            return await self._attempt(operation, deadline)
        except Exception as error:
            if not (retry and _connection_lost(error)):
                raise
        # The connection was lost under a read (the server restarted while it sat in the pool, say):
        # asyncpg has dropped it, so this runs on a fresh one.
        return await self._attempt(operation, deadline)

    async def run(self, operation: Operation[T], *, read_only: bool = False) -> T:
        """Run `operation(connection)` (one statement) under the gate and the request bound, translating
        unavailability to 503. `read_only` operations are retried once on a connection found lost."""
        started = time.monotonic()
        await self.gate.acquire(self._request_timeout_s)
        try:
            deadline = started + self._request_timeout_s
            return await within(deadline - time.monotonic(), self._work(operation, deadline, read_only))
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
