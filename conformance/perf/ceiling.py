"""The raw-SQL ceiling of the query suite (issue 17, "the limit beside both"): the same query mix as the HTTP
suite, run as the service's own repository functions (service/events/repository.py) on an asyncpg pool made
by the service's own `service.db.create_pool`, at the same concurrency on the same data, with no HTTP, no
authentication, no rate limit, no JSON and no logging in between. What the service reaches of it is the share
of this design's limit on this machine that the request pipeline keeps.

Each suite maker (conformance/perf/suite.py SUITE) gives an HTTP path and query parameters; they are turned
into the repository call the route makes (service/events/routes.py): the parameters are parsed by the route's
own pydantic model (ListQuery, StatsQuery), a cursor is checked by the service's CursorCodec under the stack's
JWT_SECRET, and the page budget and the stats bucket cap are the ones the route derives from the settings.
Parsing happens before the clock starts: the clock covers taking a connection from the pool and the one
statement, as `Database.run` does (its gate and bound are part of the pipeline, not of the ceiling).

The pool: the service runs `workers` processes, each with its own pool of DB_POOL_SIZE connections; the raw side
runs in this one process, so its single pool has DB_POOL_SIZE x workers connections (the service's total; at
32 clients and a pool of 20 on 2 workers neither side ever waits for a connection). Everything else is the
service's pool settings (statement timeout, server settings, the jsonb codec).

The share is the service's throughput over the raw calls' throughput, per query and overall (requests of the
round, per second), from rounds that alternate with the HTTP rounds in one run (conformance/perf/paired.py),
with the same paired bootstrap interval as the regression comparison (conformance/perf/paired_stats.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any
from uuid import UUID

from conformance.perf.console import Progress, stderr
from conformance.perf.discovery import skipped_queries
from conformance.perf.paired import ALL_QUERIES, Round, RoundPlan, RoundRunner, Side, pairs_by_query, run_alternating
from conformance.perf.paired_stats import bootstrap_ratio
from conformance.perf.profiles import Profile
from conformance.perf.runner import QueryStats
from conformance.perf.suite import SUITE, Dataset

RAW: Side = "raw"
Operation = Callable[[Any], Awaitable[Any]]  # an asyncpg connection -> the repository's answer


Interval = tuple[float, float, float] | None  # (estimate, low, high)


@dataclass(frozen=True)
class Share:
    """One query's (or all queries') service throughput as a share of the raw calls' throughput, and its speed
    (raw mean latency over the service's mean latency) as a share of the raw call's.

    The suite sends its queries in turn (conformance/perf/runner.py), so in a closed loop every query runs at
    the same rate, a tenth of the total: the throughput share is one figure for the whole mix, repeated per
    query. The latency share differs per query, and says which query loses most between HTTP and SQL."""

    pairs: int
    service_per_s: float
    raw_per_s: float
    share: float | None
    low: float | None
    high: float | None
    service_mean_ms: float = 0.0
    raw_mean_ms: float = 0.0
    latency: Interval = None

    def as_dict(self) -> dict[str, object]:
        latency = self.latency or (None, None, None)
        return {
            "pairs": self.pairs,
            "service_per_s": round(self.service_per_s, 1),
            "raw_per_s": round(self.raw_per_s, 1),
            "share": _rounded(self.share),
            "low": _rounded(self.low),
            "high": _rounded(self.high),
            "service_mean_ms": round(self.service_mean_ms, 3),
            "raw_mean_ms": round(self.raw_mean_ms, 3),
            "latency_share": _rounded(latency[0]),
            "latency_low": _rounded(latency[1]),
            "latency_high": _rounded(latency[2]),
        }

    @classmethod
    def from_dict(cls, found: Mapping[str, Any]) -> Share:
        latency = (found.get("latency_share"), found.get("latency_low"), found.get("latency_high"))
        return cls(
            int(found["pairs"]),
            float(found["service_per_s"]),
            float(found["raw_per_s"]),
            found.get("share"),
            found.get("low"),
            found.get("high"),
            float(found.get("service_mean_ms") or 0.0),
            float(found.get("raw_mean_ms") or 0.0),
            latency if all(v is not None for v in latency) else None,  # type: ignore[arg-type]
        )


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


class RawCalls:
    """The suite's requests as repository calls, configured as the service configures its routes."""

    def __init__(self, service_env: Mapping[str, str]) -> None:
        from service.bounds import STATS_BUCKET_MAX_BYTES, page_rows_budget
        from service.events.cursor import CursorCodec

        self.settings = service_settings(service_env)
        self.cursors = CursorCodec(self.settings.jwt_secret.get_secret_value())
        self._rows_budget = page_rows_budget(
            self.settings.list_page_max_bytes, self.settings.event_attributes_max_bytes
        )
        self._max_buckets = self.settings.list_page_max_bytes // STATS_BUCKET_MAX_BYTES

    def operation(self, path: str, params: Mapping[str, str]) -> Operation:
        """The repository call the route for `path` makes with these query parameters."""
        from service.events import repository
        from service.events.schemas import ListQuery, StatsQuery

        if path == "/api/v1/events":
            listing = ListQuery.model_validate(dict(params))
            after = self.cursors.decode(listing.cursor) if listing.cursor is not None else None
            return partial(repository.list_events, query=listing, after=after, rows_budget=self._rows_budget)
        if path == "/api/v1/events/stats":
            stats = StatsQuery.model_validate(dict(params))
            return partial(repository.stats_json, query=stats, max_buckets=self._max_buckets)
        prefix = "/api/v1/events/"
        if path.startswith(prefix) and not params:
            return partial(repository.get_event, event_id=UUID(path.removeprefix(prefix)))
        raise ValueError(f"no repository call for {path} {dict(params)}: conformance/perf/ceiling.py needs one")


def service_settings(service_env: Mapping[str, str]) -> Any:
    """service.settings.Settings from the service's environment (the stack's), as the service reads it."""
    from service.settings import Settings

    fields = set(Settings.model_fields)
    return Settings.model_validate({key.lower(): value for key, value in service_env.items() if key.lower() in fields})


@contextlib.asynccontextmanager
async def raw_rounds(
    service_env: Mapping[str, str], workers: int, data: Dataset, profile: Profile
) -> AsyncIterator[RoundRunner]:
    """Rounds of the suite as raw repository calls (a RoundRunner), on one pool for the whole run."""
    from service.db import create_pool

    calls = RawCalls(service_env)
    total = calls.settings.db_pool_size * max(workers, 1)
    pool = await create_pool(calls.settings.model_copy(update={"db_pool_size": total}))
    try:

        async def run(seed: int, seconds: float) -> tuple[dict[str, QueryStats], float]:
            return await _run_round(pool, calls, data, profile, seed=seed, seconds=seconds)

        yield run
    finally:
        await pool.close()


async def _run_round(
    pool: Any, calls: RawCalls, data: Dataset, profile: Profile, *, seed: int, seconds: float
) -> tuple[dict[str, QueryStats], float]:
    """Like conformance/perf/runner.py run_suite: `concurrency` workers, the queries in turn, each worker's
    parameters from its own seeded generator, the next call when the last returns."""
    names = [name for name in SUITE if name not in skipped_queries(data)]
    stats = {name: QueryStats() for name in names}
    counter = itertools.count()
    budget = [profile.max_requests]

    async def worker(worker_id: int, deadline: float) -> None:
        rng = random.Random(seed * 1000 + worker_id)  # noqa: S311 (query parameters, not secrets)
        while time.monotonic() < deadline and budget[0] > 0:
            budget[0] -= 1
            name = names[next(counter) % len(names)]
            path, params = SUITE[name](data, rng)
            operation = calls.operation(path, params)
            began = time.perf_counter()
            failed = ""
            try:
                async with pool.acquire() as connection:
                    await operation(connection)
            except Exception as error:  # any failure is an error of this call, as any non-200 is over HTTP
                failed = type(error).__name__
            stats[name].latencies_ms.append((time.perf_counter() - began) * 1000)
            if failed:
                stats[name].errors += 1
                stats[name].statuses[failed] = stats[name].statuses.get(failed, 0) + 1

    started = time.monotonic()
    deadline = started + seconds
    await asyncio.gather(*(worker(i, deadline) for i in range(profile.concurrency)))
    return stats, time.monotonic() - started


def shares(rounds: list[Round], side: Side) -> dict[str, Share]:
    """Per query and ALL_QUERIES: `side`'s throughput over the raw rounds' beside it, with a 95 % interval
    (the paired bootstrap of paired_stats over the pairs of rounds; None with fewer than 2 pairs)."""
    found: dict[str, Share] = {}
    for name, pairs in pairs_by_query(rounds, side, RAW).items():
        service = [s.per_s for s, _ in pairs]
        raw = [r.per_s for _, r in pairs]
        service_ms = [s.mean_ms for s, _ in pairs]
        raw_ms = [r.mean_ms for _, r in pairs]
        enough = len(pairs) >= 2
        interval = bootstrap_ratio(service, raw) if enough else None
        share, low, high = interval if interval is not None else (None, None, None)
        found[name] = Share(
            len(pairs),
            sum(service) / len(pairs),
            sum(raw) / len(pairs),
            share,
            low,
            high,
            sum(service_ms) / len(pairs),
            sum(raw_ms) / len(pairs),
            bootstrap_ratio(raw_ms, service_ms) if enough else None,
        )
    return found


def _shown(interval: Interval) -> str:
    if interval is None:
        return "n/a"
    estimate, low, high = interval
    return f"{estimate:6.1%} [{low:6.1%}, {high:6.1%}]"


def render_shares(found: Mapping[str, Share], label: str) -> list[str]:
    """The table: per query the HTTP and raw req/s and mean, the throughput share and the latency share (raw
    mean / HTTP mean), each with its 95 % interval; all queries last."""
    if not found:
        return []
    width = max(len(name) for name in [*found, "query"])
    header = (
        f"{'query':{width}} {'HTTP req/s':>10} {'raw req/s':>10} {'req/s share [95% CI]':>24} "
        f"{'HTTP ms':>8} {'raw ms':>8} {'latency share [95% CI]':>24}"
    )
    lines = [
        f"{label}: share of the raw-SQL ceiling (the same mix as the service's repository functions on an asyncpg "
        "pool, same concurrency and data, ABBA rounds)",
        header,
        "-" * len(header),
    ]
    for name in [*[n for n in found if n != ALL_QUERIES], *[n for n in found if n == ALL_QUERIES]]:
        item = found[name]
        throughput = None if item.share is None or item.low is None or item.high is None else (
            item.share, item.low, item.high
        )  # fmt: skip
        lines.append(
            f"{name:{width}} {item.service_per_s:10,.1f} {item.raw_per_s:10,.1f} {_shown(throughput):>24} "
            f"{item.service_mean_ms:8.2f} {item.raw_mean_ms:8.2f} {_shown(item.latency):>24}"
        )
    lines.append(
        "(the suite sends its queries in turn, so each runs at a tenth of the total rate: per query, the latency "
        "share says where the pipeline costs)"
    )
    return lines


@dataclass(frozen=True)
class CeilingSource:
    """What the raw side needs: the service's environment (database URL, pool settings, JWT_SECRET for cursors)
    and its worker count (the raw pool holds all the workers' connections)."""

    service_env: Mapping[str, str]
    workers: int


async def alternate(
    runners: Mapping[Side, RoundRunner],
    data: Dataset,
    profile: Profile,
    plan: RoundPlan,
    *,
    seed: int,
    ceiling: CeilingSource | None,
    progress: Progress = stderr,
) -> tuple[list[Round], str | None]:
    """The alternating rounds of `runners`, with the raw-SQL side as the last of every group when `ceiling`."""
    if ceiling is None:
        return await run_alternating(runners, plan, seed=seed, progress=progress)
    async with raw_rounds(ceiling.service_env, ceiling.workers, data, profile) as raw:
        return await run_alternating({**runners, RAW: raw}, plan, seed=seed, progress=progress)
