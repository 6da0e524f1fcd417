"""`python -m conformance --base-url` as an operator runs it against a served service with the default limits:
it stops with one line when the target is unreachable or refuses the key (exit 3), refuses bad usage the way
argparse does (exit 2), and does not trip over an anonymous rate limit that someone else spent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from chaos.lifecycle import free_port
from chaos.stack.migrations import REPO_ROOT, migrate
from chaos.stack.servers import RedisServer
from chaos.stack.service import ServiceProcess
from tests.helpers import TEST_API_KEY, TEST_JWT_SECRET

pytestmark = pytest.mark.integration

RUN_TIMEOUT_S = 300


def conformance(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The CLI in a fresh process, with only the credentials given here (none from this environment)."""
    base = {name: value for name, value in os.environ.items() if name not in ("API_KEY", "JWT_SECRET")}
    return subprocess.run(
        [sys.executable, "-m", "conformance", *args],
        cwd=REPO_ROOT,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )


def served(fresh_database: Callable[[], str], redis: RedisServer, **limits: str) -> ServiceProcess:
    database_url = fresh_database()
    migrate(database_url)
    env = {"DATABASE_URL": database_url, "REDIS_URL": redis.url(), "API_KEY": TEST_API_KEY}
    return ServiceProcess({**env, "JWT_SECRET": TEST_JWT_SECRET, **limits}, workers=1)


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    """Its own Redis: the rate-limit counters these tests spend are shared with no other test."""
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="module")
def service(fresh_database: Callable[[], str], redis: RedisServer) -> Iterator[ServiceProcess]:
    """As `make serve` runs it: the default rate limits (RATE_LIMIT_ANONYMOUS 120/minute per address)."""
    with served(fresh_database, redis) as running:
        yield running


def test_a_refused_api_key_is_one_line_and_exit_3(service: ServiceProcess, tmp_path: Path) -> None:
    result = conformance("--base-url", service.base_url, "--report-dir", str(tmp_path), env={"API_KEY": "wrong-key"})
    assert result.returncode == 3, result.stdout[-2000:] + result.stderr[-2000:]
    assert result.stderr.splitlines() == [f"the API key was refused by {service.base_url} (401)"], result.stderr
    assert result.stdout == "", "no check ran"
    assert "wrong-key" not in result.stderr


def test_after_a_refused_key_a_run_with_the_right_key_passes_its_401_checks(
    service: ServiceProcess, tmp_path: Path
) -> None:
    """A run with a wrong key used to spend the anonymous limit of the whole address, and the next correct run
    failed RB-AUTH-* with 429s: now the refused run stops after one anonymous request."""
    for _ in range(3):
        assert conformance("--base-url", service.base_url, env={"API_KEY": "wrong-key"}).returncode == 3
    result = conformance(
        "--base-url",
        service.base_url,
        "--requirement",
        "RB-AUTH-APIKEY",
        "--requirement",
        "RB-AUTH-JWT",
        "--report-dir",
        str(tmp_path),
        "-q",
        env={"API_KEY": TEST_API_KEY, "JWT_SECRET": TEST_JWT_SECRET},
    )
    assert result.returncode == 0, result.stdout[-4000:]
    outcomes = {
        row["id"]: row["outcome"] for row in json.loads((tmp_path / "requirements.json").read_text())["requirements"]
    }
    assert outcomes["RB-AUTH-APIKEY"] == outcomes["RB-AUTH-JWT"] == "passed"


def test_an_unreachable_target_is_one_line_and_exit_3(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    result = conformance("--base-url", url, "--report-dir", str(tmp_path), env={"API_KEY": "any-key"})
    assert result.returncode == 3, result.stdout[-2000:] + result.stderr[-2000:]
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr[-3000:]
    assert lines[0].startswith(f"target unreachable: {url} ("), lines[0]
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--no-such-option"], "unrecognized arguments: --no-such-option"),
        (["--backend", "kubernetes"], "invalid choice: 'kubernetes'"),
        (["--base-url", "127.0.0.1:8000"], "is not an http(s) URL"),
        (["--base-url", "http://127.0.0.1:9"], "needs the target's API key"),
        (["--api-key", "typed-by-mistake"], "is not accepted"),
    ],
)
def test_bad_usage_is_an_argparse_error_and_exit_2(args: list[str], says: str) -> None:
    result = conformance(*args)
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    assert says in result.stderr
    assert "pytest" not in result.stderr, "the CLI's own error, not pytest.main()'s"
    assert "typed-by-mistake" not in result.stderr


def test_help_names_the_backend_and_what_a_run_writes() -> None:
    result = conformance("--help")
    assert result.returncode == 0
    assert "--backend {local,docker,auto}" in result.stdout
    assert "rb-conformance-" in result.stdout, "what the suite writes, and how it is marked"
    assert "2001-01-01" in result.stdout
    assert "--api-key-file" in result.stdout


def test_an_anonymous_limit_spent_by_someone_else_is_waited_out(
    fresh_database: Callable[[], str], redis: RedisServer, tmp_path: Path
) -> None:
    """Another client at this address has spent the anonymous budget: the run waits as Retry-After asks
    (and says so) instead of failing the checks of 401 answers with 429."""
    with served(fresh_database, redis, RATE_LIMIT_ANONYMOUS="12/10 seconds") as small:
        with httpx.Client(base_url=small.base_url, timeout=5) as client:
            statuses = [client.get("/api/v1/events").status_code for _ in range(14)]
        assert statuses[-1] == 429, statuses
        result = conformance(
            "--base-url",
            small.base_url,
            "--requirement",
            "RB-AUTH-APIKEY",
            "--requirement",
            "RB-AUTH-JWT",
            "--report-dir",
            str(tmp_path),
            "-q",
            env={"API_KEY": TEST_API_KEY, "JWT_SECRET": TEST_JWT_SECRET},
        )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "anonymous rate limit" in result.stderr, result.stderr
    assert "Retry-After" in result.stderr, result.stderr
