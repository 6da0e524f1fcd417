"""The runbook's performance-regression gate (성능 회귀 점검, RB-PERF-GATE): time the event API's query suite.

    BENCH_PROFILE=staging BENCH_FAIL_THRESHOLD_MS=250 BENCH_FAIL_P95_THRESHOLD_MS=400 \\
        python scripts/benchmark_queries.py

A profile (scripts/bench_profiles.toml; --list-profiles shows them) names the target, where its credentials
come from, the dataset, the concurrency, the warm-up and how long to run:

- `target = "embedded"` (profiles local, ci, smoke) starts the project's own stack (chaos.stack.LocalStack:
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
import itertools
import json
import os
import random
import sys
import time
import tomllib
from collections.abc import Callable, Coroutine
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.perf_common import (
    DatasetSpec,
    HttpError,
    KeepAliveConnection,
    TargetRefused,
    Thresholds,
    check_target,
    machine_description,
    percentile,
    seed_events,
    start_embedded_stack,
    stderr,
)

PROFILES_FILE = Path(__file__).resolve().parent / "bench_profiles.toml"
PROGRESS_EVERY_S = 2.0
EXIT_PASS, EXIT_GATE_FAILED, EXIT_USAGE, EXIT_TARGET = 0, 1, 2, 3


class UsageError(Exception):
    """Exit 2 with this message."""


class TargetError(Exception):
    """Exit 3 with this message: the target could not be benchmarked."""


# -- profiles ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    target: str
    concurrency: int
    warmup_s: float
    duration_s: float
    max_requests: int
    max_error_rate: float
    request_timeout_s: float
    rate_per_s: float | None = None
    workers: int = 2
    dataset_events: int = 0
    dataset_days: int = 30
    url: str | None = None
    url_env: str = "BENCH_BASE_URL"
    allowed_urls: tuple[str, ...] = ()
    api_key_env: str = "API_KEY"
    span_days: int = 30

    @property
    def embedded(self) -> bool:
        return self.target == "embedded"


_EMBEDDED_ONLY = {"workers", "dataset_events", "dataset_days"}
_URL_ONLY = {"url", "url_env", "allowed_urls", "api_key_env"}


def load_profiles(path: Path = PROFILES_FILE) -> dict[str, Profile]:
    try:
        document = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise UsageError(f"cannot read the profiles in {path}: {error}") from None
    profiles: dict[str, Profile] = {}
    known = {f for f in Profile.__dataclass_fields__ if f != "name"}
    for name, raw in document.get("profiles", {}).items():
        unknown = set(raw) - known
        if unknown:
            raise UsageError(f"profile {name!r} in {path}: unknown keys {sorted(unknown)}")
        target = raw.get("target")
        if target not in {"embedded", "url"}:
            raise UsageError(f"profile {name!r}: target must be 'embedded' or 'url', not {target!r}")
        wrong = (_URL_ONLY if target == "embedded" else _EMBEDDED_ONLY) & set(raw)
        if wrong:
            reason = "a remote profile never seeds" if target == "url" else "the embedded stack has its own"
            raise UsageError(f"profile {name!r}: {sorted(wrong)} not allowed for target {target!r} ({reason})")
        values = {**raw, "allowed_urls": tuple(raw.get("allowed_urls", ()))}
        try:
            profile = Profile(name=name, **values)
        except TypeError as error:
            raise UsageError(f"profile {name!r}: {error}") from None
        if profile.embedded and profile.dataset_events < 1000:
            raise UsageError(f"profile {name!r}: dataset_events must be at least 1000")
        if profile.concurrency < 1 or profile.max_requests < 1 or profile.duration_s <= 0:
            raise UsageError(f"profile {name!r}: concurrency, max_requests and duration_s must be positive")
        profiles[name] = profile
    return profiles


# -- the query suite --------------------------------------------------------------------------------------
@dataclass
class Dataset:
    """What the suite knows about the target's data, found through the API."""

    newest: datetime
    start: datetime  # the suite's span: at most `span_days` before the newest event
    sources: list[str]
    types: list[str]
    ids: list[str]
    cursors: list[tuple[str, str]]  # (source, cursor of a later page of that source's listing)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


Request = tuple[str, dict[str, str]]
QueryMaker = Callable[[Dataset, random.Random], Request]


def _window(data: Dataset, rng: random.Random, length: timedelta) -> tuple[str, str]:
    """A window of `length` at a random (unaligned) place in the span."""
    room = max((data.newest - data.start - length).total_seconds(), 0.0)
    since = data.start + timedelta(seconds=rng.uniform(0, room))
    return _iso(since), _iso(since + length)


def _whole_span(data: Dataset, rng: random.Random) -> tuple[str, str]:
    """The whole span, its start moved by up to a minute so that edges are never aligned the same way."""
    return _iso(data.start + timedelta(seconds=rng.uniform(0, 60))), _iso(data.newest + timedelta(seconds=1))


