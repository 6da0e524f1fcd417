"""The timed run of the query suite: `concurrency` clients on keep-alive connections, each sending its next
request when the last returns, a warm-up whose timings are discarded, and progress every 2 s on stderr."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from conformance.perf.client import HttpError, KeepAliveConnection
from conformance.perf.console import stderr
from conformance.perf.discovery import skipped_queries
from conformance.perf.pacing import Pacer
from conformance.perf.profiles import Profile
from conformance.perf.suite import SUITE, Dataset
from conformance.perf.thresholds import percentile

PROGRESS_EVERY_S = 2.0


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
