"""RB-ROLLBACK-SCHEMA: every revision declares its rollback safety, upgrades and downgrades step by step with
data checked after each step (a stairway), pytest-alembic's standard checks pass, and the operator check
refuses a downgrade that is not declared data-safe."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from pytest_alembic import Config as AlembicTestConfig
from pytest_alembic.tests import (  # noqa: F401 - collected as tests of this module
    test_model_definitions_match_ddl,
    test_single_head_revision,
    test_up_down_consistency,
    test_upgrade,
)
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from scripts.check_migration_rollback import declaration, script_directory

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def _sync(coroutine: Any) -> Any:
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


async def _query(url: str, sql: str, *args: Any) -> Any:
    connection = await asyncpg.connect(url)
    try:
        return await connection.fetch(sql, *args)
    finally:
        await connection.close()


def alembic(url: str, *args: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "alembic", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "DATABASE_URL": url},
        check=False,
    )
    assert result.returncode == 0, result.stderr


def revision(url: str) -> str | None:
    rows = _sync(_query(url, "SELECT to_regclass('alembic_version') IS NOT NULL AS present"))
    if not rows[0]["present"]:
        return None
    rows = _sync(_query(url, "SELECT version_num FROM alembic_version"))
    return str(rows[0]["version_num"]) if rows else None


# -- pytest-alembic's standard tests (single head, upgrade, up/down consistency, models match DDL) ---------
@pytest.fixture
def alembic_config() -> AlembicTestConfig:
    return AlembicTestConfig(
        config_options={"file": str(REPO / "alembic.ini"), "script_location": str(REPO / "migrations")}
    )


@pytest.fixture
def alembic_engine(fresh_database: Callable[[], str]) -> Iterator[AsyncEngine]:
    engine = create_async_engine(fresh_database().replace("postgresql://", "postgresql+asyncpg://", 1))
    yield engine
    _sync(engine.dispose())


# -- the project's own rules -----------------------------------------------------------------------------------
def test_every_revision_declares_whether_its_downgrade_is_reversible_and_data_safe() -> None:
    for script in script_directory().walk_revisions():
        module = script.module
        assert isinstance(getattr(module, "downgrade_reversible", None), bool), script.revision
        assert isinstance(getattr(module, "downgrade_data_safe", None), bool), script.revision


def _seed(url: str, count: int) -> list[str]:
    ids = [str(uuid.uuid4()) for _ in range(count)]
    _sync(
        _query(
            url,
            "INSERT INTO events (id, source, type, occurred_at) "
            "SELECT i, 'stairway', 'step', now() - (n || ' minutes')::interval "
            "FROM unnest($1::uuid[]) WITH ORDINALITY AS t(i, n)",
            ids,
        )
    )
    return ids


def _stored(url: str, ids: list[str]) -> int:
    rows = _sync(_query(url, "SELECT count(*) AS n FROM events WHERE id = ANY($1::uuid[])", ids))
    return int(rows[0]["n"])


def test_stairway_up_down_up_every_revision_with_data_checked(fresh_database: Callable[[], str]) -> None:
    url = fresh_database()
    scripts = list(reversed(list(script_directory().walk_revisions())))  # base → head
    seeded: list[str] = []
    for script in scripts:
        alembic(url, "upgrade", script.revision)
        assert revision(url) == script.revision
        seeded += _seed(url, 25)
        assert _stored(url, seeded) == len(seeded)
        reversible, data_safe = declaration(script)
        assert reversible, f"{script.revision} must be reversible to be in this project"
        alembic(url, "downgrade", "-1")
        assert revision(url) == script.down_revision
        if data_safe:
            assert _stored(url, seeded) == len(seeded), f"{script.revision}: a data-safe downgrade lost events"
        alembic(url, "upgrade", script.revision)
        assert revision(url) == script.revision
        if data_safe:
            assert _stored(url, seeded) == len(seeded), f"{script.revision}: up after down lost events"
        else:
            seeded = []  # the declared data loss happened (e.g. the first revision drops the table)


def _check(url: str | None, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ}
    env.pop("DATABASE_URL", None)
    if url:
        env["DATABASE_URL"] = url
    return subprocess.run(
        [sys.executable, "scripts/check_migration_rollback.py", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_operator_check_allows_a_data_safe_downgrade_and_refuses_an_unsafe_one(
    fresh_database: Callable[[], str],
) -> None:
    scripts = script_directory()
    head = scripts.get_revision(scripts.get_current_head() or "")
    assert head is not None
    url = fresh_database()
    alembic(url, "upgrade", "head")
    ids = _seed(url, 10)

    at_head = _check(url)
    head_safe = all(declaration(head))
    assert at_head.returncode == (0 if head_safe else 1), at_head.stdout
    assert ("SAFE" if head_safe else "UNSAFE") in at_head.stdout

    # Walk down while the revisions say it is safe; each step keeps every event.
    while (current := revision(url)) is not None:
        script = scripts.get_revision(current)
        assert script is not None
        if not all(declaration(script)):
            break
        done = _check(url, "--run")
        assert done.returncode == 0, done.stdout + done.stderr
        assert revision(url) == script.down_revision
        assert _stored(url, ids) == len(ids)

    unsafe_at = revision(url)
    assert unsafe_at is not None, "the first revision drops the table, so it is declared unsafe"
    refused = _check(url, "--run")
    assert refused.returncode == 1
    assert "REFUSED" in refused.stderr
    assert revision(url) == unsafe_at, "a refused downgrade changes nothing"
    forced = _check(url, "--run", "--force-unsafe")
    assert forced.returncode == 0, forced.stderr
    assert revision(url) != unsafe_at


def test_operator_check_without_a_database_reads_the_repository_head() -> None:
    result = _check(None)
    head = script_directory().get_current_head()
    assert f"revision {head} (the repository's head)" in result.stdout
    assert result.returncode in (0, 1)
