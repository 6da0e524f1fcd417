"""Secrets at the edges of the operator commands: an API key or database URL comes only from the environment
or from a file, never from the command line (where `ps` shows it to every user), and no command prints one,
whatever goes wrong. Every command runs as a subprocess against real servers, as an operator runs it."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaos.lifecycle import free_port
from chaos.stack.migrations import REPO_ROOT, migrate
from chaos.stack.servers import PostgresServer, RedisServer
from chaos.stack.service import ServiceProcess

pytestmark = pytest.mark.integration

API_KEY = f"operator-key-{secrets.token_hex(16)}"
HTTP_CHECKS = ("check_runtime_health.py", "check_payload_guards.py")
SECRET_ENV = ("API_KEY", "JWT_SECRET", "DATABASE_URL", "REDIS_URL")


@pytest.fixture(scope="module")
def service(postgres: PostgresServer, redis_server: RedisServer) -> Iterator[ServiceProcess]:
    env = {
        "DATABASE_URL": postgres.url("events"),
        "REDIS_URL": redis_server.url(),
        "API_KEY": API_KEY,
        "JWT_SECRET": secrets.token_urlsafe(48),
    }
    with ServiceProcess(env, workers=1) as running:
        yield running


def run(script: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`python scripts/<script> …` with only the secrets given here in its environment."""
    clean = {name: value for name, value in os.environ.items() if name not in SECRET_ENV}
    return subprocess.run(
        [sys.executable, f"scripts/{script}", *args],
        cwd=REPO_ROOT,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def assert_not_shown(result: subprocess.CompletedProcess[str], *secret_values: str) -> None:
    output = result.stdout + result.stderr
    for value in secret_values:
        assert value not in output, f"a secret was printed:\n{output}"


def key_file(directory: Path, content: str | bytes) -> Path:
    path = directory / f"secret-{uuid.uuid4().hex[:8]}"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    path.chmod(0o600)
    return path


def unusable_file(directory: Path, problem: str, secret: str) -> tuple[Path, str]:
    """A secret file with `problem`, and what the refusal must say about it."""
    if problem == "missing":
        return directory / "no-such-file", "cannot read"
    if problem == "empty":
        return key_file(directory, "\n"), "is empty"
    if problem == "a directory":
        return directory, "cannot read"
    if problem == "two lines":
        return key_file(directory, f"{secret}\n{secret}-second-line\n"), "one line"
    if problem == "not UTF-8":
        return key_file(directory, secret.encode() + b"\xff\xfe\n"), "UTF-8"
    raise AssertionError(problem)


def _api_check_status(result: subprocess.CompletedProcess[str], script: str) -> str:
    """The status of the check that needs the API key: health's `api` scope, the payload check's `batch`."""
    report = json.loads(result.stdout)
    if script == "check_runtime_health.py":
        return next(str(c["status"]) for c in report["checks"] if c["name"] == "api")
    return next(str(r["passed"]) for r in report["results"] if r["guard"] == "batch")


USED = {"check_runtime_health.py": "ok", "check_payload_guards.py": "True"}


# -- the HTTP checks: API key from $API_KEY or --api-key-file -----------------------------------------------------
@pytest.mark.parametrize("script", HTTP_CHECKS)
def test_the_key_from_the_environment_is_used_and_never_printed(service: ServiceProcess, script: str) -> None:
    lines = run(script, "--base-url", service.base_url, env={"API_KEY": API_KEY})
    assert lines.returncode == 0, lines.stdout + lines.stderr
    assert_not_shown(lines, API_KEY)
    report = run(script, "--base-url", service.base_url, "--json", env={"API_KEY": API_KEY})
    assert report.returncode == 0, report.stdout + report.stderr
    assert _api_check_status(report, script) == USED[script]
    assert_not_shown(report, API_KEY)


@pytest.mark.parametrize("script", HTTP_CHECKS)
def test_the_key_can_come_from_a_file(service: ServiceProcess, script: str, tmp_path: Path) -> None:
    path = key_file(tmp_path, API_KEY + "\n")
    result = run(script, "--base-url", service.base_url, "--api-key-file", str(path), "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    assert _api_check_status(result, script) == USED[script]
    assert_not_shown(result, API_KEY)
    # The file is explicit, so it wins over a stale $API_KEY.
    stale = run(
        script, "--base-url", service.base_url, "--api-key-file", str(path), "--json", env={"API_KEY": "stale-key"}
    )
    assert stale.returncode == 0, stale.stdout + stale.stderr
    assert _api_check_status(stale, script) == USED[script]


@pytest.mark.parametrize("script", HTTP_CHECKS)
@pytest.mark.parametrize("spelling", ["separate", "joined"])
def test_a_key_on_the_command_line_is_refused(service: ServiceProcess, script: str, spelling: str) -> None:
    given = ["--api-key", API_KEY] if spelling == "separate" else [f"--api-key={API_KEY}"]
    result = run(script, "--base-url", service.base_url, *given)
    assert result.returncode == 2, result.stdout + result.stderr
    assert_not_shown(result, API_KEY)
    assert "API_KEY" in result.stderr
    assert "--api-key-file" in result.stderr


@pytest.mark.parametrize("script", HTTP_CHECKS)
@pytest.mark.parametrize("problem", ["missing", "empty", "a directory", "two lines", "not UTF-8"])
def test_an_unusable_key_file_exits_2_without_showing_what_it_holds(
    service: ServiceProcess, script: str, problem: str, tmp_path: Path
) -> None:
    path, says = unusable_file(tmp_path, problem, API_KEY)
    result = run(script, "--base-url", service.base_url, "--api-key-file", str(path), env={"API_KEY": API_KEY})
    assert result.returncode == 2, result.stdout + result.stderr
    assert "--api-key-file" in result.stderr
    assert says in result.stderr
    assert str(path) in result.stderr, "the message names the file"
    assert_not_shown(result, API_KEY)


@pytest.mark.parametrize("script", [*HTTP_CHECKS, "check_migration_rollback.py"])
@pytest.mark.parametrize("given", [["--apikey", API_KEY], [f"--api-k={API_KEY}"], [f"--database_url={API_KEY}"]])
def test_a_mistyped_secret_option_is_refused_without_echoing_its_value(script: str, given: list[str]) -> None:
    result = run(script, "--base-url", "http://127.0.0.1:9", *given)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "unrecognized arguments" in result.stderr
    assert_not_shown(result, API_KEY)


@pytest.mark.parametrize("script", HTTP_CHECKS)
def test_help_says_where_the_key_comes_from(script: str) -> None:
    result = run(script, "--help")
    assert result.returncode == 0
    assert "--api-key-file" in result.stdout
    assert "$API_KEY" in result.stdout
    assert "command line" in result.stdout


@pytest.mark.parametrize("script", HTTP_CHECKS)
def test_an_unreachable_deployment_does_not_show_the_key(script: str) -> None:
    result = run(script, "--base-url", f"http://127.0.0.1:{free_port()}", "--timeout", "1", env={"API_KEY": API_KEY})
    assert result.returncode != 0
    assert_not_shown(result, API_KEY)


# -- the rollback check: DATABASE_URL from the environment or --database-url-file ----------------------------------
@pytest.fixture
def migrated_url(postgres: PostgresServer) -> str:
    url = postgres.create_database(f"rollback_{uuid.uuid4().hex[:8]}")
    migrate(url)
    return url


def test_rollback_check_reads_the_database_url_from_a_file(
    migrated_url: str, postgres: PostgresServer, tmp_path: Path
) -> None:
    path = key_file(tmp_path, migrated_url + "\n")
    result = run("check_migration_rollback.py", "--database-url-file", str(path))
    assert "(the database)" in result.stdout, result.stdout + result.stderr
    assert result.returncode in (0, 1)
    assert_not_shown(result, postgres.password)


def test_rollback_check_refuses_a_database_url_on_the_command_line(migrated_url: str, postgres: PostgresServer) -> None:
    for given in (["--database-url", migrated_url], [f"--database-url={migrated_url}"]):
        result = run("check_migration_rollback.py", *given)
        assert result.returncode == 2, result.stdout + result.stderr
        assert_not_shown(result, postgres.password)
        assert "DATABASE_URL" in result.stderr
        assert "--database-url-file" in result.stderr


@pytest.mark.parametrize("problem", ["missing", "empty", "two lines"])
def test_rollback_check_with_an_unusable_url_file_exits_2(
    migrated_url: str, postgres: PostgresServer, problem: str, tmp_path: Path
) -> None:
    path, says = unusable_file(tmp_path, problem, migrated_url)
    result = run("check_migration_rollback.py", "--database-url-file", str(path))
    assert result.returncode == 2, result.stdout + result.stderr
    assert says in result.stderr
    assert str(path) in result.stderr
    assert_not_shown(result, postgres.password)


def test_rollback_check_help_says_where_the_url_comes_from() -> None:
    result = run("check_migration_rollback.py", "--help")
    assert result.returncode == 0
    assert "--database-url-file" in result.stdout
    assert "$DATABASE_URL" in result.stdout
    assert "command line" in result.stdout


@pytest.mark.parametrize(
    "shape",
    [
        "nothing listens on the port",
        "a wrong password",
        "no such database",
        "an unencoded '/' in the password",
        "an unencoded '#' in the password",
    ],
)
def test_rollback_check_never_shows_the_database_password(postgres: PostgresServer, shape: str) -> None:
    password = f"pw{secrets.token_hex(8)}"
    first, second = password[:9], password[9:]
    url = {
        "nothing listens on the port": f"postgresql://postgres:{password}@127.0.0.1:{free_port()}/events",
        "a wrong password": f"postgresql://postgres:{password}@127.0.0.1:{postgres.port}/events",
        "no such database": f"postgresql://postgres:{postgres.password}@127.0.0.1:{postgres.port}/missing_db",
        "an unencoded '/' in the password": f"postgresql://postgres:{first}/{second}@127.0.0.1:1/events",
        "an unencoded '#' in the password": f"postgresql://postgres:{first}#{second}@127.0.0.1:1/events",
    }[shape]
    for args in ((), ("--run",)):
        result = run("check_migration_rollback.py", *args, env={"DATABASE_URL": url})
        assert result.returncode == 3, result.stdout + result.stderr  # could not run (conformance/verdicts.py)
        assert "Traceback" not in result.stderr
        assert "cannot read the database's revision" in result.stderr
        assert_not_shown(result, password, first, second, postgres.password)


def test_rollback_run_output_never_shows_the_database_password(migrated_url: str, postgres: PostgresServer) -> None:
    result = run("check_migration_rollback.py", "--run", "--force-unsafe", env={"DATABASE_URL": migrated_url})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Running downgrade" in result.stdout + result.stderr, "alembic's own lines are still shown"
    assert_not_shown(result, postgres.password)
