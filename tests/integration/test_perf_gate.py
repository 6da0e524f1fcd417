"""`scripts/benchmark_queries.py` end to end (RB-PERF-GATE): it starts the embedded stack, seeds it, runs the
whole query suite, prints the table, and fails the gate naming the breaching queries. The thresholds here are
set impossibly low on purpose so that the run must fail; the gate's pass path is the same code with the
runbook's figures (docs/QUALITY_GATES.perf.md). Speed is not asserted: the figures are printed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chaos.service_process import REPO_ROOT

pytestmark = pytest.mark.integration

TINY_PROFILE = """
[profiles.tiny]
description = "a few seconds against the embedded stack"
target = "embedded"
workers = 1
dataset_events = 3000
dataset_days = 30
concurrency = 2
warmup_s = 0.2
duration_s = 1.5
max_requests = 2000
max_error_rate = 0.0
request_timeout_s = 10
"""


def test_the_gate_runs_the_suite_on_the_embedded_stack_and_names_breaching_queries(tmp_path: Path) -> None:
    profiles = tmp_path / "profiles.toml"
    profiles.write_text(TINY_PROFILE)
    env = {
        **os.environ,
        "BENCH_PROFILE": "tiny",
        "BENCH_FAIL_THRESHOLD_MS": "0.001",
        "BENCH_FAIL_P95_THRESHOLD_MS": "400",
    }
    result = subprocess.run(
        [sys.executable, "scripts/benchmark_queries.py", "--profiles-file", str(profiles), "--json"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 1, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert report["passed"] is False
    assert report["profile"]["name"] == "tiny"
    assert report["seeded"]["events"] == 3000
    summaries = report["summaries"]
    assert "stats type/day, all 30 days" in summaries
    assert all(summary["count"] > 0 and summary["errors"] == 0 for summary in summaries.values()), summaries
    assert set(report["failed"]) == set(summaries)
    assert "FAIL get by id: mean" in result.stderr
    assert "p95 ms" in result.stderr  # the table
    assert "measuring: 2 concurrent clients" in result.stderr
    assert "stopping the embedded stack" in result.stderr
