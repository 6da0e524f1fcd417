"""The paired regression comparison end to end on the real embedded stack (PostgreSQL, Redis, two services), with
the smallest profile (smoke): the same build on both sides is not flagged; a candidate with a deliberate
slowdown (tests/perf/slow_app.py, a 3 ms CPU burn per API request) is REGRESSED; a baseline whose schema is not
the database's could not run. No absolute speed is asserted: the machine is shared, and the alternating ABBA
rounds are what let the ratios stand anyway. Each run prints its table (pytest -s shows the figures)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from chaos.stack.migrations import REPO_ROOT, alembic_scripts, head_revision
from conformance.perf.paired import ALL_QUERIES
from conformance.perf.paired_cli import main
from conformance.verdicts import Exit

pytestmark = pytest.mark.integration

SLOW_APP = "tests.perf.slow_app:app"
ROUNDS = ["--profile", "smoke", "--rounds", "5", "--round-s", "1.5"]


def _run(args: list[str], report_dir: Path) -> tuple[int, dict[str, Any]]:
    code = main([*args, "--report-dir", str(report_dir)])
    print((report_dir / "paired.txt").read_text())
    return code, json.loads((report_dir / "paired.json").read_text())


def test_the_same_build_on_both_sides_is_not_flagged(tmp_path: Path) -> None:
    code, report = _run(["--baseline", str(REPO_ROOT), *ROUNDS], tmp_path)
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
    code, report = _run(["--baseline", str(REPO_ROOT), "--candidate-app", SLOW_APP, *ROUNDS], tmp_path)
    assert code == Exit.FAILED
    assert report["verdict"] == "regressed"
    assert report["candidate"]["application"] == SLOW_APP
    overall = report["comparisons"][ALL_QUERIES]
    assert overall["verdict"] == "regressed"
    assert overall["mean_ms"]["low"] > 1 + report["bound"]
    assert overall["per_s"]["high"] < 1 / (1 + report["bound"])
    assert report["absolute_gate"]["passed"]  # slower, yet within 250/400 ms: only the paired gate sees it


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
    code = main(["--baseline", ref, *ROUNDS])
    error = capsys.readouterr().err
    assert code == Exit.COULD_NOT_RUN, error
    assert f"baseline {ref} needs schema {its_head}, the database has {head_revision()}" in error
