"""The embedded stack starts as the session starts, so its start passes while pytest collects the checks
(conformance/checks/conftest.py EarlyStack): a session that then runs no check stops it, and one that only
collects never starts it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.stack.probes import refuses

REPO = Path(__file__).resolve().parents[2]
UP = re.compile(r"stack .*: up on (127\.0\.0\.1:\d+)")


def _checks(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pytest", "conformance/checks", "-q", "-p", "no:cacheprovider", *args]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.integration
def test_a_session_that_runs_no_check_stops_the_stack_it_started_early() -> None:
    run = _checks("-k", "no_check_has_this_name")
    output = run.stdout + run.stderr
    assert run.returncode == pytest.ExitCode.NO_TESTS_COLLECTED, output
    servers = UP.findall(output)
    assert len(servers) == 2, output  # PostgreSQL and Redis came up while pytest collected
    assert "stack stopped: no check of this session used it" in output, output
    for address in servers:
        assert refuses(f"http://{address}"), f"{address} still answers after the session ended"


def test_collecting_the_checks_starts_no_stack() -> None:
    run = _checks("--collect-only")
    output = run.stdout + run.stderr
    assert run.returncode == pytest.ExitCode.OK, output
    assert "checks collected" in output or "tests collected" in output, output
    assert "stack " not in output, output
