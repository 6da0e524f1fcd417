"""The runbook's performance-regression gate (성능 회귀 점검, RB-PERF-GATE): time the event API's query suite.

    BENCH_PROFILE=staging BENCH_FAIL_THRESHOLD_MS=250 BENCH_FAIL_P95_THRESHOLD_MS=400 \\
        python scripts/benchmark_queries.py

A profile (conformance/perf/profiles.toml; --list-profiles shows them) names the target, where its credentials
come from, the dataset, the concurrency, the warm-up and how long to run:

- `target = "embedded"` (profiles local, ci, smoke) starts the project's own stack (chaos.stack.local.LocalStack:
  throwaway PostgreSQL, Redis and the service on 127.0.0.1), seeds its dataset straight into PostgreSQL
  (generated server-side, spread over 30 days with realistic source/type cardinality), and stops it at the end;
- `target = "url"` (profiles staging, served) loads a running deployment, never seeds it, and queries the data
  it has. The URL comes from BENCH_BASE_URL (or the profile's `url`); it must be a loopback address unless the
  profile names it. The API key comes from API_KEY (the profile's `api_key_env`).

The suite (through the HTTP API, as clients use it): listing with filters and time ranges, the next page of a
keyset-paginated listing, get by id, and stats per minute/hour/day bucket including counts over the whole
30 days. Parameters (ranges, sources, types, ids, cursors) are discovered from the target's own data, so the
same suite runs against any deployment. `concurrency` requests are in flight at once, for at most
`duration_s` seconds and `max_requests` requests, after `warmup_s` seconds whose timings are discarded.

A remote profile paces its requests to `rate_per_s` (e.g. under the target's per-principal read limit: both
remote profiles are). Events the conformance suite wrote (source `rb-conformance-…`, dated 2001) and events
dated more than a day ahead are not part of the discovered dataset. When no source's listing has a second page
even at a page size of 1, the cursor query is skipped and the table says why; no request is ever sent with a
made-up (empty) cursor.

It prints a progress line every 2 s on stderr, then the table of count, mean, p50, p95, p99, max and errors per
query and the verdict (PASS, or a FAIL line per breaching query) on stdout.
Exit status:
  0  every query's mean <= BENCH_FAIL_THRESHOLD_MS (default 250), p95 <= BENCH_FAIL_P95_THRESHOLD_MS
     (default 400), and errors within the profile's `max_error_rate`
  1  the gate failed: the breaching queries are named (what breached, by how much)
  2  bad usage or configuration (unknown profile, bad threshold, refused target, missing credentials)
  3  the target could not be benchmarked (unreachable, unauthorised, no data)
With --json, stdout carries only the figures as JSON (with `skipped`); the table and verdict then go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
from collections.abc import Coroutine
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx
import uvloop

from conformance.perf.console import stderr
from conformance.perf.discovery import discover, skipped_queries
from conformance.perf.embedded import start_embedded_stack
from conformance.perf.errors import EXIT_GATE_FAILED, EXIT_PASS, EXIT_TARGET, EXIT_USAGE, TargetError, UsageError
from conformance.perf.gate import Say, print_table, stdout, verdicts
from conformance.perf.machine import machine_description
from conformance.perf.profiles import PROFILES_FILE, Profile, load_profiles
from conformance.perf.runner import run_suite
from conformance.perf.seeding import DatasetSpec, seed_events
from conformance.perf.suite import utc_iso
from conformance.perf.targets import TargetRefused, check_target
from conformance.perf.thresholds import Thresholds


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="benchmark_queries.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--profile", help="profile name (default: $BENCH_PROFILE, else 'local')")
    parser.add_argument("--profiles-file", type=Path, default=PROFILES_FILE, help="profiles TOML file")
    parser.add_argument("--list-profiles", action="store_true", help="show the profiles and exit")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON on stdout")
    parser.add_argument("--seed", type=int, default=7, help="random seed for query parameters (default 7)")
    return parser


async def _benchmark(profile: Profile, base_url: str, api_key: str, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)  # noqa: S311 (query parameters, not secrets)
    headers = {"X-API-Key": api_key, "User-Agent": "benchmark_queries.py"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=profile.request_timeout_s) as client:
        stderr(f"discovering the dataset through {base_url}/api/v1/events ...")
        data = await discover(client, profile.span_days, rng)
        stderr(
            f"  {len(data.sources)} sources, {len(data.types)} types, span {utc_iso(data.start)} .. "
            f"{utc_iso(data.newest)}; {len(data.ids)} sample ids, {len(data.cursors)} cursors"
        )
    for name, reason in skipped_queries(data).items():
        stderr(f"  {name}: {reason}")
    stats, seconds = await run_suite(base_url, headers, data, profile, seed=seed)
    return {
        "summaries": {name: s.summary() for name, s in stats.items()},
        "skipped": skipped_queries(data),
        "seconds": round(seconds, 3),
        "dataset": {
            "newest": utc_iso(data.newest),
            "start": utc_iso(data.start),
            "sources": len(data.sources),
            "types": len(data.types),
        },
    }


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        thresholds = Thresholds.from_env()
        profiles = load_profiles(args.profiles_file)
        if args.list_profiles:
            for profile in profiles.values():
                print(f"{profile.name:10} {profile.target:9} {profile.description}")
            return EXIT_PASS
        name = args.profile or os.environ.get("BENCH_PROFILE") or "local"
        if name not in profiles:
            raise UsageError(f"unknown profile {name!r}; known: {', '.join(profiles)}")
        profile = profiles[name]
        stderr(f"profile {profile.name}: {profile.description}")
        stderr(f"thresholds: mean <= {thresholds.mean_ms:g} ms, p95 <= {thresholds.p95_ms:g} ms per query")
        stderr(f"machine: {machine_description()}")
        result = _run_embedded(profile, args.seed) if profile.embedded else _run_remote(profile, args.seed)
    except (UsageError, TargetRefused, ValueError) as error:
        stderr(f"error: {error}")
        return EXIT_USAGE
    except TargetError as error:
        stderr(f"error: cannot benchmark the target: {error}")
        return EXIT_TARGET

    summaries = result["summaries"]
    found = verdicts(summaries, thresholds, profile)
    # The table and the verdict are the answer: on stdout, unless stdout carries the JSON (then stderr).
    say: Say = stderr if args.json else stdout
    print_table(summaries, found, result.get("skipped", {}), say)
    failed = {name: problems for name, problems in found.items() if problems}
    total = sum(s["count"] for s in summaries.values())
    say(f"\n{total:,} requests in {result['seconds']:.1f} s ({total / result['seconds']:,.0f}/s)")
    if args.json:
        report = {
            "profile": asdict(profile),
            "thresholds": asdict(thresholds),
            "machine": machine_description(),
            **result,
            "failed": failed,
            "passed": not failed,
        }
        print(json.dumps(report, indent=2))
    if failed:
        for query, problems in failed.items():
            say(f"FAIL {query}: {'; '.join(problems)}")
        return EXIT_GATE_FAILED
    skipped_note = f" ({len(result['skipped'])} skipped, named above)" if result.get("skipped") else ""
    say(f"PASS: every query within the gate{skipped_note}")
    return EXIT_PASS


def _run_embedded(profile: Profile, seed: int) -> dict[str, Any]:
    stderr(f"target: the embedded stack (chaos.stack.local.LocalStack, {profile.workers} worker(s))")
    stack = start_embedded_stack(workers=profile.workers)
    try:
        spec = DatasetSpec(events=profile.dataset_events, days=profile.dataset_days)
        stderr(f"seeding {spec.events:,} events over {spec.days} days into the stack's PostgreSQL")
        dataset = asyncio.run(seed_events(stack.database_url, spec))
        result = _run_async(_benchmark(profile, stack.api_url, stack.api_key, seed))
        result["seeded"] = dataset
        return result
    finally:
        stderr("stopping the embedded stack")
        stack.stop()


def _run_remote(profile: Profile, seed: int) -> dict[str, Any]:
    url = os.environ.get(profile.url_env) or profile.url
    if not url:
        raise UsageError(f"profile {profile.name!r} needs a URL: set {profile.url_env} (or `url` in the profile)")
    named = [u for u in (profile.url, *profile.allowed_urls) if u]
    base_url = check_target(url, named_by_profile=named)
    api_key = os.environ.get(profile.api_key_env)
    if not api_key:
        raise UsageError(f"profile {profile.name!r} needs the API key in ${profile.api_key_env}")
    stderr(f"target: {base_url} (never seeded: a remote profile only reads)")
    return _run_async(_benchmark(profile, base_url, api_key, seed))


def _run_async(coroutine: Coroutine[Any, Any, dict[str, Any]]) -> dict[str, Any]:
    return uvloop.run(coroutine)
