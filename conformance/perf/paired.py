"""The alternating run of the paired comparison: the candidate (A) and the baseline (B) take turns in short rounds
of the query suite (conformance/perf/runner.py run_suite), in ABBA order, on the same dataset. A third side (the
raw-SQL ceiling, conformance/perf/ceiling.py) may take its turn in the same rounds: every side is a RoundRunner.

Why short alternating rounds, and why ABBA: on a shared machine throughput drifts by +/-20 % over minutes
(docs/BENCHMARKS.md). Two long runs one after the other put all of that drift between the builds; rounds of a
few seconds put the two sides of a pair seconds apart, so drift hits both alike. Within a pair, whoever runs
second would still see a linear trend's later half: A B then B A swaps who that is every pair, so a steady
trend cancels over two pairs (A B B A A B ...), instead of always favouring the same side. With three sides
the order is reversed every other group (C B R, R B C, ...): each side's positions sum to the same over two
groups, so a linear trend cancels for every pair of sides alike.

Both sides are warmed up once, before the first round (connection pools, plan caches, the OS page cache of
the dataset); the rounds themselves start measuring at once. A round is `round_s` seconds at the profile's
concurrency; the run is bounded by `pairs` pairs and by `max_seconds` (it stops after the pair that crosses
it, and says so), so a loaded machine makes the run shorter and less certain, not endless.

Per query and per round it keeps each side's mean, p95 and throughput (requests of that query per second of
the round), and the CPU each group of processes spent in the round (conformance/perf/cpu_accounting.py); the
candidate's raw latencies are pooled across its rounds for the absolute 250/400 ms gate.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from conformance.perf import cpu_accounting
from conformance.perf.console import Progress, stderr
from conformance.perf.paired_stats import Pair, RoundFigures
from conformance.perf.profiles import Profile
from conformance.perf.runner import QueryStats, run_suite
from conformance.perf.suite import Dataset
from conformance.perf.thresholds import percentile

Side = Literal["candidate", "baseline", "service", "raw"]
SIDES: tuple[Side, Side] = ("candidate", "baseline")
ALL_QUERIES = "(all queries)"
# One round of one side: (seed, seconds) -> the stats per query and the measured seconds.
RoundRunner = Callable[[int, float], Awaitable[tuple[dict[str, QueryStats], float]]]


@dataclass(frozen=True)
class Endpoint:
    """Where one side is served, and the headers its requests carry (its API key)."""

    base_url: str
    headers: Mapping[str, str]


@dataclass(frozen=True)
class RoundPlan:
    pairs: int
    round_s: float
    warmup_s: float
    max_seconds: float


@dataclass
class Round:
    index: int  # 0-based position in the run
    pair: int
    side: Side
    started_at: float  # seconds since the run began
    seconds: float
    stats: dict[str, QueryStats]
    cpu_s: dict[str, float] | None = None  # CPU seconds per process group (conformance/perf/cpu_accounting.py)

    @property
    def requests(self) -> int:
        return sum(len(stats.latencies_ms) for stats in self.stats.values())

    def figures(self) -> dict[str, RoundFigures]:
        """Per query, and ALL_QUERIES over every request of the round."""
        found: dict[str, RoundFigures] = {}
        for name, stats in self.stats.items():
            found[name] = _figures(stats.latencies_ms, self.seconds)
        every = [latency for stats in self.stats.values() for latency in stats.latencies_ms]
        found[ALL_QUERIES] = _figures(every, self.seconds)
        return found

    def as_dict(self) -> dict[str, object]:
        return {
            "index": self.index,
            "pair": self.pair,
            "side": self.side,
            "started_at_s": round(self.started_at, 3),
            "seconds": round(self.seconds, 3),
            "cpu_s": {group: round(value, 3) for group, value in self.cpu_s.items()} if self.cpu_s else None,
            "queries": {
                name: {
                    "count": len(self.stats[name].latencies_ms) if name in self.stats else None,
                    "errors": self.stats[name].errors if name in self.stats else None,
                    "mean_ms": round(figures.mean_ms, 3),
                    "p95_ms": round(figures.p95_ms, 3),
                    "per_s": round(figures.per_s, 2),
                }
                for name, figures in self.figures().items()
            },
        }


def _figures(latencies_ms: list[float], seconds: float) -> RoundFigures:
    if not latencies_ms:
        return RoundFigures(0.0, 0.0, 0.0)
    ordered = sorted(latencies_ms)
    return RoundFigures(sum(ordered) / len(ordered), percentile(ordered, 0.95), len(ordered) / max(seconds, 1e-9))


def abba_order(pair: int, sides: Sequence[Side] = SIDES) -> tuple[Side, ...]:
    """A B, then B A, then A B ...: the side that goes second alternates, so a linear trend cancels
    (with three sides: the order reversed every other group)."""
    return tuple(sides) if pair % 2 == 0 else tuple(reversed(sides))


def http_rounds(endpoint: Endpoint, data: Dataset, profile: Profile) -> RoundRunner:
    """Rounds of the query suite through the HTTP API at `endpoint`, at the profile's concurrency."""

    async def run(seed: int, seconds: float) -> tuple[dict[str, QueryStats], float]:
        timed = replace(profile, warmup_s=0.0, duration_s=seconds)
        return await run_suite(endpoint.base_url, dict(endpoint.headers), data, timed, seed=seed)

    return run


