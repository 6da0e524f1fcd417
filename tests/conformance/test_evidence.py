"""The cross-harness evidence matrix (conformance.evidence): from JUnit files the harnesses write, the latest
outcome per requirement and method, stale when from another commit or too old, never passed without evidence;
its command's exit codes; and the conformance matrix with and without --evidence-from."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from conformance import evidence, junit
from conformance.evidence import Outcome, Verdict
from conformance.junit import Case, CaseOutcome, Suite
from conformance.plugin import RequirementOutcome, build_matrix, render_markdown
from conformance.provenance import COMMIT_ENV, Provenance, current
from conformance.registry import load_registry
from conformance.verdicts import Exit

REPO = Path(__file__).resolve().parents[2]
COMMIT = "c0ffee" * 6 + "abcd"  # 40 hex digits: the "current" commit of these tests
OTHER_COMMIT = "deadbeef" * 5
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
CLEAN_NOW = Provenance(commit=COMMIT, dirty=False, version="0.1.0", at=NOW.isoformat())


def suite(
    name: str, *, hours_ago: float = 1, commit: str = COMMIT, dirty: bool = False, target: str = "local"
) -> Suite:
    at = (NOW - timedelta(hours=hours_ago)).isoformat()
    return Suite(name, at, {"commit": commit, "dirty": str(dirty).lower(), "version": "0.1.0", "target": target})


def drill(name: str, outcome: CaseOutcome = CaseOutcome.PASSED, *requirements: str) -> Case:
    return Case("drills", name, 1.0, outcome, requirements, message="" if outcome is CaseOutcome.PASSED else "why")


def check(requirement: str, outcome: CaseOutcome = CaseOutcome.PASSED, name: str = "test_it") -> Case:
    return Case("conformance.checks.test_x", name, 0.1, outcome, (requirement,), message="why")


def write_drill_run(
    reports: Path,
    run_id: str,
    cases: Sequence[Case],
    *,
    hours_ago: float = 1,
    commit: str = COMMIT,
    dirty: bool = False,
    target: str = "local",
) -> Path:
    """One `python -m chaos run`'s file: <reports>/drills/<run_id>/junit.xml."""
    run = suite("runbook-drills", hours_ago=hours_ago, commit=commit, dirty=dirty, target=target)
    return junit.write(reports / "drills" / run_id / "junit.xml", run, cases)


def build(reports: Path, now: Provenance = CLEAN_NOW, max_age: float | None = None) -> evidence.Matrix:
    return evidence.build([reports], now=now, max_age=max_age)


def only(matrix: evidence.Matrix, requirement_id: str, method: str) -> evidence.Evidence:
    return next(item for item in matrix.row(requirement_id).evidence if item.method == method)


def test_fresh_passing_evidence_from_every_method_passes(tmp_path: Path) -> None:
    # RB-DB-RECOVER: conformance and drill db-down; RB-PERF-GATE: the perf gate's suite (gate perf-queries).
    junit.write(tmp_path / "conformance" / "junit.xml", suite("runbook-conformance"), [check("RB-DB-RECOVER")])
    write_drill_run(tmp_path, "20260310T110000Z", [drill("db-down", CaseOutcome.PASSED, "RB-DB-RECOVER")])
    queries = [Case("perf", name, 1.0, CaseOutcome.PASSED, ("RB-PERF-GATE",)) for name in ("list", "counts")]
    junit.write(tmp_path / "perf" / "junit.xml", suite("runbook-perf-gate"), queries)
    matrix = build(tmp_path)
    row = matrix.row("RB-DB-RECOVER")
    assert row.verdict is Verdict.PASSED, row
    assert [(item.method, item.outcome, item.fresh) for item in row.evidence] == [
        ("conformance", Outcome.PASSED, True),
        ("drill:db-down", Outcome.PASSED, True),
    ]
    perf = only(matrix, "RB-PERF-GATE", "gate:perf-queries")
    assert (perf.outcome, perf.by, matrix.row("RB-PERF-GATE").verdict) == (Outcome.PASSED, ("list", "counts"), "passed")
    cells = matrix.row("RB-DB-RECOVER").as_dict()
    assert next(iter(cells)) == "id"
    assert cells["drills"][0] | {"file": None} == {
        "method": "drill:db-down",
        "outcome": "passed",
        "at": "2026-03-10T11:00:00+00:00",
        "commit": COMMIT[:10],
        "target": "local",
        "stale": False,
        "stale_reason": None,
        "by": ["db-down"],
        "file": None,
    }
    # Requirements nobody produced evidence for are not passed.
    assert matrix.row("RB-HEALTH-LIVE").verdict is Verdict.NO_EVIDENCE
    assert matrix.exit_code is Exit.INCONCLUSIVE


