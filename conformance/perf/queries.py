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

The raw-SQL ceiling (embedded profiles, on unless --no-ceiling; conformance/perf/ceiling.py): the measured time
is split into rounds that alternate (ABBA) with rounds of the same query mix run as the service's own repository
functions on an asyncpg pool, at the same concurrency on the same data; the table is followed by the service's
throughput share of that ceiling, per query and overall, with a 95 % interval. On by default because the share
says where the time goes (the database or the pipeline) and the mean alone cannot (32 closed-loop clients: the
mean is 32 / throughput); it doubles the run's wall time. A url profile has no database to read: no ceiling.

Paired regression comparison (RB-PERF-REGRESSION): --baseline REF runs the baseline beside the candidate (this
checkout) on the same dataset in alternating rounds and reports per query the candidate/baseline ratio of mean,
p95 and throughput with a 95 % paired-bootstrap interval, and the verdict against BENCH_MAX_REGRESSION (default
0.10): REGRESSED (exit 1), PASSED (0), or INCONCLUSIVE (exit 4, with the pairs of rounds that would decide).
REF: a git ref (HEAD~1, a tag; `git archive`d to a temporary directory), a directory (`.`: this build against
itself), image:TAG (Docker), or the URL of a running baseline (url profiles only). The profile is the same as the
plain gate's ($BENCH_PROFILE, else local); CI uses BENCH_PROFILE=ci. --rounds pairs of --round-s second rounds
(default 6 pairs of a third of the profile's duration_s, 1..5 s); the absolute thresholds still apply to the
candidate. With --report-dir it writes DIR/junit.xml (suite `runbook-perf-gate` with property gate =
perf-regression, requirement RB-PERF-REGRESSION; an inconclusive query is an <error> whose message starts
"inconclusive:", and every case has a `verdict` property), DIR/paired.json and DIR/paired.txt.
docs/PERFORMANCE.md explains how to read the result.

Every run appends one record (command, profile, commits, machine, figures, verdicts) to the results history,
reports/perf/history.jsonl (--history FILE or $BENCH_HISTORY elsewhere; --no-history: none), and prints the
previous record's figures beside this run's: another run, at another time, not a paired comparison.

Exit status, in the shared table below: 0 passed: every query's mean <= BENCH_FAIL_THRESHOLD_MS (default 250),
p95 <= BENCH_FAIL_P95_THRESHOLD_MS (default 400), and errors within the profile's `max_error_rate` (and, with
--baseline, no query regressed or undecided); 1 the gate failed: the breaching (or regressed) queries are named;
2 bad usage or configuration (unknown profile, bad threshold, refused target, missing credentials, bad REF);
3 could not run: the target (or the baseline) could not be benchmarked (unreachable, unauthorised, no data,
another schema); 4 inconclusive (--baseline only): the intervals are too wide to decide.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shlex
import sys
from collections.abc import Coroutine, Mapping
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import uvloop

