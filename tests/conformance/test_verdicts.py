"""The shared verdicts and exit codes of every command (conformance/verdicts.py, RB-OPS-VERDICTS), and the
quality gates' verdicts in the same JUnit scheme as the other harnesses (conformance/gates.py)."""

from __future__ import annotations

import argparse
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from conformance.gates import gate_requirements, write_junit
from conformance.gates import main as gates_main
from conformance.junit import CaseOutcome, read
from conformance.registry import load_registry
from conformance.verdicts import (
    EXIT_TABLE,
    FIRST_COMMAND_SPECIFIC,
    OUTCOME_EXIT,
    Exit,
    Health,
    Outcome,
    base_url,
    exit_code_epilog,
    health_exit,
    overall,
)

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("http://127.0.0.1:8000/", "http://127.0.0.1:8000"),
        ("https://staging.example/api", "https://staging.example/api"),
    ],
)
def test_an_http_url_is_kept_without_its_trailing_slash(given: str, expected: str) -> None:
    assert base_url(argparse.ArgumentParser(), given) == expected


@pytest.mark.parametrize("given", ["127.0.0.1:8000", "localhost:8000", "ftp://host", "http://", "http://h:99999"])
def test_anything_else_is_a_usage_error(given: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        base_url(argparse.ArgumentParser(), given)
    assert exited.value.code == Exit.USAGE
    assert "--base-url" in capsys.readouterr().err


def test_a_run_passes_only_when_every_part_passed() -> None:
    assert overall([Outcome.PASSED, Outcome.PASSED]) is Outcome.PASSED
    assert overall([Outcome.PASSED, Outcome.INCONCLUSIVE]) is Outcome.INCONCLUSIVE
    assert overall([Outcome.INCONCLUSIVE, Outcome.COULD_NOT_RUN]) is Outcome.COULD_NOT_RUN
    assert overall([Outcome.COULD_NOT_RUN, Outcome.FAILED, Outcome.PASSED]) is Outcome.FAILED
    assert overall([Outcome.PASSED, Outcome.ABORTED, Outcome.COULD_NOT_RUN]) is Outcome.ABORTED
    assert overall([Outcome.ABORTED, Outcome.FAILED]) is Outcome.FAILED, "a failure is news whatever else happened"
    assert overall([]) is Outcome.INCONCLUSIVE, "nothing checked is not a pass"


def test_degraded_exits_0_only_when_allowed() -> None:
    assert health_exit(Health.HEALTHY, degraded_allowed=False) == Exit.OK
    assert health_exit(Health.DEGRADED, degraded_allowed=True) == Exit.OK
    assert health_exit(Health.DEGRADED, degraded_allowed=False) == Exit.FAILED
    assert health_exit(Health.UNHEALTHY, degraded_allowed=True) == Exit.FAILED
    assert health_exit(Health.COULD_NOT_RUN, degraded_allowed=True) == Exit.COULD_NOT_RUN


def test_every_shared_code_is_in_the_table_and_a_command_cannot_redefine_one() -> None:
    for code in Exit:
        assert f"\n  {int(code)}  " in EXIT_TABLE
    assert "  6  its own" in exit_code_epilog({6: "its own"})
    for shared in (3, 5):
        with pytest.raises(ValueError, match="shared table"):
            exit_code_epilog({shared: "something else"})


# The table every command shares, verdict by verdict: passed 0, failed 1, usage 2, could not run 3,
# inconclusive 4, aborted 5; a command's own codes after it.
TABLE = {
    Exit.OK: "passed",
    Exit.FAILED: "failed",
    Exit.USAGE: "usage",
    Exit.COULD_NOT_RUN: "could not run",
    Exit.INCONCLUSIVE: "inconclusive",
    Exit.ABORTED: "aborted",
}


def test_the_table_names_each_verdict_under_its_code() -> None:
    assert [int(code) for code in Exit] == [0, 1, 2, 3, 4, 5]
    assert FIRST_COMMAND_SPECIFIC == 6
    for code, verdict in TABLE.items():
        [line] = [line for line in EXIT_TABLE.splitlines() if line.startswith(f"  {int(code)}  ")]
        assert verdict in line, line
    assert "rolled back" in EXIT_TABLE.split("  5  ")[1], "aborted says what happened to the changes"
    assert {OUTCOME_EXIT[outcome] for outcome in Outcome} == set(Exit) - {Exit.USAGE}


def test_readme_shows_the_same_table() -> None:
    section = README.read_text(encoding="utf-8").split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    rows = dict(re.findall(r"^\| (\d\+?) \| ([^|]+) \|", section, flags=re.MULTILINE))
    for code, verdict in TABLE.items():
        assert verdict in rows[str(int(code))], (code, rows)
    assert "command-specific" in rows[f"{FIRST_COMMAND_SPECIFIC}+"]


def test_gate_runs_are_written_as_junit_with_the_registry_requirements(tmp_path: Path) -> None:
    registry = load_registry()
    gates = registry.gates
    outcomes = [(gates["perf-queries"], True, 12.5), (gates["compose-file"], False, 1.0), (gates["lint"], None, 0.5)]
    path = write_junit(tmp_path / "junit.xml", datetime(2026, 12, 1, 12, 0, tzinfo=UTC), outcomes, registry)
    [suite] = read(path)
    assert (suite.name, suite.timestamp) == ("runbook-gates", "2026-12-01T12:00:00+00:00")
    assert {"commit", "dirty", "version", "target"} <= set(suite.properties)
    cases = {case.name: case for case in suite.cases}
    assert "RB-PERF-GATE" in cases["perf-queries"].requirements
    assert cases["compose-file"].requirements == gate_requirements(registry)["compose-file"] != ()
    assert [case.outcome for case in suite.cases] == [CaseOutcome.PASSED, CaseOutcome.FAILED, CaseOutcome.ABORTED]
    assert cases["compose-file"].message == f"`{gates['compose-file'].command}` exited non-zero"


def test_an_unknown_gate_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert gates_main(["run", "no-such-gate"]) == Exit.USAGE
    assert "unknown gate(s): no-such-gate" in capsys.readouterr().err
