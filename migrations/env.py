"""Async alembic environment. The database comes from DATABASE_URL, as for the service."""

from __future__ import annotations

import asyncio
import os
from logging.config import fileConfig

from alembic import context
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from service.events.tables import metadata
from service.schema import schema_comment, still_serves

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = metadata


def _database_url() -> str:
    url = config.attributes.get("database_url") or os.environ.get("DATABASE_URL")
    if not url:
        raise SystemExit("DATABASE_URL is not set: alembic migrates the database it names.")
    scheme, separator, rest = str(url).partition("://")
    if not separator or scheme not in {"postgresql", "postgres", "postgresql+asyncpg"}:
        raise SystemExit("DATABASE_URL must be a postgresql:// URL.")
    return f"postgresql+asyncpg://{rest}"


def _record_still_serves(connection: Connection) -> None:
    """Write, in the migration's transaction, which earlier releases the schema now serves (service/schema.py):
    a release that does not know this revision reads it to decide its readiness."""
    revision = context.get_context().get_current_revision()
    if revision is None:
        return  # downgraded to base: no release is served, and alembic_version is empty
    served = still_serves(ScriptDirectory.from_config(config), revision)
    literal = schema_comment(revision, served).replace("'", "''")  # COMMENT takes no bind parameters
    connection.execute(text(f"COMMENT ON TABLE alembic_version IS '{literal}'"))


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()
        _record_still_serves(connection)


async def _run_online(engine: AsyncEngine | None = None) -> None:
    engine = engine or create_async_engine(_database_url(), poolclass=NullPool)
    async with engine.connect() as connection:
        await connection.run_sync(_run)
        await connection.commit()
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=_database_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
elif isinstance(given := config.attributes.get("connection"), AsyncEngine):
    asyncio.run(_run_online(given))  # a caller (e.g. pytest-alembic) hands over its engine
elif given is not None:
    _run(given)  # ... or an open connection
else:
    asyncio.run(_run_online())
