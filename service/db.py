"""The database: table definitions (SQLAlchemy Core), the async engine, and failure translation.

The schema itself is created and changed only by alembic (`migrations/`); the tables here describe it for
queries, and `tests/integration/test_migrations.py` checks that the two agree.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

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
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from service.errors import ApiError
from service.settings import Settings

RETRY_AFTER_SECONDS = 2

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


def create_engine(settings: Settings) -> AsyncEngine:
    """A pooled asyncpg engine whose every wait is bounded, so a sick database yields 503s, not hangs."""
    return create_async_engine(
        settings.sqlalchemy_database_url,
        pool_size=settings.db_pool_size,
        max_overflow=0,
        pool_timeout=settings.db_statement_timeout_s,
        json_serializer=_json_dumps,
        json_deserializer=orjson.loads,
        connect_args={
            "timeout": settings.db_connect_timeout_s,
            "command_timeout": settings.db_statement_timeout_s,
            "server_settings": {"application_name": "events-api"},
        },
    )


_UNAVAILABLE_ERRORS = (
    OperationalError,
    InterfaceError,
    PoolTimeoutError,
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
)


def _is_unavailable(error: BaseException) -> bool:
    if isinstance(error, _UNAVAILABLE_ERRORS):
        return True
    if isinstance(error, DBAPIError):
        return error.connection_invalidated or isinstance(error.orig, _UNAVAILABLE_ERRORS)
    return False


@asynccontextmanager
async def database_errors() -> AsyncIterator[None]:
    """Turn 'the database is down, refusing or too slow' into 503 DEPENDENCY_UNAVAILABLE with Retry-After."""
    try:
        yield
    except ApiError:
        raise
    except Exception as error:
        if not _is_unavailable(error):
            raise
        raise ApiError(
            503,
            "DEPENDENCY_UNAVAILABLE",
            "The database is unavailable; retry later.",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            extra={"dependency": "database"},
        ) from error