def test_half_the_methods_is_not_a_pass(tmp_path: Path) -> None:
    junit.write(tmp_path / "conformance" / "junit.xml", suite("runbook-conformance"), [check("RB-DB-RECOVER")])
    row = build(tmp_path).row("RB-DB-RECOVER")
    assert row.verdict is Verdict.NO_EVIDENCE
    assert only(build(tmp_path), "RB-DB-RECOVER", "drill:db-down").describe() == "drill db-down: no evidence"


def test_a_fresh_failure_fails_the_requirement(tmp_path: Path) -> None:
    cases = [check("RB-DB-RECOVER", name="test_a"), check("RB-DB-RECOVER", CaseOutcome.FAILED, name="test_b")]
    junit.write(tmp_path / "conformance" / "junit.xml", suite("runbook-conformance"), cases)
    write_drill_run(tmp_path, "20260310T110000Z", [drill("db-down")])
    matrix = build(tmp_path)
    assert only(matrix, "RB-DB-RECOVER", "conformance").outcome is Outcome.FAILED
    assert only(matrix, "RB-DB-RECOVER", "conformance").by == ("test_a", "test_b")
    assert matrix.row("RB-DB-RECOVER").verdict is Verdict.FAILED
    assert matrix.exit_code is Exit.FAILED
    assert "| RB-DB-RECOVER |" in evidence.render_markdown(matrix)
    assert "**failed**" in evidence.render_markdown(matrix)


def test_aborted_and_could_not_run_are_neither_passed_nor_failed(tmp_path: Path) -> None:
    write_drill_run(tmp_path, "r1", [drill("release-bad-code", CaseOutcome.ABORTED)])
    write_drill_run(tmp_path, "r2", [drill("release-bad-config", CaseOutcome.ERROR)])
    errored = [check("RB-HEALTH-LIVE", CaseOutcome.ERROR)]  # pytest's <error>: a check broken in its setup
    junit.write(tmp_path / "conformance" / "junit.xml", suite("runbook-conformance"), errored)
    matrix = build(tmp_path)
    assert matrix.row("RB-ROLLBACK-APP").verdict is Verdict.ABORTED
    assert matrix.row("RB-ROLLBACK-CONFIG").verdict is Verdict.COULD_NOT_RUN
    assert matrix.row("RB-HEALTH-LIVE").verdict is Verdict.FAILED  # as conformance's own matrix says


def test_evidence_from_another_commit_is_stale_not_passed(tmp_path: Path) -> None:
    write_drill_run(tmp_path, "20260310T110000Z", [drill("release-bad-config")], commit=OTHER_COMMIT)
    matrix = build(tmp_path)
    item = only(matrix, "RB-ROLLBACK-CONFIG", "drill:release-bad-config")
    assert item.outcome is Outcome.PASSED
    assert not item.fresh
    assert item.stale.startswith("other commit")
    assert matrix.row("RB-ROLLBACK-CONFIG").verdict is Verdict.STALE
    assert item.describe().startswith("drill release-bad-config: STALE passed (2026-03-10 11:00Z, deadbeefde")
    # A failure on another commit says nothing about this one either: stale, not failed.
    write_drill_run(
        tmp_path, "20260310T113000Z", [drill("release-bad-config", CaseOutcome.FAILED)], commit=OTHER_COMMIT
    )
    assert build(tmp_path).row("RB-ROLLBACK-CONFIG").verdict is Verdict.STALE


