"""`python -m conformance --jobs N`: shards (pytest-xdist processes) with an embedded stack each, whose outcomes
the controller merges into one requirement matrix and one JUnit file, and whose usage errors it exits with."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conformance import junit
from conformance.provenance import current
from conformance.verdicts import Exit

REPO = Path(__file__).resolve().parents[2]
TWO_REQUIREMENTS = ["--requirement", "RB-HEALTH-LIVE", "--requirement", "RB-DATA-ID-CONFLICT"]


def _conformance(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "conformance", *args]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.mark.integration
def test_two_shards_merge_their_outcomes_into_one_matrix_and_one_junit_file(tmp_path: Path) -> None:
    result = _conformance("--jobs", "2", *TWO_REQUIREMENTS, "--report-dir", str(tmp_path))
    assert result.returncode == Exit.OK, result.stdout[-4000:] + result.stderr[-2000:]
    assert "created: 2/2 workers" in result.stdout  # it did run as shards

    matrix = json.loads((tmp_path / "requirements.json").read_text())
    rows = {row["id"]: row for row in matrix["requirements"]}
    for requirement_id in ("RB-HEALTH-LIVE", "RB-DATA-ID-CONFLICT"):
        assert rows[requirement_id]["outcome"] == "passed", rows[requirement_id]
        assert rows[requirement_id]["tests"], rows[requirement_id]
    assert rows["RB-HEALTH-READY"]["outcome"] == "not run (not selected)"
    assert "RB-HEALTH-LIVE            passed" in result.stdout

    (suite,) = junit.read(tmp_path / "junit.xml")
    assert suite.properties["commit"] == current().commit  # written by the controller, not the shards
    assert suite.properties["target"] == "embedded stack"
    proved = {requirement_id for case in suite.cases for requirement_id in case.requirements}
    assert proved == {"RB-HEALTH-LIVE", "RB-DATA-ID-CONFLICT"}


def test_a_shards_usage_error_is_the_runs_usage_error_not_a_crash(tmp_path: Path) -> None:
    result = _conformance("--jobs", "2", "--requirement", "RB-NO-SUCH-THING", "--report-dir", str(tmp_path))
    assert result.returncode == Exit.USAGE, result.stdout[-3000:] + result.stderr[-2000:]
    assert "unknown requirement ID(s): RB-NO-SUCH-THING" in result.stderr
    assert "INTERNALERROR" not in result.stdout + result.stderr
    assert not (tmp_path / "requirements.json").exists()  # no matrix for a run that refused to start


@pytest.mark.parametrize("jobs", ["0", "9", "two"])
def test_jobs_outside_1_to_8_is_a_usage_error(jobs: str) -> None:
    result = _conformance("--jobs", jobs, timeout=60)
    assert result.returncode == Exit.USAGE
    assert "--jobs" in result.stderr
    assert "from 1 to 8" in result.stderr


def test_a_remote_target_is_never_sharded() -> None:
    result = _conformance("--jobs", "2", "--base-url", "http://127.0.0.1:9", timeout=60)
    assert result.returncode == Exit.USAGE
    assert "a remote target is checked by one process" in result.stderr