from chaos.invocation import program_name
from chaos.lifecycle import ServerError
from conformance.junit import FIGURE_PREFIX, Case, CaseOutcome, Suite, write
from conformance.perf import cpu_accounting, history
from conformance.perf.ceiling import CeilingSource, Share, alternate, render_shares, shares
from conformance.perf.console import stderr
from conformance.perf.discovery import discover, skipped_queries
from conformance.perf.embedded import start_embedded_stack
from conformance.perf.errors import TargetError, UsageError
from conformance.perf.gate import Say, print_table, stdout, verdicts
from conformance.perf.machine import machine_description
from conformance.perf.paired import ALL_QUERIES, Endpoint, RoundPlan, http_rounds, pooled_stats
from conformance.perf.paired_stats import MIN_PAIRS
from conformance.perf.profiles import PROFILES_FILE, Profile, load_profiles
from conformance.perf.regression import DEFAULT_PAIRS, PairedResult, plan_for, render, run_paired
from conformance.perf.regression_report import GATE as REGRESSION_GATE
from conformance.perf.regression_report import SUITE_NAME as REGRESSION_SUITE
from conformance.perf.regression_report import error_cases, regression_cases, regression_record, regression_suite
from conformance.perf.runner import run_suite
from conformance.perf.seeding import DatasetSpec, seed_events
from conformance.perf.suite import SUITE, utc_iso
from conformance.perf.targets import TargetRefused, check_target
from conformance.perf.thresholds import Thresholds
from conformance.provenance import current
from conformance.tls import shared_tls_context
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
    parser.add_argument(
        "--profile", help="profile name (default: $BENCH_PROFILE, else 'local'; the same with --baseline)"
    )
    parser.add_argument("--profiles-file", type=Path, default=PROFILES_FILE, help="profiles TOML file")
    parser.add_argument("--list-profiles", action="store_true", help="show the profiles and exit")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON on stdout")
    parser.add_argument("--seed", type=int, default=7, help="random seed for query parameters (default 7)")
    parser.add_argument(
        "--report-dir",
        type=Path,
        metavar="DIR",
        help="also write DIR/junit.xml and DIR/figures.json (with --baseline: DIR/paired.json, DIR/paired.txt); "
        "default: none; `make perf-gate`: reports/perf",
    )
    parser.add_argument("--no-ceiling", action="store_true", help="do not measure the raw-SQL ceiling beside")
    parser.add_argument("--history", type=Path, metavar="FILE", help="results history (default: $BENCH_HISTORY, "
                        "else reports/perf/history.jsonl)")  # fmt: skip
    parser.add_argument("--no-history", action="store_true", help="neither read nor append the results history")
    paired = parser.add_argument_group("paired regression comparison (RB-PERF-REGRESSION)")
    paired.add_argument("--baseline", metavar="REF", help="git ref, directory, image:TAG or URL of the baseline")
    paired.add_argument(
        "--rounds",
        type=int,
        help=f"pairs of rounds (--baseline: default {DEFAULT_PAIRS}; the ceiling alone: about duration_s / round)",
    )
    paired.add_argument("--round-s", type=float, help="seconds per round (default: from the profile's duration_s)")
    paired.add_argument("--max-seconds", type=float, help="stop after the pair that crosses this (default 3x plan)")
    paired.add_argument("--candidate-app", metavar="MODULE:ATTR", help="serve this ASGI app as the candidate (tests)")
    parser.epilog = exit_code_epilog()
    return parser