def _list_latest(data: Dataset, rng: random.Random) -> Request:
    return "/api/v1/events", {"limit": "50"}


def _list_source_hour(data: Dataset, rng: random.Random) -> Request:
    since, until = _window(data, rng, timedelta(hours=1))
    return "/api/v1/events", {"source": rng.choice(data.sources), "since": since, "until": until, "limit": "50"}


def _list_type_day(data: Dataset, rng: random.Random) -> Request:
    since, until = _window(data, rng, timedelta(days=1))
    return "/api/v1/events", {"type": rng.choice(data.types), "since": since, "until": until, "limit": "100"}


def _list_next_page(data: Dataset, rng: random.Random) -> Request:
    source, cursor = rng.choice(data.cursors)
    return "/api/v1/events", {"source": source, "cursor": cursor, "limit": "50"}


def _get_by_id(data: Dataset, rng: random.Random) -> Request:
    return f"/api/v1/events/{rng.choice(data.ids)}", {}


def _stats(group_by: str, bucket: str, length: timedelta | None, filters: str = "") -> QueryMaker:
    def make(data: Dataset, rng: random.Random) -> Request:
        since, until = _whole_span(data, rng) if length is None else _window(data, rng, length)
        params = {"group_by": group_by, "bucket": bucket, "since": since, "until": until}
        if filters == "source":
            params["source"] = rng.choice(data.sources)
        elif filters == "type":
            params["type"] = rng.choice(data.types)
        return "/api/v1/events/stats", params

    return make


SUITE: dict[str, QueryMaker] = {
    "list latest 50": _list_latest,
    "list by source, 1 h": _list_source_hour,
    "list by type, 1 day": _list_type_day,
    "list next page (cursor)": _list_next_page,
    "get by id": _get_by_id,
    "stats type/minute, 1 h": _stats("type", "minute", timedelta(hours=1)),
    "stats source/hour, 1 day": _stats("source", "hour", timedelta(days=1)),
    "stats type/hour, 7 days, 1 source": _stats("type", "hour", timedelta(days=7), "source"),
    "stats type/day, all 30 days": _stats("type", "day", None),
    "stats source/day, all 30 days, 1 type": _stats("source", "day", None, "type"),
}


# -- discovery ----------------------------------------------------------------------------------------------
async def _get_json(client: httpx.AsyncClient, path: str, params: dict[str, str]) -> Any:
    try:
        response = await client.get(path, params=params)
    except httpx.HTTPError as error:
        raise TargetError(f"GET {path}: {type(error).__name__}: {error}") from None
    if response.status_code in (401, 403):
        raise TargetError(f"GET {path}: {response.status_code}; check the API key ({response.text[:200]})")
    if response.status_code != 200:
        raise TargetError(f"GET {path}: {response.status_code} {response.text[:300]}")
    return response.json()


# Events the conformance suite wrote (conformance/suite_events.py): marked by this source prefix and dated in
# 2001, so that they stay out of the span; their sources are not benchmarked as if they were traffic.
CONFORMANCE_SOURCE_PREFIX = "rb-conformance-"
# An event dated further ahead than this is not traffic (a clock gone wrong, a fuzzer's year 8690): the span
# ends at the newest event before now + this.
FUTURE_SLACK = timedelta(days=1)
# Page sizes tried, largest first, until some source's listing has a second page to take a cursor from.
CURSOR_PAGE_SIZES = ("50", "10", "2", "1")
NO_SECOND_PAGE = "skipped: no source has a second page even at limit=1 (seed more events: scripts/seed_events.py)"


async def discover(client: httpx.AsyncClient, span_days: int, rng: random.Random) -> Dataset:
    """Ranges, sources, types, ids and cursors from the target's own data (reads only)."""
    not_future = _iso(datetime.now(UTC) + FUTURE_SLACK)
    latest = await _get_json(client, "/api/v1/events", {"limit": "1", "until": not_future})
    if not latest["items"]:
        raise TargetError("the target has no events; a remote profile never seeds (see scripts/seed_events.py)")
    newest = datetime.fromisoformat(latest["items"][0]["occurred_at"])
    wide_since = _iso(newest - timedelta(days=span_days))
    until = _iso(newest + timedelta(seconds=1))
    keys: dict[str, list[str]] = {}
    first_day = newest
    for group_by in ("source", "type"):
        stats = await _get_json(
            client,
            "/api/v1/events/stats",
            {"group_by": group_by, "bucket": "day", "since": wide_since, "until": until},
        )
        totals: dict[str, int] = {}
        for bucket in stats["buckets"]:
            totals[bucket["key"]] = totals.get(bucket["key"], 0) + bucket["count"]
            first_day = min(first_day, datetime.fromisoformat(bucket["start"]))
        ours = [key for key in totals if group_by == "source" and key.startswith(CONFORMANCE_SOURCE_PREFIX)]
        if len(ours) < len(totals):  # the suite's own events count only where nothing else is stored
            for key in ours:
                del totals[key]
        keys[group_by] = sorted(totals, key=lambda key: -totals[key])
    start = max(first_day, newest - timedelta(days=span_days))
    ids: list[str] = []
    for _ in range(8):
        moment = start + (newest - start) * rng.random()
        page = await _get_json(client, "/api/v1/events", {"until": _iso(moment), "limit": "250"})
        ids += [item["id"] for item in page["items"]]
    if len(ids) < 10:
        raise TargetError(f"the target has too few events to benchmark ({len(ids)} found)")
    cursors = await _discover_cursors(client, keys["source"][:6])
    return Dataset(newest=newest, start=start, sources=keys["source"], types=keys["type"], ids=ids, cursors=cursors)


