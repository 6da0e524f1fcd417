"""The database: table definitions (SQLAlchemy Core), the engine, and the bounded gate in front of it.

The schema itself is created and changed only by alembic (`migrations/`); the tables here describe it for
queries, and `tests/integration/test_migrations.py` checks that the two agree.

Every request's database work goes through `Database.run`, which makes the runbook's DB promises hold:
- overload protection (RB-DB-OVERLOAD): at most `DB_MAX_CONCURRENCY` operations at once per worker; a
  request waits at most `DB_QUEUE_TIMEOUT_S` for a slot, else 503 DB_OVERLOADED with Retry-After;
- fail-fast (RB-DB-FAILFAST): the work is answered within `DB_REQUEST_TIMEOUT_S` whatever the database does
  (down, refusing, hung), as 503 DEPENDENCY_UNAVAILABLE with Retry-After, never a 500 or a hang;
- recovery without restart (RB-DB-RECOVER): connections are checked before use and replaced when broken.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg
import orjson
from sqlalchemy import (
    CheckConstraint,
    Column,
    DateTime,
    Index,
    MetaData,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
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
    CheckConstraint("char_length(source) BETWEEN 1 AND 128", name="ck_events_source_length"),
    CheckConstraint("char_length(type) BETWEEN 1 AND 128", name="ck_events_type_length"),
    # Each list/stats query filters by at most one of source/type and a time range, newest first.
    Index("ix_events_occurred_at_id", "occurred_at", "id"),
    Index("ix_events_source_occurred_at_id", "source", "occurred_at", "id"),
    Index("ix_events_type_occurred_at_id", "type", "occurred_at", "id"),
)


def _json_dumps(value: object) -> str:
    return orjson.dumps(value).decode()


def create_engine(settings: Settings, *, pool_size: int | None = None) -> AsyncEngine:
    """A pooled asyncpg engine whose every wait is bounded."""
    return create_async_engine(
        settings.sqlalchemy_database_url,
        pool_size=pool_size or settings.db_pool_size,
        max_overflow=0,
        pool_timeout=settings.db_request_timeout_s,
        pool_pre_ping=settings.db_pool_pre_ping,
        json_serializer=_json_dumps,
        json_deserializer=orjson.loads,
        connect_args={
            "timeout": settings.db_connect_timeout_s,
            "command_timeout": settings.db_statement_timeout_s,
            "server_settings": {
                "application_name": "events-api",
                # The server gives up on a statement too, so a slow database is not loaded further.
                "statement_timeout": str(int(settings.db_statement_timeout_s * 1000)),
            },
        },
    )


def is_unavailable(error: BaseException) -> bool:
    """Is this failure the database being unavailable (down, refusing, hung, shutting down)?"""
    if isinstance(error, OSError | TimeoutError | PoolTimeoutError):
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
        if isinstance(current, OSError | TimeoutError | asyncpg.ConnectionDoesNotExistError):
            return True
        current = current.__cause__ or current.__context__
    return False


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
        if self._slots.locked() and self._waiting >= self._max_queue:
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


class Database:
    """The engine plus the gate; `run` is the only way request handlers reach PostgreSQL."""

    def __init__(self, settings: Settings) -> None:
        self.engine = create_engine(settings)
        self._request_timeout_s = settings.db_request_timeout_s
        self.gate = DatabaseGate(
            capacity=settings.db_concurrency,
            queue_timeout_s=settings.db_queue_timeout_s,
            max_queue=settings.db_max_queue,
        )

    async def run(self, operation: Callable[[AsyncEngine], Awaitable[T]]) -> T:
        """Run `operation(engine)` under the gate and the request bound, translating unavailability to 503."""
        started = time.monotonic()
        await self.gate.acquire(self._request_timeout_s)
        try:
            remaining = self._request_timeout_s - (time.monotonic() - started)

            async def work() -> T:
                return await operation(self.engine)

            return await within(remaining, work())
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
        await self.engine.dispose()