def test_evidence_older_than_the_bound_is_stale(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(evidence.MAX_AGE_ENV, raising=False)
    write_drill_run(tmp_path, "20260302T110000Z", [drill("release-bad-config")], hours_ago=8 * 24)
    item = only(build(tmp_path), "RB-ROLLBACK-CONFIG", "drill:release-bad-config")
    assert item.stale == "8.0 days old (bound 7)"
    assert build(tmp_path, max_age=9).row("RB-ROLLBACK-CONFIG").verdict is Verdict.PASSED
    monkeypatch.setenv(evidence.MAX_AGE_ENV, "9")
    assert build(tmp_path).row("RB-ROLLBACK-CONFIG").verdict is Verdict.PASSED
    monkeypatch.setenv(evidence.MAX_AGE_ENV, "a week")
    with pytest.raises(ValueError, match="not a number of days"):
        build(tmp_path)


def test_dirty_evidence_is_fresh_only_for_the_same_dirty_commit(tmp_path: Path) -> None:
    write_drill_run(tmp_path, "20260310T110000Z", [drill("release-bad-config")], dirty=True)
    dirty_now = Provenance(commit=COMMIT, dirty=True, version="0.1.0", at=NOW.isoformat())
    assert build(tmp_path, now=dirty_now).row("RB-ROLLBACK-CONFIG").verdict is Verdict.PASSED
    item = only(build(tmp_path), "RB-ROLLBACK-CONFIG", "drill:release-bad-config")
    assert "dirty work tree" in item.stale
    assert item.as_dict()["commit"] == COMMIT[:10] + "+dirty"


def test_a_later_partial_drill_run_keeps_older_evidence(tmp_path: Path) -> None:
    write_drill_run(tmp_path, "20260310T090000Z", [drill("db-down"), drill("redis-down")], hours_ago=3)
    write_drill_run(tmp_path, "20260310T110000Z", [drill("db-down", CaseOutcome.FAILED)], hours_ago=1)
    matrix = build(tmp_path)
    redis_down = only(matrix, "RB-RL-DEGRADED", "drill:redis-down")
    db_down = only(matrix, "RB-DB-RECOVER", "drill:db-down")
    assert (redis_down.outcome, redis_down.source and redis_down.source.path.parent.name) == (
        Outcome.PASSED,
        "20260310T090000Z",
    )
    assert (db_down.outcome, db_down.source and db_down.source.path.parent.name) == (
        Outcome.FAILED,
        "20260310T110000Z",
    )


def test_not_applicable_is_shown_only_when_no_run_checked_it(tmp_path: Path) -> None:
    write_drill_run(tmp_path, "20260310T090000Z", [drill("release-bad-code")], hours_ago=3)
    na = [
        drill("release-bad-code", CaseOutcome.NOT_APPLICABLE),
        drill("release-bad-config", CaseOutcome.NOT_APPLICABLE),
    ]
    write_drill_run(tmp_path, "20260310T110000Z", na, hours_ago=1, target="https://staging.example")
    cases = [check("RB-HEALTH-DRAIN", CaseOutcome.NOT_APPLICABLE), check("RB-HEALTH-LIVE", CaseOutcome.NOT_APPLICABLE)]
    junit.write(tmp_path / "conformance" / "junit.xml", suite("runbook-conformance"), cases)
    matrix = build(tmp_path)
    assert only(matrix, "RB-ROLLBACK-APP", "drill:release-bad-code").outcome is Outcome.PASSED
    assert matrix.row("RB-ROLLBACK-APP").verdict is Verdict.PASSED
    assert only(matrix, "RB-ROLLBACK-CONFIG", "drill:release-bad-config").outcome is Outcome.NOT_APPLICABLE
    assert matrix.row("RB-ROLLBACK-CONFIG").verdict is Verdict.NOT_APPLICABLE
    assert matrix.row("RB-HEALTH-DRAIN").verdict is Verdict.NOT_APPLICABLE
    assert matrix.exit_code is Exit.INCONCLUSIVE


def test_no_files_at_all_is_no_evidence_for_every_requirement(tmp_path: Path) -> None:
    (tmp_path / "stray.xml").write_text("<testsuites><testsuite name='pytest'/></testsuites>")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "junit.xml").write_text("<testsuites><unclosed>")
    matrix = build(tmp_path)
    assert {row.verdict for row in matrix.rows} == {Verdict.NO_EVIDENCE}
    assert len(matrix.rows) == len(load_registry().requirements)
    assert matrix.exit_code is Exit.INCONCLUSIVE
    assert len(matrix.problems) == 1
    assert "broken" in matrix.problems[0]


