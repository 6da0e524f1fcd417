"""RB-HEALTH-SCHEMA: readiness is 503 `degraded` with a failing `schema` check, naming both revisions, unless the
database is at the revision this release expects (or one the deployment declares compatible).

Each test gets a database of its own on the session's PostgreSQL, moved to the revision it needs with
`python -m alembic` as an operator would (or with the version row rewritten, for a revision no script knows).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from chaos.stack.migrations import REPO_ROOT, alembic_scripts, head_revision, migrate
from service.settings import Settings
from tests.own_servers import eventually, ready_status, serving

FUTURE_REVISION = "9999_from_a_newer_release"


@pytest.fixture
def new_database(fresh_database: Callable[[], str]) -> str:
    return fresh_database()


def one_revision_behind() -> str:
    script = alembic_scripts().get_revision(head_revision())
    assert script is not None
    assert isinstance(script.down_revision, str), "the head has one parent"
    return script.down_revision


async def set_version_row(database_url: str, revision: str) -> None:
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute("UPDATE alembic_version SET version_num = $1", revision)
    finally:
        await connection.close()


def assert_schema_fails(status: int, body: dict[str, Any], *, at: str | None) -> None:
    expected = head_revision()
    assert (status, body["status"], body["failed_checks"]) == (503, "degraded", ["schema"]), body
    assert (body["schema_revision"], body["expected_schema_revision"]) == (at, expected)
    check = body["checks"]["schema"]
    assert check["status"] == "down"
    assert f"database at {at} " in check["error"], "the error names the database's revision"
    assert f"this release expects {expected}" in check["error"], "and the one this release expects"
    assert body["checks"]["database"]["status"] == "up", "the database itself answers"


def schema_gauge(metrics_text: str) -> float:
    found = re.search(r'^dependency_up\{dependency="schema"\} (\S+)$', metrics_text, re.MULTILINE)
    assert found, "dependency_up has a schema series"
    return float(found.group(1))


async def test_an_unmigrated_database_is_not_ready_until_it_is_migrated(
    new_database: str, make_settings: Callable[..., Settings]
) -> None:
    async with serving(make_settings(database_url=new_database)) as app:
        client = app.test_client()
        status, body = await ready_status(client)
        assert_schema_fails(status, body, at=None)
        assert "unmigrated" in body["checks"]["schema"]["error"]
        assert "alembic upgrade head" in body["checks"]["schema"]["error"], "the error says how to fix it"
        metrics = await client.get("/metrics")
        assert schema_gauge(await metrics.get_data(as_text=True)) == 0
        assert (await client.get("/health/live")).status_code == 200, "liveness never looks at the schema"

        migrate(new_database)

        async def ready() -> bool:
            return (await ready_status(client))[0] == 200

        await eventually(ready, within_s=10)  # no restart: the next readiness round sees the new revision
        status, body = await ready_status(client)
        assert (body["status"], body["failed_checks"], body["checks"]["schema"]["status"]) == ("ready", [], "up")
        assert body["schema_revision"] == body["expected_schema_revision"] == head_revision()
        metrics = await client.get("/metrics")
        assert schema_gauge(await metrics.get_data(as_text=True)) == 1


async def test_a_database_one_revision_behind_is_not_ready(
    new_database: str, make_settings: Callable[..., Settings]
) -> None:
    behind = one_revision_behind()
    migrate(new_database, behind)
    async with serving(make_settings(database_url=new_database)) as app:
        client = app.test_client()
        status, body = await ready_status(client)
        assert_schema_fails(status, body, at=behind)
        assert "behind" in body["checks"]["schema"]["error"]


async def test_a_database_at_a_revision_this_release_does_not_know_is_not_ready_unless_declared_compatible(
    new_database: str, make_settings: Callable[..., Settings]
) -> None:
    migrate(new_database)
    await set_version_row(new_database, FUTURE_REVISION)  # as if a newer release had migrated it
    async with serving(make_settings(database_url=new_database)) as app:
        client = app.test_client()
        status, body = await ready_status(client)
        assert_schema_fails(status, body, at=FUTURE_REVISION)
        assert "SCHEMA_COMPATIBLE_REVISIONS" in body["checks"]["schema"]["error"]

    declared = make_settings(database_url=new_database, schema_compatible_revisions=f" {FUTURE_REVISION} ,other")
    async with serving(declared) as app:
        client = app.test_client()
        status, body = await ready_status(client)
        assert (status, body["failed_checks"], body["schema_revision"]) == (200, [], FUTURE_REVISION), body


async def test_a_database_at_head_is_ready_with_both_revisions_reported(
    new_database: str, make_settings: Callable[..., Settings]
) -> None:
    migrate(new_database)
    async with serving(make_settings(database_url=new_database)) as app:
        client = app.test_client()
        status, body = await ready_status(client)
        assert (status, body["status"], body["failed_checks"]) == (200, "ready", []), body
        assert body["schema_revision"] == body["expected_schema_revision"] == head_revision()
        assert body["checks"]["schema"]["status"] == "up"
        assert "error" not in body["checks"]["schema"]


def test_serve_says_how_to_migrate_a_database_given_unmigrated(new_database: str, redis_url: str) -> None:
    env = {name: value for name, value in os.environ.items() if name not in ("API_KEY", "JWT_SECRET")}
    result = subprocess.run(
        [sys.executable, "scripts/serve.py", "--smoke", "--port", "0"],
        cwd=REPO_ROOT,
        env={**env, "DATABASE_URL": new_database, "REDIS_URL": redis_url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr  # the smoke checks fail on an unmigrated schema
    assert f"database at None (unmigrated), this release expects {head_revision()}" in result.stdout
    assert "scripts/serve.py --migrate" in result.stdout
    assert "python -m alembic upgrade head" in result.stdout


NEXT_RELEASE_MIGRATION = """\"\"\"A newer release's migration (written by the test).\"\"\"
import sqlalchemy as sa
from alembic import op

