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

from chaos.drills.scenarios.release import schema_downgrade
from conformance.operator.migration_rollback import (
    REVISION_CHANGED,
    declaration,
    run_downgrade,
    script_directory,
    verdict_for,
)

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
def test_every_revision_declares_its_downgrade_safety_and_whether_it_is_expand_only() -> None:
    for script in script_directory().walk_revisions():
        module = script.module
        assert isinstance(getattr(module, "downgrade_reversible", None), bool), script.revision
        assert isinstance(getattr(module, "downgrade_data_safe", None), bool), script.revision
        assert isinstance(getattr(module, "expand_only", None), bool), f"{script.revision}: declare expand_only"


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


# -- the rollback race: what was checked is what is downgraded, or nothing is -----------------------------------
def _safe_revision_with_a_parent() -> tuple[str, str]:
    """The newest revision declared safe to downgrade, and its down revision."""
    for script in script_directory().walk_revisions():
        if all(declaration(script)) and isinstance(script.down_revision, str):
            return script.revision, script.down_revision
    raise AssertionError("no revision is declared reversible and data-safe")


def test_rollback_run_refuses_when_the_revision_changed_since_the_check(fresh_database: Callable[[], str]) -> None:
    checked, parent = _safe_revision_with_a_parent()
    url = fresh_database()
    alembic(url, "upgrade", checked)
    ids = _seed(url, 5)
    verdict = verdict_for(checked, script_directory())
    assert verdict.safe
    # Between the check and the run, another operator downgrades: `downgrade -1` would now undo `parent`,
    # a revision nobody checked (the first one drops the events table).
    alembic(url, "downgrade", parent)
    assert run_downgrade(url, verdict) == REVISION_CHANGED
    assert revision(url) == parent, "nothing was downgraded"
    alembic(url, "upgrade", checked)
    assert _stored(url, ids) == len(ids)
    # And the other way: the database moved on to a newer revision after an older one was checked.
    old_verdict = verdict_for(parent, script_directory())
    assert run_downgrade(url, old_verdict, force_unsafe=True) == REVISION_CHANGED
    assert revision(url) == checked


def test_rollback_run_downgrades_exactly_the_checked_revision(fresh_database: Callable[[], str]) -> None:
    checked, parent = _safe_revision_with_a_parent()
    url = fresh_database()
    alembic(url, "upgrade", checked)
    assert run_downgrade(url, verdict_for(checked, script_directory())) == 0
    assert revision(url) == parent


def test_rollback_run_documents_the_revision_changed_exit_status() -> None:
    result = _check(None, "--help")
    assert result.returncode == 0
    assert f"{REVISION_CHANGED} " in result.stdout
    assert "changed" in result.stdout
    assert "downgrade -1" in result.stdout


def test_release_drill_schema_rollback_refuses_a_revision_that_moved(fresh_database: Callable[[], str]) -> None:
    checked, parent = _safe_revision_with_a_parent()
    url = fresh_database()
    alembic(url, "upgrade", checked)
    alembic(url, "downgrade", parent)  # someone else rolled back after the drill read `checked`
    with pytest.raises(RuntimeError, match="changed"):
        schema_downgrade(REPO, url, checked=checked, target=parent)
    assert revision(url) == parent, "nothing was downgraded"
    alembic(url, "upgrade", checked)
    assert schema_downgrade(REPO, url, checked=checked, target=parent) == parent
    assert revision(url) == parent


async def test_rollback_run_waits_for_a_migration_in_progress_and_then_refuses(
    fresh_database: Callable[[], str],
) -> None:
    """The window between the re-read and the downgrade is closed: the check locks alembic_version's row,
    so a migration committing meanwhile is seen (and refused), not undone unchecked."""
    checked, parent = _safe_revision_with_a_parent()
    url = fresh_database()
    alembic(url, "upgrade", checked)
    other = await asyncpg.connect(url)  # another operator's migration, in its transaction
    watcher = await asyncpg.connect(url)  # outside it: pg_stat_activity is a snapshot per transaction
    try:
        migration = other.transaction()
        await migration.start()
        # The last statement of a concurrent `alembic downgrade` (its DDL left out: only the race matters here).
        await other.execute("UPDATE alembic_version SET version_num = $1", parent)
        env = {**os.environ, "DATABASE_URL": url}
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "scripts/check_migration_rollback.py",
            "--run",
            cwd=REPO,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        waiting = (
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        for _ in range(600):
            if await watcher.fetchval(waiting) or process.returncode is not None:
                break
            await asyncio.sleep(0.05)
        if process.returncode is not None:
            out, err = await process.communicate()
            raise AssertionError(f"the check must wait for the migration in progress:\n{out.decode()}{err.decode()}")
        await migration.commit()
        out, err = await asyncio.wait_for(process.communicate(), 60)
    finally:
        await other.close()
        await watcher.close()
    assert f"revision {checked} (the database)" in out.decode(), "the check saw the committed revision"
    assert process.returncode == REVISION_CHANGED, out.decode() + err.decode()
    assert f"now at {parent}" in err.decode()
    assert revision(url) == parent, "nothing was downgraded"
