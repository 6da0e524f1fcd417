"""`scripts/benchmark_queries.py` end to end (RB-PERF-GATE): it starts the embedded stack, seeds it, runs the
whole query suite, prints the table, and fails the gate naming the breaching queries. The thresholds here are
set impossibly low on purpose so that the run must fail; the gate's pass path is the same code with the
runbook's figures (docs/QUALITY_GATES.perf.md). Speed is not asserted: the figures are printed. The `served`
profile runs, shortened, against the service with the default rate limits, as `make serve` starts it."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
from limits import parse

from chaos.stack.migrations import REPO_ROOT, migrate
from chaos.stack.servers import RedisServer
from chaos.stack.service import ServiceProcess
from conformance.perf.profiles import PROFILES_FILE
from conformance.perf.seeding import DatasetSpec, seed_events
from service.settings import Settings
from tests.helpers import TEST_API_KEY, TEST_JWT_SECRET

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


def _served_profile(base_url: str, *, duration_s: float) -> str:
    """The `served` profile of conformance/perf/profiles.toml as it is (pacing included), made short."""
    profile = tomllib.loads(PROFILES_FILE.read_text())["profiles"]["served"]
    profile.update(url=base_url, duration_s=duration_s, warmup_s=1)
    lines = ["[profiles.served]", *(f"{key} = {json.dumps(value)}" for key, value in profile.items())]
    return "\n".join(lines) + "\n"


def test_the_served_profile_is_paced_under_the_default_read_limit() -> None:
    profile = tomllib.loads(PROFILES_FILE.read_text())["profiles"]["served"]
    read_limit = parse(Settings.model_fields["rate_limit_read"].default)
    per_second = read_limit.amount / read_limit.get_expiry()
    assert profile.get("rate_per_s"), "the served profile is not paced"
    assert profile["rate_per_s"] <= 0.9 * per_second, f"paced to {profile['rate_per_s']}/s; the limit is {per_second}/s"


def test_the_served_profile_passes_against_a_service_with_the_default_limits(
    fresh_database: Callable[[], str], tmp_path: Path
) -> None:
    """`make serve`'s service (default rate limits) with a small dataset: no source has a second page of 50,
    so the cursor query needs a cursor found with a smaller page. No request may fail: no 429 (the profile is
    paced), no 400 (no empty cursor). The thresholds are set out of reach: speed is not what this tests."""
    database_url = fresh_database()
    migrate(database_url)
    asyncio.run(seed_events(database_url, DatasetSpec(events=200, days=30), progress=lambda _: None))
    env = {"DATABASE_URL": database_url, "API_KEY": TEST_API_KEY, "JWT_SECRET": TEST_JWT_SECRET}
    with RedisServer() as redis, ServiceProcess({**env, "REDIS_URL": redis.url()}, workers=1) as service:
        profiles = tmp_path / "profiles.toml"
        profiles.write_text(_served_profile(service.base_url, duration_s=6))
        result = subprocess.run(
            [sys.executable, "scripts/benchmark_queries.py", "--profile", "served", "--profiles-file", str(profiles)],
            cwd=REPO_ROOT,
            env={
                **os.environ,
                "BENCH_BASE_URL": service.base_url,
                "API_KEY": TEST_API_KEY,
                "BENCH_FAIL_THRESHOLD_MS": "60000",
                "BENCH_FAIL_P95_THRESHOLD_MS": "60000",
            },
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "paced to 80/s" in result.stderr  # progress goes to stderr ...
    table = result.stdout  # ... the table and the verdict to stdout
    assert "PASS: every query within the gate" in table
    cursor_rows = [line for line in table.splitlines() if line.startswith("list next page (cursor)")]
    assert len(cursor_rows) == 1, table
    assert cursor_rows[0].rstrip().endswith("ok"), table