revision = "0099_next"
down_revision = "{down}"
branch_labels = None
depends_on = None
downgrade_reversible = True
downgrade_data_safe = True
expand_only = {expand_only}


def upgrade() -> None:
    op.add_column("events", sa.Column("next_release_note", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("events", "next_release_note")
"""


def newer_release_migrates(tmp_path: Path, database_url: str, *, expand_only: bool) -> None:
    """`python -m alembic upgrade head` as the next release runs it: this release's scripts plus one more."""
    root = tmp_path / "next-release"
    shutil.copytree(REPO_ROOT / "migrations", root / "migrations", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO_ROOT / "alembic.ini", root / "alembic.ini")
    script = NEXT_RELEASE_MIGRATION.format(down=head_revision(), expand_only=expand_only)
    (root / "migrations" / "versions" / "0099_next_release.py").write_text(script)
    result = subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=root,
        env={**os.environ, "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.parametrize("expand_only", [True, False])
async def test_a_newer_releases_migration_keeps_this_release_ready_only_when_it_is_declared_expand_only(
    tmp_path: Path, new_database: str, make_settings: Callable[..., Settings], expand_only: bool
) -> None:
    """Migrate first, then roll out (or roll back to this release's image): this release keeps serving the
    newer schema exactly when that schema records that it still serves this release."""
    migrate(new_database)
    newer_release_migrates(tmp_path, new_database, expand_only=expand_only)
    async with serving(make_settings(database_url=new_database)) as app:
        status, body = await ready_status(app.test_client())
        assert body["schema_revision"] == "0099_next"
        if expand_only:
            assert (status, body["failed_checks"], body["checks"]["schema"]["status"]) == (200, [], "up"), body
        else:
            assert_schema_fails(status, body, at="0099_next")
            assert "releases the schema still serves: none" in body["checks"]["schema"]["error"]