async def _discover_cursors(client: httpx.AsyncClient, sources: list[str]) -> list[tuple[str, str]]:
    """Cursors of later pages of the busiest sources' listings. A cursor is a position, valid whatever the
    limit of the page it continues, so when no source has more than 50 events a smaller page size finds
    one; none at all (every source has a single event) leaves the list empty, and the query is skipped."""
    for page_size in CURSOR_PAGE_SIZES:
        cursors: list[tuple[str, str]] = []
        for source in sources:
            cursor: str | None = None
            for _ in range(5):
                params = {"source": source, "limit": page_size} | ({"cursor": cursor} if cursor else {})
                page = await _get_json(client, "/api/v1/events", params)
                cursor = page["next_cursor"]
                if not cursor:
                    break
                cursors.append((source, cursor))
        if cursors:
            return cursors
    return []


def skipped_queries(data: Dataset) -> dict[str, str]:
    """Queries the target's data cannot support, with the reason (never sent with a made-up parameter)."""
    return {} if data.cursors else {"list next page (cursor)": NO_SECOND_PAGE}


# -- the run ------------------------------------------------------------------------------------------------
@dataclass
class QueryStats:
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    statuses: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.latencies_ms)
        count = len(ordered)
        return {
            "count": count,
            "errors": self.errors,
            "error_rate": round(self.errors / count, 6) if count else 0.0,
            "mean_ms": round(sum(ordered) / count, 3) if count else 0.0,
            "p50_ms": round(percentile(ordered, 0.50), 3),
            "p95_ms": round(percentile(ordered, 0.95), 3),
            "p99_ms": round(percentile(ordered, 0.99), 3),
            "max_ms": round(ordered[-1], 3) if ordered else 0.0,
            "failures_by_status": dict(self.statuses),
        }


class Pacer:
    """At most `rate` request starts per second across all workers (None: unpaced)."""

    def __init__(self, rate: float | None) -> None:
        self._interval = 1.0 / rate if rate else 0.0
        self._next = time.monotonic()

    async def wait(self) -> None:
        if not self._interval:
            return
        now = time.monotonic()
        slot = max(self._next, now)
        self._next = slot + self._interval
        if slot > now:
            await asyncio.sleep(slot - now)


async def run_suite(
    base_url: str, headers: dict[str, str], data: Dataset, profile: Profile, *, seed: int
) -> tuple[dict[str, QueryStats], float]:
    """Warm up, then run the suite; returns the stats per query and the measured seconds. Each of the
    `concurrency` workers has one keep-alive connection and sends its next request when the last returns."""
    names = [name for name in SUITE if name not in skipped_queries(data)]
    stats = {name: QueryStats() for name in names}
    pacer = Pacer(profile.rate_per_s)
    counter = itertools.count()
    connections = [
        KeepAliveConnection(base_url, headers, profile.request_timeout_s) for _ in range(profile.concurrency)
    ]

    async def worker(worker_id: int, deadline: float, budget: list[int], record: bool) -> None:
        rng = random.Random(seed * 1000 + worker_id)  # noqa: S311 (query parameters, not secrets)
        connection = connections[worker_id]
        while time.monotonic() < deadline and budget[0] > 0:
            budget[0] -= 1
            name = names[next(counter) % len(names)]
            path, params = SUITE[name](data, rng)
            target = f"{path}?{urlencode(params)}" if params else path
            await pacer.wait()
            started = time.perf_counter()
            try:
                status_code, _ = await connection.get(target)
                failed, status = status_code != 200, str(status_code)
            except HttpError as error:
                failed, status = True, str(error).split(":", 1)[0]
            elapsed_ms = (time.perf_counter() - started) * 1000
            if record:
                stats[name].latencies_ms.append(elapsed_ms)
                if failed:
                    stats[name].errors += 1
                    stats[name].statuses[status] = stats[name].statuses.get(status, 0) + 1

    try:
        if profile.warmup_s > 0:
            stderr(f"warm-up: {profile.warmup_s:g} s")
            warm_deadline = time.monotonic() + profile.warmup_s
            await asyncio.gather(*(worker(i, warm_deadline, [10**9], False) for i in range(profile.concurrency)))

        stderr(
            f"measuring: {profile.concurrency} concurrent clients, {profile.duration_s:g} s or "
            f"{profile.max_requests:,} requests, {len(names)} queries"
            + (f", paced to {profile.rate_per_s:g}/s" if profile.rate_per_s else "")
        )
        started = time.monotonic()
        deadline = started + profile.duration_s
        budget = [profile.max_requests]
        workers = [asyncio.create_task(worker(i, deadline, budget, True)) for i in range(profile.concurrency)]
        progress = asyncio.create_task(_progress(stats, started))
        try:
            await asyncio.gather(*workers)
        finally:
            progress.cancel()
        return stats, time.monotonic() - started
    finally:
        await asyncio.gather(*(connection.close() for connection in connections))