def everything_passed(reports: Path, *, failing_drill: str | None = None) -> None:
    """A fresh passing case for every method of every requirement in the registry, on the commit COMMIT."""
    registry = load_registry()
    at = datetime.now(UTC).isoformat()
    properties = {"commit": COMMIT, "dirty": "false", "version": "0.1.0", "target": "local"}
    checks = [check(r.id) for r in registry.requirements.values() if r.by_conformance]
    junit.write(reports / "conformance" / "junit.xml", Suite("runbook-conformance", at, properties), checks)
    drills = sorted({name for r in registry.requirements.values() for name in r.drills})
    cases = [drill(name, CaseOutcome.FAILED if name == failing_drill else CaseOutcome.PASSED) for name in drills]
    junit.write(reports / "drills" / "run" / "junit.xml", Suite("runbook-drills", at, properties), cases)
    gates = [Case("gates", name, 1.0, CaseOutcome.PASSED) for name in registry.gates]
    junit.write(reports / "gates" / "junit.xml", Suite("runbook-gates", at, properties), gates)


def evidence_command(*args: str, commit: str = COMMIT) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, COMMIT_ENV: commit}
    env.pop(evidence.MAX_AGE_ENV, None)
    command = [sys.executable, "-m", "conformance.evidence", *args]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False)


def test_the_command_exits_0_only_when_everything_is_fresh_and_passed(tmp_path: Path) -> None:
    everything_passed(tmp_path / "reports")
    result = evidence_command(str(tmp_path / "reports"), "--json")
    assert result.returncode == Exit.OK, result.stdout[-3000:] + result.stderr
    rows = json.loads(result.stdout)
    assert {row["verdict"] for row in rows} == {"passed"}
    assert (tmp_path / "reports" / "evidence-matrix.md").read_text().count("| passed |") == len(rows)
    assert json.loads((tmp_path / "reports" / "evidence-matrix.json").read_text()) == rows

    stale = evidence_command(str(tmp_path / "reports"), commit=OTHER_COMMIT)
    assert stale.returncode == Exit.INCONCLUSIVE, stale.stderr
    assert "STALE passed" in stale.stdout
    assert "| stale |" in stale.stdout


def test_the_command_exits_1_on_a_failure_and_2_on_bad_usage(tmp_path: Path) -> None:
    everything_passed(tmp_path / "reports", failing_drill="redis-down")
    output = tmp_path / "elsewhere"
    failed = evidence_command(str(tmp_path / "reports"), "--output", str(output))
    assert failed.returncode == Exit.FAILED, failed.stderr
    assert "**failed**" in (output / "evidence-matrix.md").read_text()
    assert evidence_command(str(tmp_path / "missing")).returncode == Exit.USAGE
    assert evidence_command(str(tmp_path / "reports"), "--max-age-days", "0").returncode == Exit.USAGE


def test_the_conformance_matrix_without_evidence_points_but_never_reads_as_an_outcome() -> None:
    registry = load_registry()
    results = {"RB-DB-RECOVER": RequirementOutcome(tests={"test_x::test_recovers": "passed"})}
    matrix = build_matrix(registry, results, "embedded stack")
    rows = {row["id"]: row for row in matrix["requirements"]}
    assert rows["RB-ROLLBACK-APP"]["outcome"] == "not checked by this run (verified by drill release-bad-code)"
    assert rows["RB-DB-RECOVER"]["outcome"] == "passed"
    assert rows["RB-DB-RECOVER"]["drills_and_gates"] == "not checked by this run (verified by drill db-down)"
    assert not any(row["outcome"].startswith("verified by") for row in rows.values())
    assert "| not checked by this run (verified by drill release-bad-code) |" in render_markdown(matrix)


