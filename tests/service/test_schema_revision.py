"""RB-HEALTH-SCHEMA (the release's side): the revision this release expects is its migrations' own head, and
the verdict on a database's revision names both; `--check-config` shows values in force, not raw fields."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from chaos.stack.migrations import REPO_ROOT, alembic_scripts, head_revision
from service import schema
from service.__main__ import main
from service.schema import (
    MAX_SCHEMA_COMMENT_CHARS,
    SchemaExpectation,
    SchemaScriptsError,
    load_expectation,
    migrations_directory,
    read_still_serves,
    schema_comment,
    still_serves,
)

CHECK_ENV = {
    "DATABASE_URL": "postgresql://app:s3cret-db-pass@db.internal:5432/events",
    "API_KEY": "k" * 24,
    "JWT_SECRET": "j" * 32,
}

REVISION_SCRIPT = """revision = "{revision}"
down_revision = {down}
branch_labels = None
depends_on = None
{declaration}


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
"""


def write_migrations(root: Path, revisions: dict[str, str | None], expand_only: dict[str, bool] | None = None) -> Path:
    versions = root / "migrations" / "versions"
    versions.mkdir(parents=True)
    for revision, down in revisions.items():
        declared = (expand_only or {}).get(revision)
        declaration = "" if declared is None else f"expand_only = {declared}"
        text = REVISION_SCRIPT.format(revision=revision, down=repr(down), declaration=declaration)
        (versions / f"{revision}_step.py").write_text(text)
    return root / "migrations"


def test_the_expected_revision_is_the_head_of_the_shipped_migrations() -> None:
    expectation = load_expectation()
    assert expectation.expected == head_revision()
    assert expectation.history == {script.revision for script in alembic_scripts().walk_revisions()}
    assert migrations_directory() == REPO_ROOT / "migrations"


def test_verdicts_name_both_revisions_and_accept_only_head_or_declared_ones() -> None:
    expectation = SchemaExpectation("0003", frozenset({"0001", "0002", "0003"}), frozenset({"0004"}))
    assert expectation.problem("0003") is None
    assert expectation.problem("0004") is None, "declared compatible"
    unmigrated = expectation.problem(None)
    assert unmigrated is not None
    assert unmigrated.startswith("database at None (unmigrated), this release expects 0003")
    assert "alembic upgrade head" in unmigrated
    behind = expectation.problem("0002")
    assert behind is not None
    assert behind.startswith("database at 0002 (behind), this release expects 0003")
    ahead = expectation.problem("0005")
    assert ahead is not None
    assert ahead.startswith("database at 0005 (not in this release's migrations")
    assert "this release expects 0003 (compatible: 0004; releases the schema still serves: none)" in ahead


def test_the_scripts_are_found_in_the_working_directory_when_not_beside_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The image installs the package into the virtualenv and puts the scripts in its working directory."""
    write_migrations(tmp_path / "app", {"a1": None, "b2": "a1"})
    monkeypatch.setattr(schema, "PACKAGE_ROOT", tmp_path / "site-packages")
    monkeypatch.chdir(tmp_path / "app")
    assert load_expectation().expected == "b2"
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SchemaScriptsError, match="no alembic migration scripts shipped"):
        load_expectation()


def test_migrations_with_two_heads_are_refused(tmp_path: Path) -> None:
    directory = write_migrations(tmp_path, {"a1": None, "b2": "a1", "c3": "a1"})
    with pytest.raises(SchemaScriptsError, match="exactly one head"):
        load_expectation(directory=directory)


@pytest.fixture
def check_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.upper().startswith(("DB_", "SCHEMA_", "DATABASE_", "REDIS_", "API_KEY", "JWT_")):
            monkeypatch.delenv(name)
    for name, value in CHECK_ENV.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def check_config(capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    assert main(["--check-config"]) == 0
    return dict(line.split("=", 1) for line in capsys.readouterr().out.splitlines())


def test_check_config_prints_the_database_concurrency_in_force(
    check_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    check_env.setenv("DB_POOL_SIZE", "7")
    assert check_config(capsys)["DB_MAX_CONCURRENCY"] == "7", "unset means the pool size"
    check_env.setenv("DB_MAX_CONCURRENCY", "3")
    shown = check_config(capsys)
    assert (shown["DB_MAX_CONCURRENCY"], shown["DB_POOL_SIZE"]) == ("3", "7")
    assert "s3cret-db-pass" not in str(shown)


def test_compatible_revisions_are_checked_and_shown(
    check_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    check_env.setenv("SCHEMA_COMPATIBLE_REVISIONS", "0004_notes, 0005")
    assert check_config(capsys)["SCHEMA_COMPATIBLE_REVISIONS"] == "0004_notes, 0005"
    check_env.setenv("SCHEMA_COMPATIBLE_REVISIONS", "0004 notes")
    assert main(["--check-config"]) == 2
    assert "SCHEMA_COMPATIBLE_REVISIONS: '0004 notes' is not an alembic revision id" in capsys.readouterr().err


def test_a_schema_serves_earlier_releases_down_to_the_first_migration_not_declared_expand_only(
    tmp_path: Path,
) -> None:
    directory = write_migrations(
        tmp_path,
        {"a1": None, "b2": "a1", "c3": "b2", "d4": "c3", "e5": "d4"},
        expand_only={"a1": True, "b2": False, "c3": True, "d4": True},  # e5 does not declare it
    )
    scripts = ScriptDirectory(str(directory))
    assert still_serves(scripts, "d4") == ["c3", "b2"], "d4 and c3 only add: the releases at c3 and b2 serve d4"
    assert still_serves(scripts, "b2") == [], "b2 changes what earlier code uses"
    assert still_serves(scripts, "a1") == [], "nothing precedes the first revision"
    assert still_serves(scripts, "e5") == [], "undeclared counts as not expand-only"
    assert still_serves(scripts, None) == []


def test_a_release_serves_a_newer_schema_only_when_that_schema_says_so_for_its_own_revision() -> None:
    expectation = SchemaExpectation("0003", frozenset({"0001", "0002", "0003"}))
    comment = schema_comment("0004", ["0003", "0002"])
    assert expectation.problem("0004", read_still_serves("0004", comment)) is None
    refused = expectation.problem("0004", read_still_serves("0004", schema_comment("0004", [])))
    assert refused is not None
    assert "releases the schema still serves: none" in refused
    # The comment counts only for the revision it was written for: a hand-stamped database gets no pass.
    assert read_still_serves("0005", comment) == frozenset()
    for broken in ("", "not json", "[1]", '{"revision": "0004", "still_serves": "0003"}', "x" * 5000):
        assert read_still_serves("0004", broken) == frozenset(), broken
    assert len(schema_comment("0004", ["0003"])) < MAX_SCHEMA_COMMENT_CHARS
