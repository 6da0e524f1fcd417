"""The paired regression comparison end to end on the real embedded stack (PostgreSQL, Redis, two services), with
the smallest profile (smoke): the same build on both sides is not flagged; a candidate with a deliberate
slowdown (tests/perf/slow_app.py, a 3 ms CPU burn per API request) is REGRESSED, through the real command
(`scripts/benchmark_queries.py --baseline ... --candidate-app ...`, raw-SQL ceiling included), with its JUnit
and history record; a baseline whose schema is not the database's could not run. No absolute speed is asserted:
the machine is shared, and the alternating ABBA rounds are what let the ratios stand anyway. Each run prints
its table (pytest -s shows the figures)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from chaos.stack.migrations import REPO_ROOT, alembic_scripts, head_revision
from conformance.junit import CaseOutcome, read
from conformance.perf.history import read_records
from conformance.perf.paired import ALL_QUERIES
from conformance.perf.queries import main
from conformance.perf.regression_report import REQUIREMENT, SUITE_NAME
from conformance.verdicts import Exit

pytestmark = pytest.mark.integration

SLOW_APP = "tests.perf.slow_app:app"
ROUNDS = ["--profile", "smoke", "--rounds", "5", "--round-s", "1.5"]


def _run(args: list[str], report_dir: Path) -> tuple[int, dict[str, Any]]:
    code = main([*args, "--report-dir", str(report_dir), "--history", str(report_dir / "history.jsonl")])
    print((report_dir / "paired.txt").read_text())
    return code, json.loads((report_dir / "paired.json").read_text())


def test_the_same_build_on_both_sides_is_not_flagged(tmp_path: Path) -> None:
    code, report = _run(["--baseline", str(REPO_ROOT), "--no-ceiling", *ROUNDS], tmp_path)
    assert report["verdict"] != "regressed", report["comparisons"]
    assert code in (Exit.OK, Exit.INCONCLUSIVE)
    assert len(report["rounds"]) == 10
    assert [r["side"][0] for r in report["rounds"]] == list("cbbccbbccb")
    assert report["baseline"]["commit"] == report["candidate"]["commit"]
    assert report["machine"]
    overall = report["comparisons"][ALL_QUERIES]["mean_ms"]
    assert overall["low"] <= overall["ratio"] <= overall["high"]
    assert report["absolute_gate"]["passed"], report["absolute_gate"]


def test_a_candidate_with_a_deliberate_slowdown_is_regressed(tmp_path: Path) -> None:
    """Through the command users run: its exit code, the JUnit of the verdict scheme, the history record."""
    history = tmp_path / "history.jsonl"
    command = [sys.executable, "scripts/benchmark_queries.py", "--baseline", str(REPO_ROOT)]
    command += ["--candidate-app", SLOW_APP, *ROUNDS, "--report-dir", str(tmp_path), "--history", str(history)]
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, check=False)
    print(done.stdout)
    code, report = done.returncode, json.loads((tmp_path / "paired.json").read_text())
    assert code == Exit.FAILED, done.stderr[-3000:]
    assert "REGRESSED beyond 10% with 95 % confidence" in done.stdout
    assert report["verdict"] == "regressed"
    assert [r["side"][0] for r in report["rounds"]][:6] == list("cbrrbc")  # the raw-SQL ceiling takes its turn
    assert report["candidate"]["application"] == SLOW_APP
    overall = report["comparisons"][ALL_QUERIES]
    assert overall["verdict"] == "regressed"
    assert overall["mean_ms"]["low"] > 1 + report["bound"]
    assert overall["per_s"]["high"] < 1 / (1 + report["bound"])
    assert report["absolute_gate"]["passed"]  # slower, yet within 250/400 ms: only the paired gate sees it
    # Beside both, the ceiling: the slowed candidate keeps less of it than the baseline does.
    shares = {side: report["ceiling"][side][ALL_QUERIES] for side in ("candidate", "baseline")}
    assert 0 < shares["candidate"]["share"] < shares["baseline"]["share"], shares
    assert "share of the raw-SQL ceiling" in done.stdout
    [suite] = read(tmp_path / "junit.xml")
    assert suite.name == SUITE_NAME
    assert suite.properties["baseline_ref"] == str(REPO_ROOT)
    assert suite.properties["verdict"] == "regressed"
    overall = next(case for case in suite.cases if case.name == ALL_QUERIES)
    assert overall.outcome is CaseOutcome.FAILED
    assert overall.message.startswith("regressed beyond 10%")
    assert all(case.requirements == (REQUIREMENT,) for case in suite.cases)
    [record] = read_records(history)
    assert record["kind"] == "regression"
    assert record["verdict"] == "regressed"
    assert record["candidate"]["application"] == SLOW_APP
    assert record["baseline"]["commit"]


def _commit_before_the_newest_migration() -> tuple[str, str]:
    """A commit of this repository whose alembic head is older than the checkout's, and that head."""
    newest = alembic_scripts().get_revision(head_revision())
    assert newest is not None
    path = Path(newest.path).relative_to(REPO_ROOT)
    added = subprocess.run(
        ["git", "log", "--format=%H", "--diff-filter=A", "--", str(path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert added, f"git log finds no commit adding {path} (a shallow clone? git fetch --unshallow)"
    previous = newest.down_revision
    assert isinstance(previous, str)
    return f"{added[-1]}~1", previous


def test_a_baseline_whose_schema_is_not_the_databases_could_not_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref, its_head = _commit_before_the_newest_migration()
    code = main(["--baseline", ref, *ROUNDS, "--no-history", "--report-dir", str(tmp_path)])
    error = capsys.readouterr().err
    assert code == Exit.COULD_NOT_RUN, error
    assert f"baseline {ref} needs schema {its_head}, the database has {head_revision()}" in error
    [suite] = read(tmp_path / "junit.xml")
    assert suite.cases
    assert {case.outcome for case in suite.cases} == {CaseOutcome.ERROR}
    assert all(case.message.startswith("could not run: baseline") for case in suite.cases)