def test_the_conformance_matrix_with_evidence_shows_dates_commits_and_staleness(tmp_path: Path) -> None:
    now = current()
    write_drill_run(tmp_path, "20260310T090000Z", [drill("db-down")], commit=OTHER_COMMIT)
    found = evidence.build([tmp_path], now=now)
    matrix = build_matrix(load_registry(), {}, "embedded stack", found, [tmp_path])
    rows = {row["id"]: row for row in matrix["requirements"]}
    assert rows["RB-DB-RECOVER"]["drills_and_gates"] == "stale (drill db-down stale passed)"
    assert rows["RB-DB-RECOVER"]["evidence"][0]["commit"] == OTHER_COMMIT[:10]
    assert rows["RB-ROLLBACK-APP"]["outcome"] == "no evidence (drill release-bad-code no evidence)"
    markdown = render_markdown(matrix)
    assert "drill db-down: passed, 2026-03-10T11:00:00+00:00, deadbeefde, local **STALE** (other commit" in markdown


@pytest.mark.integration
def test_python_m_conformance_with_evidence_from(tmp_path: Path) -> None:
    """A real run (one cheap requirement, the embedded stack): its junit.xml carries the run's provenance, which
    the evidence matrix reads as fresh, and its requirement matrix shows the drills' evidence."""
    provenance = current()
    evidence_dir = tmp_path / "evidence"
    fresh = Suite("runbook-drills", datetime.now(UTC).isoformat(), {"commit": provenance.commit, "target": "local"})
    junit.write(evidence_dir / "drills" / "r1" / "junit.xml", fresh, [drill("db-down"), drill("redis-down")])
    report_dir = tmp_path / "conformance"
    command = [sys.executable, "-m", "conformance", "--requirement", "RB-HEALTH-LIVE", "-q"]
    command += ["--report-dir", str(report_dir), "--evidence-from", str(evidence_dir)]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == Exit.OK, result.stdout[-4000:] + result.stderr[-2000:]

    (written,) = junit.read(report_dir / "junit.xml")
    assert written.name == "runbook-conformance"
    assert written.properties["commit"] == provenance.commit
    assert written.properties["target"] == "embedded stack"
    assert set(written.properties) >= {"commit", "dirty", "version", "target"}
    matrix = json.loads((report_dir / "requirements.json").read_text())
    assert matrix["provenance"]["commit"] == provenance.commit
    rows = {row["id"]: row for row in matrix["requirements"]}
    assert rows["RB-RL-DEGRADED"]["evidence"][0]["outcome"] == "passed"
    # Clean evidence of this commit (the drill run names no dirtiness) stays fresh on a dirty tree.
    assert rows["RB-RL-DEGRADED"]["evidence"][0]["stale"] is False, rows["RB-RL-DEGRADED"]
    assert rows["RB-ROLLBACK-APP"]["outcome"] == "no evidence (drill release-bad-code no evidence)"
    assert "drill redis-down: passed" in result.stdout

    # The pytest-written file is evidence too: RB-HEALTH-LIVE fresh and passed on this commit.
    both = evidence.build([report_dir, evidence_dir], now=current())
    live = only(both, "RB-HEALTH-LIVE", "conformance")
    assert (live.outcome, live.fresh, both.row("RB-HEALTH-LIVE").verdict) == (Outcome.PASSED, True, Verdict.PASSED)
    assert len(live.by) == 2  # its two checks
    assert both.row("RB-RL-DEGRADED").verdict is Verdict.NO_EVIDENCE  # its conformance checks did not run


def test_python_m_conformance_refuses_a_missing_evidence_directory(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "conformance", "--evidence-from", str(tmp_path / "nope")]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == Exit.USAGE
    assert "no such report directory" in result.stderr
