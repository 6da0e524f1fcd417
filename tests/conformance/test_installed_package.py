"""`pip install .` into a fresh virtualenv outside the checkout runs what the harnesses promise without one,
from another working directory: every console entry point of pyproject.toml (`runbook-conformance`,
`runbook-health`, ...) answers `--help` under its own name; `runbook-health` checks a running service;
`python -m chaos list` and `runbook-chaos list` name every drill; and remote conformance (`python -m conformance
--base-url URL`, and `runbook-conformance --base-url URL`) runs with the operator commands it runs.

The distribution is built from a copy of what it is made of (pyproject.toml, README.md and the packages), so
the build writes nothing into the checkout and the wheel holds only what the packaging declares. One install
serves the whole module (and so the session: no other module installs); it takes about a minute when pip finds
the dependencies in its cache."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from chaos.stack.migrations import REPO_ROOT, migrate
from chaos.stack.servers import RedisServer
from chaos.stack.service import ServiceProcess
from tests.helpers import TEST_API_KEY, TEST_JWT_SECRET

pytestmark = pytest.mark.integration

DISTRIBUTION = ("pyproject.toml", "README.md", "requirements", "service", "chaos", "conformance")
INSTALL_TIMEOUT_S = 900
RUN_TIMEOUT_S = 300
# The requirements whose checks run the operator commands (health, payload guards, their verdicts) and read the
# package's data (the registry; Schemathesis' settings for the contract).
REQUIREMENTS = ("RB-OPS-HEALTHCHECK", "RB-OPS-PAYLOAD-CHECK", "RB-OPS-VERDICTS", "RB-TRIAGE-SCOPE", "RB-API-CONTRACT")
ENTRY_POINTS: dict[str, str] = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
# The commands the runbook's users reach for first; pyproject.toml may declare more, never fewer.
PROMISED_ENTRY_POINTS = {
    "runbook-conformance": "conformance.__main__:main",
    "runbook-chaos": "chaos.cli:main",
    "runbook-bench": "conformance.perf.queries:main",
    "runbook-health": "conformance.operator.health:main",
}
# Each way a command is spelled after the install: an entry point, or the interpreter's -m.
CONFORMANCE_SPELLINGS = {"entry point": ["runbook-conformance"], "python -m": ["-m", "conformance"]}
CHAOS_SPELLINGS = {"entry point": ["runbook-chaos"], "python -m": ["-m", "chaos"]}


@dataclass(frozen=True)
class Installed:
    python: Path
    elsewhere: Path  # a working directory with no checkout in it or above it

    def run(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """The installed interpreter, with none of this checkout on its path and no credentials but `env`'s."""
        return self.command(str(self.python), *args, env=env)

    def spelled(
        self, spelling: list[str], *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """`spelling` is either ["-m", MODULE] (the installed interpreter) or [ENTRY_POINT] (found on PATH)."""
        if spelling[0] == "-m":
            return self.run(*spelling, *args, env=env)
        return self.command(*spelling, *args, env=env)

    def command(self, program: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """`program` as a user of the install runs it: found on a PATH that starts with the virtualenv's bin
        (where pip put the entry points), from a directory outside the checkout, without this checkout's
        PYTHONPATH, virtualenv or credentials (only `env`'s)."""
        unrelated = ("PYTHONPATH", "VIRTUAL_ENV", "API_KEY", "JWT_SECRET", "DATABASE_URL", "REDIS_URL")
        base = {name: value for name, value in os.environ.items() if name not in unrelated}
        base["PATH"] = os.pathsep.join([str(self.python.parent), base.get("PATH", "")])
        return subprocess.run(
            [program, *args],
            cwd=self.elsewhere,
            env={**base, **(env or {})},
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_S,
            check=False,
        )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    root = tmp_path_factory.mktemp("installed")
    source = root / "source"
    source.mkdir()
    for name in DISTRIBUTION:
        origin = REPO_ROOT / name
        if origin.is_dir():
            shutil.copytree(origin, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(origin, source / name)
    venv = root / "venv"
    steps = [
        [sys.executable, "-m", "venv", str(venv)],
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         str(source)],
    ]  # fmt: skip
    for step in steps:
        try:
            result = subprocess.run(
                step, cwd=root, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S, check=False
            )
        except subprocess.TimeoutExpired as timeout:
            parts = (timeout.stdout, timeout.stderr)  # str here (text=True), though typed as bytes too
            output = "\n".join(part.decode() if isinstance(part, bytes) else part or "" for part in parts)
            pytest.fail(f"{' '.join(step)} took more than {INSTALL_TIMEOUT_S} s:\n{output}")
        if result.returncode != 0:
            pytest.fail(f"{' '.join(step)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    elsewhere = root / "elsewhere"
    elsewhere.mkdir()
    return Installed(venv / "bin" / "python", elsewhere)


def test_the_installed_packages_are_the_virtualenvs_not_the_checkout(installed: Installed) -> None:
    result = installed.run("-c", "import chaos, conformance, service; print(chaos.__file__, conformance.__file__)")
    assert result.returncode == 0, result.stderr
    for path in result.stdout.split():
        assert Path(path).is_relative_to(installed.python.parent.parent), path
        assert not Path(path).is_relative_to(REPO_ROOT), path


def test_pyproject_declares_the_promised_entry_points() -> None:
    assert ENTRY_POINTS.items() >= PROMISED_ENTRY_POINTS.items()
    assert all(name.startswith("runbook-") for name in ENTRY_POINTS), sorted(ENTRY_POINTS)


@pytest.mark.parametrize("entry_point", sorted(ENTRY_POINTS))
def test_every_entry_point_answers_help_under_its_own_name(installed: Installed, entry_point: str) -> None:
    executable = installed.python.parent / entry_point
    assert executable.is_file(), f"pip installed no {entry_point} into {executable.parent}"
    result = installed.command(entry_point, "--help")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert result.stdout.startswith(f"usage: {entry_point} "), result.stdout[:300]


@pytest.mark.parametrize("spelling", CHAOS_SPELLINGS.values(), ids=CHAOS_SPELLINGS.keys())
def test_chaos_list_names_every_drill(installed: Installed, spelling: list[str]) -> None:
    result = installed.spelled(spelling, "list")
    assert result.returncode == 0, result.stdout + result.stderr
    checkout = subprocess.run(
        [sys.executable, "-m", "chaos", "list"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    names = [line.split()[0] for line in result.stdout.splitlines()]
    assert names == [line.split()[0] for line in checkout.stdout.splitlines()]
    assert {"db-down", "redis-down", "overload-spike", "release-bad-code"} <= set(names)


@pytest.fixture(scope="module")
def service(fresh_database: Callable[[], str]) -> Iterator[ServiceProcess]:
    """As `make serve` runs it (default limits), with a Redis of its own: no other test spends its counters."""
    database_url = fresh_database()
    migrate(database_url)
    with RedisServer() as redis:
        env = {"DATABASE_URL": database_url, "REDIS_URL": redis.url(), "API_KEY": TEST_API_KEY}
        with ServiceProcess({**env, "JWT_SECRET": TEST_JWT_SECRET}, workers=1) as running:
            yield running


def test_runbook_health_finds_a_running_service_healthy(installed: Installed, service: ServiceProcess) -> None:
    result = installed.command(
        "runbook-health", "--base-url", service.base_url, "--json", env={"API_KEY": TEST_API_KEY}
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    document = json.loads(result.stdout)
    assert document["verdict"] == "HEALTHY", document
    assert document["base_url"] == service.base_url
    refused = installed.command(
        "runbook-health", "--base-url", service.base_url, "--json", env={"API_KEY": "not-the-key"}
    )
    assert refused.returncode != 0, "a key the service refuses is not HEALTHY"
    assert json.loads(refused.stdout)["verdict"] != "HEALTHY"


@pytest.mark.parametrize("spelling", CONFORMANCE_SPELLINGS.values(), ids=CONFORMANCE_SPELLINGS.keys())
def test_remote_conformance_runs_the_operator_commands_without_a_checkout(
    installed: Installed, service: ServiceProcess, spelling: list[str]
) -> None:
    reports = installed.elsewhere / f"reports-{spelling[-1]}"
    selection = [argument for requirement in REQUIREMENTS for argument in ("--requirement", requirement)]
    result = installed.spelled(
        spelling,
        "--base-url",
        service.base_url,
        *selection,
        "--report-dir",
        str(reports),
        "-q",
        env={"API_KEY": TEST_API_KEY, "JWT_SECRET": TEST_JWT_SECRET},
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    outcomes = {row["id"]: row for row in json.loads((reports / "requirements.json").read_text())["requirements"]}
    for requirement in REQUIREMENTS:
        assert outcomes[requirement]["outcome"].startswith("passed"), outcomes[requirement]
        assert "passed" in outcomes[requirement]["tests"].values(), outcomes[requirement]
