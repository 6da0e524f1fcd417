"""Schema only through alembic: the CLI works from the repo root, both ways, and matches the models."""

from __future__ import annotations

from collections.abc import Callable

import asyncpg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from chaos.stack.migrations import migrate
from service.events.tables import metadata

pytestmark = pytest.mark.integration


async def _state(url: str) -> tuple[str | None, bool]:
    connection = await asyncpg.connect(url)
    try:
        has_events = bool(await connection.fetchval("SELECT to_regclass('events') IS NOT NULL"))
        has_version = bool(await connection.fetchval("SELECT to_regclass('alembic_version') IS NOT NULL"))
        revision = await connection.fetchval("SELECT version_num FROM alembic_version") if has_version else None
        return revision, has_events
    finally:
        await connection.close()


async def test_upgrade_downgrade_upgrade_from_the_cli(fresh_database: Callable[[], str]) -> None:
    url = fresh_database()
    migrate(url)
    assert await _state(url) == ("0003", True)
    migrate(url, "-1", direction="downgrade")
    assert await _state(url) == ("0002", True)  # 0003 (writer and size columns) goes; the events stay
    migrate(url, "-1", direction="downgrade")
    assert await _state(url) == ("0001", True)  # 0002 (the rollups) goes; the events stay
    migrate(url, "-1", direction="downgrade")
    assert await _state(url) == (None, False)
    migrate(url)
    assert await _state(url) == ("0003", True)


async def test_models_match_the_migrated_schema(database_url: str) -> None:
    engine = create_async_engine(database_url.replace("postgresql://", "postgresql+asyncpg://", 1))

    def differences(connection: Connection) -> list[object]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))

    try:
        async with engine.connect() as connection:
            assert await connection.run_sync(differences) == []
    finally:
        await engine.dispose()
