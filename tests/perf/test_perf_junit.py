"""`scripts/benchmark_queries.py --report-dir DIR` (RB-PERF-GATE): the gate's verdicts as JUnit XML (suite
`runbook-perf-gate`, one testcase per query) and its figures as DIR/figures.json, with the exit codes of the
shared table. The thresholds are set out of reach (or impossibly low): speed is not what this tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chaos.lifecycle import free_port
from chaos.stack.migrations import REPO_ROOT
from conformance.junit import CaseOutcome, read
from conformance.perf.suite import SUITE
from conformance.verdicts import Exit
from tests.helpers import TEST_API_KEY
from tests.perf.test_perf_gate import TINY_PROFILE


def _gate(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    profiles = tmp_path / "profiles.toml"
    profiles.write_text(TINY_PROFILE + UNREACHABLE_PROFILE.format(port=free_port()))
    return subprocess.run(
        [sys.executable, "scripts/benchmark_queries.py", "--profiles-file", str(profiles), *args],
        cwd=REPO_ROOT,
        env={**os.environ, "BENCH_PROFILE": "tiny", **env},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


UNREACHABLE_PROFILE = """
[profiles.nowhere]
description = "a loopback port nothing listens on"
target = "url"
url_env = "BENCH_NO_SUCH_URL"
url = "http://127.0.0.1:{port}"
api_key_env = "API_KEY"
concurrency = 1
warmup_s = 0
duration_s = 1
max_requests = 10
max_error_rate = 0.0
request_timeout_s = 2
"""


@pytest.mark.integration
def test_report_dir_writes_one_case_per_query_and_the_figures(tmp_path: Path) -> None:
    reports = tmp_path / "reports" / "perf"
    gate = _gate(
        tmp_path, "--report-dir", str(reports), BENCH_FAIL_THRESHOLD_MS="0.001", BENCH_FAIL_P95_THRESHOLD_MS="60000"
    )
    assert gate.returncode == Exit.FAILED, gate.stderr[-3000:]
    figures = json.loads((reports / "figures.json").read_text())
    assert figures["passed"] is False
    assert figures["thresholds"] == {"mean_ms": 0.001, "p95_ms": 60000.0}
    assert figures["profile"]["name"] == "tiny"
    assert figures["provenance"]["commit"]
    assert set(figures["provenance"]) >= {"commit", "dirty", "version", "at"}
    [suite] = read(reports / "junit.xml")
    assert suite.name == "runbook-perf-gate"
    assert suite.properties["target"] == "the embedded stack"
    assert suite.properties["threshold_mean_ms"] == "0.001"
    assert {"commit", "dirty", "version"} <= set(suite.properties)
    cases = {case.name: case for case in suite.cases}
    assert set(cases) == set(figures["summaries"]) | set(figures["skipped"])
    assert set(figures["summaries"]) <= set(SUITE)
    for name in figures["summaries"]:
        case = cases[name]
        assert case.requirements == ("RB-PERF-GATE",)
        assert case.outcome is CaseOutcome.FAILED
        assert case.message == "; ".join(figures["failed"][name])
        assert case.message.startswith("mean ")
    for name in figures["skipped"]:
        assert cases[name].outcome is CaseOutcome.NOT_APPLICABLE
    # The figures ride along as properties (the reader returns the requirement IDs; look at the XML itself).
    text = (reports / "junit.xml").read_text()
    assert 'name="figure:p95_ms"' in text
    assert 'name="figure:count"' in text
    assert f"reports: {reports / 'junit.xml'}" in gate.stderr


def test_a_target_that_cannot_be_benchmarked_could_not_run_and_says_so_per_query(tmp_path: Path) -> None:
    reports = tmp_path / "perf"
    reports.mkdir()
    (reports / "figures.json").write_text("{}")  # an earlier run's
    gate = _gate(tmp_path, "--profile", "nowhere", "--report-dir", str(reports), API_KEY=TEST_API_KEY)
    assert gate.returncode == Exit.COULD_NOT_RUN, gate.stderr[-3000:]
    assert "cannot benchmark the target" in gate.stderr
    assert not (reports / "figures.json").exists(), "no figures from another run beside this run's verdict"
    [suite] = read(reports / "junit.xml")
    assert [case.name for case in suite.cases] == list(SUITE)
    assert {case.outcome for case in suite.cases} == {CaseOutcome.ERROR}
    assert all(case.message.startswith("could not run: GET ") for case in suite.cases), suite.cases[0].message
    assert suite.properties["target"].startswith("http://127.0.0.1:")
    assert TEST_API_KEY not in (reports / "junit.xml").read_text()


def test_without_report_dir_nothing_is_written_and_help_shows_the_table(tmp_path: Path) -> None:
    shown = _gate(tmp_path, "--help")
    assert shown.returncode == Exit.OK
    assert "--report-dir DIR" in shown.stdout
    assert "  5  aborted" in shown.stdout
    assert "  3  could not run" in shown.stdout
    gate = _gate(tmp_path, "--profile", "nowhere", API_KEY=TEST_API_KEY)
    assert gate.returncode == Exit.COULD_NOT_RUN
    assert list(tmp_path.iterdir()) == [tmp_path / "profiles.toml"]