async def _benchmark(
    profile: Profile,
    base_url: str,
    api_key: str,
    seed: int,
    ceiling: CeilingSource | None = None,
    plan: RoundPlan | None = None,
) -> dict[str, Any]:
    rng = random.Random(seed)  # noqa: S311 (query parameters, not secrets)
    headers = {"X-API-Key": api_key, "User-Agent": "benchmark_queries.py"}
    async with httpx.AsyncClient(
        verify=shared_tls_context(), base_url=base_url, headers=headers, timeout=profile.request_timeout_s
    ) as client:
        stderr(f"discovering the dataset through {base_url}/api/v1/events ...")
        data = await discover(client, profile.span_days, rng)
        stderr(
            f"  {len(data.sources)} sources, {len(data.types)} types, span {utc_iso(data.start)} .. "
            f"{utc_iso(data.newest)}; {len(data.ids)} sample ids, {len(data.cursors)} cursors"
        )
    for name, reason in skipped_queries(data).items():
        stderr(f"  {name}: {reason}")
    found_shares: dict[str, Any] = {}
    cpu: dict[str, dict[str, float]] = {}
    if ceiling is None or plan is None:
        stats, seconds = await run_suite(base_url, headers, data, profile, seed=seed)
    else:
        stderr(
            f"raw-SQL ceiling: {plan.pairs} pairs of {plan.round_s:g} s rounds, the service's HTTP API and its "
            "repository functions on an asyncpg pool in turn (ABBA)"
        )
        service = http_rounds(Endpoint(base_url, headers), data, profile)
        rounds, stopped = await alternate(
            {"service": service}, data, profile, plan, seed=seed, ceiling=ceiling, progress=stderr
        )
        stats = pooled_stats(rounds, "service")
        seconds = sum(r.seconds for r in rounds if r.side == "service")
        found_shares = {name: share.as_dict() for name, share in shares(rounds, "service").items()}
        cpu = cpu_accounting.by_side(rounds)
        if stopped:
            stderr(f"note: {stopped}")
    return {
        "summaries": {name: s.summary() for name, s in stats.items()},
        **({"ceiling": found_shares, "ceiling_plan": asdict(plan)} if found_shares and plan else {}),
        **({"cpu_per_request_us": cpu} if cpu else {}),
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
    ceiling = report.get("ceiling", {})
    for name, summary in report["summaries"].items():
        problems = report["failed"].get(name, [])
        figures = {f"{FIGURE_PREFIX}{figure}": str(summary[figure]) for figure in FIGURES if figure in summary}
        share = ceiling.get(name, {})
        for key in ("share", "low", "high"):
            if share.get(key) is not None:
                figures[f"{FIGURE_PREFIX}ceiling_{key}"] = str(share[key])
        cases.append(
            Case(
                CLASSNAME,
                name,
                seconds,  # every query ran for the whole measured window, interleaved with the others
                CaseOutcome.FAILED if problems else CaseOutcome.PASSED,
                (REQUIREMENT,),
                "; ".join(problems),
                figures,
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
    command = shlex.join(["benchmark_queries.py", *(sys.argv[1:] if argv is None else argv)])
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
        history_file = history.history_path(args.history, disabled=args.no_history)
        if args.baseline is not None:
            return _regression(args, profile, thresholds, history_file, command)
        if args.candidate_app:
            raise UsageError("--candidate-app serves the candidate of a paired run: it needs --baseline")
        stderr(f"profile {profile.name}: {profile.description}")
        stderr(f"thresholds: mean <= {thresholds.mean_ms:g} ms, p95 <= {thresholds.p95_ms:g} ms per query")
        stderr(f"machine: {machine_description()}")
        target = "the embedded stack" if profile.embedded else _remote_url(profile)
        if profile.embedded:
            plan = None if args.no_ceiling else _ceiling_plan(profile, args.rounds, args.round_s, args.max_seconds)
            result = _run_embedded(profile, args.seed, plan)
        else:
            if not args.no_ceiling:
                stderr(f"raw-SQL ceiling: not measured (profile {profile.name!r} has no database of its own to read)")
            result = _run_remote(profile, args.seed)
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
    if result.get("ceiling"):
        say("")
        for line in render_shares(_shares_from_dicts(result["ceiling"]), "the service"):
            say(line)
    if cpu_lines := cpu_accounting.render_cpu(result.get("cpu_per_request_us", {})):
        say("")
        for line in cpu_lines:
            say(line)
    report = {
        "profile": asdict(profile),
        "thresholds": asdict(thresholds),
        "machine": machine_description(),
        "provenance": current().as_dict(),
        **result,
        "failed": failed,
        "passed": not failed,
    }
    if history_file is not None:
        record = _gate_record(report, command, started)
        say("")
        for line in history.render_beside_previous(history.previous_record(history_file, "gate", profile.name), record):
            say(line)
        stderr(f"history: {history.append_record(history_file, record)}")
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


def _ceiling_plan(profile: Profile, pairs: int | None, round_s: float | None, max_seconds: float | None) -> RoundPlan:
    """The plain gate's rounds when the ceiling is measured: the profile's duration_s of HTTP rounds, split into
    rounds of a sixth of it (1..5 s), as many pairs as fill it (at least MIN_PAIRS)."""
    seconds = round_s if round_s is not None else min(5.0, max(1.0, profile.duration_s / 6))
    count = pairs if pairs is not None else max(MIN_PAIRS, round(profile.duration_s / seconds))
    return plan_for(profile, count, seconds, max_seconds)


def _shares_from_dicts(found: Mapping[str, Mapping[str, Any]]) -> dict[str, Share]:
    return {name: Share.from_dict(share) for name, share in found.items()}


def _gate_record(report: Mapping[str, Any], command: str, started: datetime) -> dict[str, Any]:
    """The plain gate's line in the results history."""
    seconds = float(report["seconds"]) or 1.0
    overall = report.get("ceiling", {}).get(ALL_QUERIES, {})
    return {
        "kind": "gate",
        "at": started.replace(microsecond=0).isoformat(),
        "command": command,
        "profile": report["profile"]["name"],
        "candidate": report["provenance"],
        "machine": report["machine"],
        "queries": {
            name: {
                "mean_ms": s["mean_ms"],
                "p95_ms": s["p95_ms"],
                "per_s": round(s["count"] / seconds, 2),
                "errors": s["errors"],
                "ceiling_share": report.get("ceiling", {}).get(name, {}).get("share"),
                "verdict": "failed" if name in report["failed"] else "passed",
            }
            for name, s in report["summaries"].items()
        },
        "ceiling_share": overall.get("share"),
        "skipped": report.get("skipped", {}),
        "verdict": "passed" if report["passed"] else "failed",
    }


def _regression(
    args: argparse.Namespace, profile: Profile, thresholds: Thresholds, history_file: Path | None, command: str
) -> int:
    """--baseline REF: the paired comparison (conformance/perf/regression.py), its table, JUnit, JSON, history."""
    target = "the embedded stack" if profile.embedded else (os.environ.get(profile.url_env) or profile.url or "")
    try:
        result = run_paired(
            profile,
            args.baseline,
            pairs=args.rounds if args.rounds is not None else DEFAULT_PAIRS,
            round_s=args.round_s,
            max_seconds=args.max_seconds,
            seed=args.seed,
            candidate_app=args.candidate_app,
            thresholds=thresholds,
            with_ceiling=not args.no_ceiling,
        )
    except (UsageError, TargetRefused, ValueError) as error:
        stderr(f"error: {error}")
        return Exit.USAGE
    except (TargetError, ServerError) as error:
        stderr(f"error: could not run the paired comparison: {error}")
        if args.report_dir is not None:
            suite = Suite(REGRESSION_SUITE, current().at, _could_not_run_properties(profile, target, args))
            junit = write(args.report_dir / "junit.xml", suite, error_cases(list(SUITE), f"could not run: {error}"))
            stderr(f"junit: {junit}")
        return Exit.COULD_NOT_RUN
    say: Say = stderr if args.json else stdout
    lines = render(result)
    for line in lines:
        say(line)
    report = {**result.as_dict(), "command": command}
    if history_file is not None:
        record = regression_record(result, command)
        say("")
        previous = history.previous_record(history_file, "regression", profile.name)
        for line in history.render_beside_previous(previous, record):
            say(line)
        stderr(f"history: {history.append_record(history_file, record)}")
    if args.json:
        print(json.dumps(report, indent=2))
    if args.report_dir is not None:
        _write_regression_reports(args.report_dir, result, report, lines, target)
    return int(result.exit_code)


def _could_not_run_properties(profile: Profile, target: str, args: argparse.Namespace) -> dict[str, str]:
    provenance = current()
    return {
        "commit": provenance.commit,
        "dirty": str(provenance.dirty).lower(),
        "version": provenance.version,
        "target": target,
        "gate": REGRESSION_GATE,
        "profile": profile.name,
        "baseline_ref": str(args.baseline),
    }


def _write_regression_reports(
    directory: Path, result: PairedResult, report: Mapping[str, Any], lines: list[str], target: str
) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "paired.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (directory / "paired.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    junit = write(directory / "junit.xml", regression_suite(result, target), regression_cases(result))
    stderr(f"reports: {junit}, {directory / 'paired.json'} and {directory / 'paired.txt'}")


def _run_embedded(profile: Profile, seed: int, plan: RoundPlan | None = None) -> dict[str, Any]:
    stderr(f"target: the embedded stack (chaos.stack.local.LocalStack, {profile.workers} worker(s))")
    stack = start_embedded_stack(workers=profile.workers)
    try:
        spec = DatasetSpec(events=profile.dataset_events, days=profile.dataset_days)
        stderr(f"seeding {spec.events:,} events over {spec.days} days into the stack's PostgreSQL")
        dataset = asyncio.run(seed_events(stack.database_url, spec))
        ceiling = CeilingSource(stack.service_env, profile.workers) if plan is not None else None
        result = _run_async(_benchmark(profile, stack.api_url, stack.api_key, seed, ceiling, plan))
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