async def _progress(stats: dict[str, QueryStats], started: float) -> None:
    while True:
        await asyncio.sleep(PROGRESS_EVERY_S)
        elapsed = time.monotonic() - started
        done = sum(len(s.latencies_ms) for s in stats.values())
        errors = sum(s.errors for s in stats.values())
        slowest, slowest_p95 = "", 0.0
        for name, query_stats in stats.items():
            p95 = percentile(sorted(query_stats.latencies_ms), 0.95)
            if p95 > slowest_p95:
                slowest, slowest_p95 = name, p95
        stderr(
            f"[{elapsed:5.1f}s] {done:,} requests ({done / elapsed:,.0f}/s), {errors} errors; "
            f"slowest p95 so far: {slowest} {slowest_p95:.1f} ms"
        )


def verdicts(summaries: dict[str, dict[str, Any]], thresholds: Thresholds, profile: Profile) -> dict[str, list[str]]:
    """Per query, what breached the gate (empty: passed)."""
    found: dict[str, list[str]] = {}
    for name, summary in summaries.items():
        problems = []
        if summary["count"] == 0:
            problems.append("no requests completed")
        if summary["mean_ms"] > thresholds.mean_ms:
            problems.append(f"mean {summary['mean_ms']:.1f} ms > {thresholds.mean_ms:g} ms")
        if summary["p95_ms"] > thresholds.p95_ms:
            problems.append(f"p95 {summary['p95_ms']:.1f} ms > {thresholds.p95_ms:g} ms")
        if summary["error_rate"] > profile.max_error_rate:
            problems.append(
                f"errors {summary['errors']}/{summary['count']} ({summary['error_rate']:.2%}) > budget "
                f"{profile.max_error_rate:.2%} {summary['failures_by_status']}"
            )
        found[name] = problems
    return found


Say = Callable[[str], None]


def stdout(message: str) -> None:
    print(message, flush=True)


def print_table(
    summaries: dict[str, dict[str, Any]], found: dict[str, list[str]], skipped: dict[str, str], say: Say
) -> None:
    width = max(len(name) for name in [*summaries, *skipped])
    header = (
        f"{'query':{width}} {'count':>7} {'mean ms':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
        f"{'max ms':>8} {'errors':>6}  verdict"
    )
    say("\n" + header)
    say("-" * len(header))
    for name, s in summaries.items():
        verdict = "ok" if not found[name] else "FAIL"
        say(
            f"{name:{width}} {s['count']:7,} {s['mean_ms']:8.2f} {s['p50_ms']:8.2f} {s['p95_ms']:8.2f} "
            f"{s['p99_ms']:8.2f} {s['max_ms']:8.2f} {s['errors']:6}  {verdict}"
        )
    for name, reason in skipped.items():
        say(f"{name:{width}} {'—':>7} {'':8} {'':8} {'':8} {'':8} {'':8} {'':6}  {reason}")


# -- main ---------------------------------------------------------------------------------------------------
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
            f"  {len(data.sources)} sources, {len(data.types)} types, span {_iso(data.start)} .. "
            f"{_iso(data.newest)}; {len(data.ids)} sample ids, {len(data.cursors)} cursors"
        )
    for name, reason in skipped_queries(data).items():
        stderr(f"  {name}: {reason}")
    stats, seconds = await run_suite(base_url, headers, data, profile, seed=seed)
    return {
        "summaries": {name: s.summary() for name, s in stats.items()},
        "skipped": skipped_queries(data),
        "seconds": round(seconds, 3),
        "dataset": {
            "newest": _iso(data.newest),
            "start": _iso(data.start),
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
    stderr(f"target: the embedded stack (chaos.stack.LocalStack, {profile.workers} worker(s))")
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


if __name__ == "__main__":
    sys.exit(main())
