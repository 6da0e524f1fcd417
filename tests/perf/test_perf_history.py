"""The perf results history (conformance/perf/history.py): one record per run, the previous record of the same
command and profile found and printed beside this run's, labelled as another run; and, end to end on the real
embedded stack, two runs of the gate leave two records (with the raw-SQL ceiling's share) and the second shows
the first beside it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from chaos.stack.migrations import REPO_ROOT
from conformance.junit import FIGURE_PREFIX
from conformance.perf.history import (
    DEFAULT_HISTORY,
    HISTORY_ENV,
    append_record,
    history_path,
    previous_record,
    read_records,
    render_beside_previous,
)
from conformance.perf.paired import ALL_QUERIES

TINY_PROFILE = """
[profiles.tiny]
description = "a few seconds against the embedded stack"
target = "embedded"
workers = 1
dataset_events = 3000
dataset_days = 30
concurrency = 2
warmup_s = 0.2
duration_s = 3
max_requests = 2000
max_error_rate = 0.0
request_timeout_s = 10
"""


def test_the_previous_record_is_the_newest_of_the_same_kind_and_profile(tmp_path: Path) -> None:
    path = tmp_path / "perf" / "history.jsonl"
    assert previous_record(path, "gate", "ci") is None
    append_record(path, {"kind": "gate", "profile": "ci", "at": "1"})
    append_record(path, {"kind": "gate", "profile": "local", "at": "2"})
    append_record(path, {"kind": "regression", "profile": "ci", "at": "3"})
    with path.open("a") as handle:
        handle.write('{"kind": "gate", "profile": "ci", "at": "4"')  # a run killed while writing its line
    append_record(path, {"kind": "gate", "profile": "ci", "at": "5"})
    assert [r["at"] for r in read_records(path)] == ["1", "2", "3", "5"]
    found = previous_record(path, "gate", "ci")
    assert found is not None
    assert found["at"] == "5"
    regression = previous_record(path, "regression", "ci")
    assert regression is not None
    assert regression["at"] == "3"


def test_the_history_file_is_the_option_else_the_environment_else_reports_perf(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(HISTORY_ENV, raising=False)
    assert history_path(None) == DEFAULT_HISTORY == REPO_ROOT / "reports" / "perf" / "history.jsonl"
    monkeypatch.setenv(HISTORY_ENV, str(tmp_path / "env.jsonl"))
    assert history_path(None) == tmp_path / "env.jsonl"
    assert history_path(tmp_path / "given.jsonl") == tmp_path / "given.jsonl"
    assert history_path(tmp_path / "given.jsonl", disabled=True) is None


def test_the_previous_run_is_shown_beside_and_labelled_as_another_run() -> None:
    previous = {
        "at": "2026-12-01T10:00:00+00:00",
        "candidate": {"commit": "a" * 40, "dirty": False},
        "queries": {"get by id": {"mean_ms": 5.0, "p95_ms": 9.0, "per_s": 50.0}},
        "ceiling_share": 0.7,
    }
    current = {"queries": {"get by id": {"mean_ms": 6.5, "p95_ms": 11.0, "per_s": 41.0}, "new query": {}}}
    lines = render_beside_previous(previous, current)
    assert "ANOTHER RUN, not a paired comparison" in lines[0]
    assert "2026-12-01T10:00:00+00:00" in lines[0]
    assert "aaaaaaaaaa" in lines[0]
    [row] = [line for line in lines if line.startswith("get by id")]
    assert row.split()[3:] == ["6.50", "5.00", "11.00", "9.00", "41.0", "50.0"]
    [new] = [line for line in lines if line.startswith("new query")]
    assert new.split()[2:] == ["—"] * 6
    assert lines[-1] == "share of the raw-SQL ceiling: now —, then 70.0%"
    assert "none recorded" in render_beside_previous(None, current)[0]


def _gate(profiles: Path, history: Path, report_dir: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "scripts/benchmark_queries.py", "--profiles-file", str(profiles), "--profile", "tiny"]
    command += ["--history", str(history), "--report-dir", str(report_dir)]
    return subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.integration
def test_two_gate_runs_leave_two_records_and_the_second_shows_the_first(tmp_path: Path) -> None:
    profiles = tmp_path / "profiles.toml"
    profiles.write_text(TINY_PROFILE)
    history = tmp_path / "history.jsonl"
    first = _gate(profiles, history, tmp_path / "first")
    assert first.returncode == 0, first.stderr[-3000:]
    assert "none recorded for this command and profile" in first.stdout
    assert "share of the raw-SQL ceiling" in first.stdout
    second = _gate(profiles, history, tmp_path / "second")
    print(second.stdout)
    assert second.returncode == 0, second.stderr[-3000:]
    records = read_records(history)
    assert [r["kind"] for r in records] == ["gate", "gate"]
    assert f"ANOTHER RUN, not a paired comparison: {records[0]['at']}" in second.stdout
    for record in records:
        assert record["candidate"]["commit"]
        assert record["machine"]
        assert record["profile"] == "tiny"
        assert "--profile tiny" in record["command"]
        assert record["ceiling_share"] > 0
        assert record["verdict"] == "passed"
        assert set(record["queries"]) >= {"get by id", "stats type/day, all 30 days"}
    figures = json.loads((tmp_path / "second" / "figures.json").read_text())
    overall = figures["ceiling"][ALL_QUERIES]
    assert overall["low"] <= overall["share"] <= overall["high"]
    assert f'name="{FIGURE_PREFIX}ceiling_share"' in (tmp_path / "second" / "junit.xml").read_text()