async def run_alternating(
    sides: Mapping[Side, RoundRunner],
    plan: RoundPlan,
    *,
    seed: int,
    progress: Progress = stderr,
) -> tuple[list[Round], str | None]:
    """The rounds of every side (in the mapping's order, reversed every other group), and why the run stopped
    early (None: every planned pair ran)."""
    order = tuple(sides)
    if plan.warmup_s > 0:
        for side in order:
            progress(f"warm-up: {side} for {plan.warmup_s:g} s (figures discarded)")
            await sides[side](seed, plan.warmup_s)
    rounds: list[Round] = []
    started = time.monotonic()
    stopped: str | None = None
    for pair in range(plan.pairs):
        for side in abba_order(pair, order):
            began = time.monotonic() - started
            # Each round draws other parameters (seed per pair), the same ones for every side of the pair.
            before = cpu_accounting.snapshot()
            stats, seconds = await sides[side](seed * 1009 + pair, plan.round_s)
            cpu = cpu_accounting.spent(before, cpu_accounting.snapshot())
            done = Round(len(rounds), pair, side, began, seconds, stats, cpu)
            rounds.append(done)
            total = done.figures()[ALL_QUERIES]
            errors = sum(s.errors for s in stats.values())
            progress(
                f"round {done.index + 1}/{len(order) * plan.pairs} (pair {pair + 1}, {side:9}): "
                f"{total.per_s:7,.0f} req/s, mean {total.mean_ms:7.2f} ms, p95 {total.p95_ms:7.2f} ms, "
                f"{errors} errors"
            )
        if time.monotonic() - started > plan.max_seconds and pair + 1 < plan.pairs:
            stopped = f"stopped after {pair + 1} of {plan.pairs} pairs: the run's time bound ({plan.max_seconds:g} s)"
            progress(stopped)
            break
    return rounds, stopped


def pairs_by_query(rounds: list[Round], first: Side = "candidate", second: Side = "baseline") -> dict[str, list[Pair]]:
    """(first, second) figures per query — (candidate, baseline) by default —, one entry per pair of rounds
    in which both sides ran."""
    by_pair: dict[int, dict[Side, dict[str, RoundFigures]]] = {}
    for measured in rounds:
        by_pair.setdefault(measured.pair, {})[measured.side] = measured.figures()
    found: dict[str, list[Pair]] = {}
    for pair in sorted(by_pair):
        sides = by_pair[pair]
        if first not in sides or second not in sides:
            continue
        for name, candidate in sides[first].items():
            baseline = sides[second].get(name)
            if baseline is not None:
                found.setdefault(name, []).append((candidate, baseline))
    return found


def pooled_stats(rounds: list[Round], side: Side) -> dict[str, QueryStats]:
    """One side's requests over all its rounds, per query (for the absolute gate's mean/p95/error budget)."""
    pooled: dict[str, QueryStats] = {}
    for measured in rounds:
        if measured.side != side:
            continue
        for name, stats in measured.stats.items():
            into = pooled.setdefault(name, QueryStats())
            into.latencies_ms += stats.latencies_ms
            into.errors += stats.errors
            for status, count in stats.statuses.items():
                into.statuses[status] = into.statuses.get(status, 0) + count
    return pooled
