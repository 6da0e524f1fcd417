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
With --json, stdout carries only the figures as JSON (with `skipped`); the table and verdict then go to stderr.
With --report-dir DIR it also writes DIR/junit.xml (suite `runbook-perf-gate`, one testcase per query with the
requirement RB-PERF-GATE, its figures as properties, the breaches as its failure; a query the dataset cannot
exercise is skipped; a target that could not be benchmarked makes every query an error) and DIR/figures.json
(the --json document, with the run's provenance: commit, version, time).

Exit status, in the shared table below: 0 passed: every query's mean <= BENCH_FAIL_THRESHOLD_MS (default 250),
p95 <= BENCH_FAIL_P95_THRESHOLD_MS (default 400), and errors within the profile's `max_error_rate`; 1 the gate
failed: the breaching queries are named (what breached, by how much); 2 bad usage or configuration (unknown
profile, bad threshold, refused target, missing credentials); 3 could not run: the target could not be
benchmarked (unreachable, unauthorised, no data).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
from collections.abc import Coroutine, Mapping
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import uvloop

from chaos.invocation import program_name
from conformance.junit import FIGURE_PREFIX, Case, CaseOutcome, Suite, write
from conformance.perf.console import stderr
from conformance.perf.discovery import discover, skipped_queries
from conformance.perf.embedded import start_embedded_stack
from conformance.perf.errors import TargetError, UsageError
from conformance.perf.gate import Say, print_table, stdout, verdicts
from conformance.perf.machine import machine_description
from conformance.perf.profiles import PROFILES_FILE, Profile, load_profiles
from conformance.perf.runner import run_suite
from conformance.perf.seeding import DatasetSpec, seed_events
from conformance.perf.suite import SUITE, utc_iso
from conformance.perf.targets import TargetRefused, check_target
from conformance.perf.thresholds import Thresholds
from conformance.provenance import current
from conformance.verdicts import Exit, exit_code_epilog

REQUIREMENT = "RB-PERF-GATE"
SUITE_NAME = "runbook-perf-gate"
CLASSNAME = "perf-gate"
FIGURES = ("count", "errors", "error_rate", "mean_ms", "p50_ms", "p95_ms", "p99_ms", "max_ms")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=program_name("conformance.perf.queries"),
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--profile", help="profile name (default: $BENCH_PROFILE, else 'local')")
    parser.add_argument("--profiles-file", type=Path, default=PROFILES_FILE, help="profiles TOML file")
    parser.add_argument("--list-profiles", action="store_true", help="show the profiles and exit")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON on stdout")
    parser.add_argument("--seed", type=int, default=7, help="random seed for query parameters (default 7)")
    parser.add_argument(
        "--report-dir",
        type=Path,
        metavar="DIR",
        help="also write DIR/junit.xml and DIR/figures.json (default: none; `make perf-gate`: reports/perf)",
    )
    parser.epilog = exit_code_epilog()
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


def _suite(started: datetime, target: str, profile: Profile, thresholds: Thresholds) -> Suite:
    provenance = current()
    return Suite(
        SUITE_NAME,
        started.replace(microsecond=0).isoformat(),
        {
            "commit": provenance.commit,
            "dirty": str(provenance.dirty).lower(),
            "version": provenance.version,
            "target": target,
            "profile": profile.name,
            "threshold_mean_ms": f"{thresholds.mean_ms:g}",
            "threshold_p95_ms": f"{thresholds.p95_ms:g}",
        },
    )


def _query_cases(report: Mapping[str, Any]) -> list[Case]:
    """One testcase per query: its figures, and the breaches as its failure; skipped queries as skipped."""
    cases = []
    seconds = float(report["seconds"])
    for name, summary in report["summaries"].items():
        problems = report["failed"].get(name, [])
        cases.append(
            Case(
                CLASSNAME,
                name,
                seconds,  # every query ran for the whole measured window, interleaved with the others
                CaseOutcome.FAILED if problems else CaseOutcome.PASSED,
                (REQUIREMENT,),
                "; ".join(problems),
                {f"{FIGURE_PREFIX}{figure}": str(summary[figure]) for figure in FIGURES if figure in summary},
            )
        )
    for name, reason in report.get("skipped", {}).items():
        cases.append(Case(CLASSNAME, name, 0.0, CaseOutcome.NOT_APPLICABLE, (REQUIREMENT,), reason))
    return cases


def write_reports(directory: Path, suite: Suite, report: Mapping[str, Any] | None, *, error: str = "") -> Path:
    """DIR/junit.xml, and with a report DIR/figures.json (for the HTML game-day report); without one (the
    target could not be benchmarked) every query of the suite is an error with `error` as its message."""
    if report is None:
        cases = [Case(CLASSNAME, name, 0.0, CaseOutcome.ERROR, (REQUIREMENT,), error) for name in SUITE]
        (directory / "figures.json").unlink(missing_ok=True)  # an earlier run's figures are not this run's
    else:
        cases = _query_cases(report)
        figures = {
            **report,
            "provenance": current().as_dict(),
            "timestamp": suite.timestamp,
            "target": suite.properties["target"],
        }
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "figures.json").write_text(json.dumps(figures, indent=2, ensure_ascii=False), encoding="utf-8")
    return write(directory / "junit.xml", suite, cases)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    started = datetime.now(UTC)
    try:
        thresholds = Thresholds.from_env()
        profiles = load_profiles(args.profiles_file)
        if args.list_profiles:
            for profile in profiles.values():
                print(f"{profile.name:10} {profile.target:9} {profile.description}")
            return Exit.OK
        name = args.profile or os.environ.get("BENCH_PROFILE") or "local"
        if name not in profiles:
            raise UsageError(f"unknown profile {name!r}; known: {', '.join(profiles)}")
        profile = profiles[name]
        stderr(f"profile {profile.name}: {profile.description}")
        stderr(f"thresholds: mean <= {thresholds.mean_ms:g} ms, p95 <= {thresholds.p95_ms:g} ms per query")
        stderr(f"machine: {machine_description()}")
        target = "the embedded stack" if profile.embedded else _remote_url(profile)
        result = _run_embedded(profile, args.seed) if profile.embedded else _run_remote(profile, args.seed)
    except (UsageError, TargetRefused, ValueError) as error:
        stderr(f"error: {error}")
        return Exit.USAGE
    except TargetError as error:
        stderr(f"error: cannot benchmark the target: {error}")
        if args.report_dir is not None:
            suite = _suite(started, target, profile, thresholds)
            junit = write_reports(args.report_dir, suite, None, error=f"could not run: {error}")
            stderr(f"junit: {junit}")
        return Exit.COULD_NOT_RUN

    summaries = result["summaries"]
    found = verdicts(summaries, thresholds, profile)
    # The table and the verdict are the answer: on stdout, unless stdout carries the JSON (then stderr).
    say: Say = stderr if args.json else stdout
    print_table(summaries, found, result.get("skipped", {}), say)
    failed = {name: problems for name, problems in found.items() if problems}
    total = sum(s["count"] for s in summaries.values())
    say(f"\n{total:,} requests in {result['seconds']:.1f} s ({total / result['seconds']:,.0f}/s)")
    report = {
        "profile": asdict(profile),
        "thresholds": asdict(thresholds),
        "machine": machine_description(),
        **result,
        "failed": failed,
        "passed": not failed,
    }
    if args.json:
        print(json.dumps(report, indent=2))
    if args.report_dir is not None:
        junit = write_reports(args.report_dir, _suite(started, target, profile, thresholds), report)
        stderr(f"reports: {junit} and {args.report_dir / 'figures.json'}")
    if failed:
        for query, problems in failed.items():
            say(f"FAIL {query}: {'; '.join(problems)}")
        return Exit.FAILED
    skipped_note = f" ({len(result['skipped'])} skipped, named above)" if result.get("skipped") else ""
    say(f"PASS: every query within the gate{skipped_note}")
    return Exit.OK


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


def _remote_url(profile: Profile) -> str:
    url = os.environ.get(profile.url_env) or profile.url
    if not url:
        raise UsageError(f"profile {profile.name!r} needs a URL: set {profile.url_env} (or `url` in the profile)")
    return url.rstrip("/")


def _run_remote(profile: Profile, seed: int) -> dict[str, Any]:
    url = _remote_url(profile)
    named = [u for u in (profile.url, *profile.allowed_urls) if u]
    base_url = check_target(url, named_by_profile=named)
    api_key = os.environ.get(profile.api_key_env)
    if not api_key:
        raise UsageError(f"profile {profile.name!r} needs the API key in ${profile.api_key_env}")
    stderr(f"target: {base_url} (never seeded: a remote profile only reads)")
    return _run_async(_benchmark(profile, base_url, api_key, seed))


def _run_async(coroutine: Coroutine[Any, Any, dict[str, Any]]) -> dict[str, Any]:
    return uvloop.run(coroutine)
