"""The statistics of the paired regression comparison: per query and metric, the ratio candidate/baseline with a
95 % confidence interval from a paired bootstrap over rounds, and the verdict against BENCH_MAX_REGRESSION.

Why a paired bootstrap over rounds:
- *Pairs share drift.* The candidate and the baseline run in alternating short rounds (A B B A ...,
  conformance/perf/paired.py), so one pair (a candidate round and the baseline round beside it) saw the same
  machine load, the same cache state and the same neighbours. Resampling whole pairs keeps that: the slow
  minute when another job ran slows both halves of its pair, and the interval of the ratio does not widen
  with it the way it would if the two sides were resampled independently. Drift between pairs shows up as
  variance of the ratio, which is what the interval should report.
- *No normality assumption.* A round's mean and p95 are skewed (latency has a long right tail; a noisy
  neighbour makes one round far slower, never far faster) and a rank test (Wilcoxon signed-rank) answers
  "is there a shift?", not "how large is the ratio, give or take?". The regression bound is a ratio
  (10 %), so the answer has to be an interval of the ratio to compare with it.
- *Works for ratios.* The statistic is the ratio of means over the resampled rounds (sum of candidate figures /
  sum of baseline figures), not the mean of per-round ratios, which a single near-empty round would dominate;
  percentile intervals are invariant under monotone transformations, so the asymmetry of a ratio (2x slower
  is +100 %, 2x faster is -50 %) needs no log transform.
- The seed is fixed, so the same rounds always give the same interval (a report can be re-derived from the
  raw figures in its JSON). 4000 resamples make the percentiles' own Monte Carlo error small (< 0.5 % of the
  interval's width on the rounds we run) at a cost of milliseconds.

With few pairs the plain percentile interval is far too narrow: 4 pairs have only 35 distinct resamples, and
the interval cannot see variance those rounds did not show (on the shared 2-core machine, a build compared with
itself in 4 pairs once came out at 1.22 [1.09, 1.37]: 3 of its 4 pairs happened to favour one process). So the
interval is Hesterberg's *expanded percentile interval* ("What Teachers Should Know About the Bootstrap",
2015): the same bootstrap distribution, read at the tail probability Phi(-sqrt(n/(n-1)) * t(0.975, n-1))
instead of 0.025, which gives the coverage of a t interval for small n and the plain percentile interval as n
grows (4 pairs: about the extremes of the pairs' own ratios; 10 pairs: the 0.6 % and 99.4 % points). Fewer
than MIN_PAIRS pairs are refused.

The verdict per metric, with bound r (BENCH_MAX_REGRESSION, default 0.10):
- mean and p95 (higher is worse): REGRESSED when the interval's low end is above 1 + r; PASSED when its high
  end is at or below 1 + r (an improvement passes); else INCONCLUSIVE;
- throughput (lower is worse): REGRESSED when the high end is below 1 / (1 + r); PASSED when the low end is at
  or above it; else INCONCLUSIVE.
The bound is a threshold of practical size, not 1.0, so that a build compared with itself is almost never
flagged however many metrics and queries are compared: its interval would have to exclude 1.10 entirely.
An INCONCLUSIVE metric says how many pairs would decide it: the half-width of a bootstrap interval shrinks
like 1/sqrt(n), so the side of the interval facing the bound (width w from the estimate) must shrink below the
estimate's distance d to the bound: n * (w / d)^2 pairs, rounded up, bounded by MAX_PAIRS_SUGGESTED.
A query's verdict is REGRESSED if any of its metrics is, PASSED if all are, else INCONCLUSIVE.
"""

from __future__ import annotations

import enum
import math
import os
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist

from conformance.verdicts import Exit

DEFAULT_MAX_REGRESSION = 0.10
MAX_REGRESSION_ENV = "BENCH_MAX_REGRESSION"
BOOTSTRAP_RESAMPLES = 4000
BOOTSTRAP_SEED = 20240917
CONFIDENCE = 0.95  # the t table below is for this level (its 97.5 % points)
MIN_PAIRS = 3
MAX_PAIRS_SUGGESTED = 200


class Verdict(enum.StrEnum):
    PASSED = "passed"
    REGRESSED = "regressed"
    INCONCLUSIVE = "inconclusive"


VERDICT_EXIT: Mapping[Verdict, Exit] = {
    Verdict.PASSED: Exit.OK,
    Verdict.REGRESSED: Exit.FAILED,
    Verdict.INCONCLUSIVE: Exit.INCONCLUSIVE,
}


class Metric(enum.StrEnum):
    MEAN = "mean_ms"
    P95 = "p95_ms"
    THROUGHPUT = "per_s"

    @property
    def higher_is_worse(self) -> bool:
        return self is not Metric.THROUGHPUT


@dataclass(frozen=True)
class RoundFigures:
    """One side's figures for one query in one round."""

    mean_ms: float
    p95_ms: float
    per_s: float

    def value(self, metric: Metric) -> float:
        return float(getattr(self, metric.value))


Pair = tuple[RoundFigures, RoundFigures]  # (candidate, baseline) of one pair of rounds


@dataclass(frozen=True)
class MetricComparison:
    """The ratio candidate/baseline of one metric, its interval, and what it says against the bound."""

    metric: Metric
    ratio: float | None  # None: no pair had a baseline figure to divide by
    low: float | None
    high: float | None
    verdict: Verdict
    pairs_needed: int | None  # INCONCLUSIVE only: pairs that would decide it (MAX_PAIRS_SUGGESTED: at least)

    def as_dict(self) -> dict[str, object]:
        return {
            "ratio": _rounded(self.ratio),
            "low": _rounded(self.low),
            "high": _rounded(self.high),
            "verdict": self.verdict.value,
            "pairs_needed": self.pairs_needed,
        }


@dataclass(frozen=True)
class QueryComparison:
    name: str
    pairs: int
    metrics: dict[Metric, MetricComparison]

    @property
    def verdict(self) -> Verdict:
        return combined([m.verdict for m in self.metrics.values()])

    @property
    def pairs_needed(self) -> int | None:
        needed = [m.pairs_needed for m in self.metrics.values() if m.pairs_needed is not None]
        return max(needed) if needed and self.verdict is Verdict.INCONCLUSIVE else None

    def as_dict(self) -> dict[str, object]:
        return {
            "pairs": self.pairs,
            "verdict": self.verdict.value,
            "pairs_needed": self.pairs_needed,
            **{metric.value: comparison.as_dict() for metric, comparison in self.metrics.items()},
        }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def max_regression_from_env(environ: Mapping[str, str] | None = None) -> float:
    """BENCH_MAX_REGRESSION: the largest slowdown accepted, as a fraction (0.10 = 10 %); ValueError if bad."""
    env = os.environ if environ is None else environ
    raw = env.get(MAX_REGRESSION_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_REGRESSION
    try:
        value = float(raw.removesuffix("%")) / (100 if raw.endswith("%") else 1)
    except ValueError:
        raise ValueError(f"{MAX_REGRESSION_ENV}={raw!r} is not a fraction (0.10) or a percentage (10%)") from None
    if not math.isfinite(value) or not 0 < value < 10:
        raise ValueError(f"{MAX_REGRESSION_ENV}={raw!r} must be a positive fraction, e.g. 0.10 for 10 %")
    return value


def combined(verdicts: Sequence[Verdict]) -> Verdict:
    """REGRESSED if any is, PASSED if all are (and there is one), else INCONCLUSIVE."""
    if Verdict.REGRESSED in verdicts:
        return Verdict.REGRESSED
    if verdicts and all(v is Verdict.PASSED for v in verdicts):
        return Verdict.PASSED
    return Verdict.INCONCLUSIVE


def _ratio_of_means(candidate: Sequence[float], baseline: Sequence[float], indices: Sequence[int]) -> float | None:
    denominator = sum(baseline[i] for i in indices)
    if denominator <= 0:
        return None
    return sum(candidate[i] for i in indices) / denominator


def _percentile(ordered: Sequence[float], fraction: float) -> float:
    """Linear interpolation between closest ranks (the bootstrap has thousands of values: any rule agrees)."""
    position = fraction * (len(ordered) - 1)
    lower = math.floor(position)
    upper = min(lower + 1, len(ordered) - 1)
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower)


# Student's t, 97.5 % point, by degrees of freedom (1..30); beyond, a Cornish-Fisher expansion is exact to 1e-3.
_T_975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


def t_975(degrees: int) -> float:
    if degrees < 1:
        raise ValueError("a t quantile needs at least one degree of freedom")
    if degrees <= len(_T_975):
        return _T_975[degrees - 1]
    z = NormalDist().inv_cdf(0.975)
    return z + (z**3 + z) / (4 * degrees) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * degrees**2)


def expanded_tail(pairs: int) -> float:
    """The tail probability at which the expanded percentile interval reads the bootstrap distribution."""
    return NormalDist().cdf(-math.sqrt(pairs / (pairs - 1)) * t_975(pairs - 1))


def bootstrap_ratio(
    candidate: Sequence[float],
    baseline: Sequence[float],
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float, float] | None:
    """(ratio of means, low, high): the expanded percentile interval of the ratio of means over pairs resampled
    with replacement (index i is one pair: candidate[i] beside baseline[i]). None when the baseline sums to 0."""
    count = len(candidate)
    if count != len(baseline) or count < 2:
        raise ValueError("the candidate and the baseline need the same number of rounds, at least 2")
    estimate = _ratio_of_means(candidate, baseline, range(count))
    if estimate is None:
        return None
    rng = random.Random(seed)  # noqa: S311 (a reproducible resampling, not a secret)
    ratios: list[float] = []
    for _ in range(resamples):
        indices = [rng.randrange(count) for _ in range(count)]
        ratio = _ratio_of_means(candidate, baseline, indices)
        if ratio is not None:
            ratios.append(ratio)
    ratios.sort()
    tail = expanded_tail(count)
    return estimate, _percentile(ratios, tail), _percentile(ratios, 1 - tail)


def judge(metric: Metric, ratio: float, low: float, high: float, *, bound: float, pairs: int) -> MetricComparison:
    """The verdict of one interval against the bound, and the pairs an inconclusive one would need."""
    limit = 1 + bound if metric.higher_is_worse else 1 / (1 + bound)
    beyond, within = (low > limit, high <= limit) if metric.higher_is_worse else (high < limit, low >= limit)
    if beyond:
        return MetricComparison(metric, ratio, low, high, Verdict.REGRESSED, None)
    if within:
        return MetricComparison(metric, ratio, low, high, Verdict.PASSED, None)
    # The side of the interval that crosses the limit must shrink until it stops short of it.
    # (An estimate below the limit has its high end above it, and the other way round, for both directions.)
    crossing = high - ratio if ratio <= limit else ratio - low
    distance = abs(limit - ratio)
    if distance <= 0 or crossing <= 0:
        needed = MAX_PAIRS_SUGGESTED
    else:
        needed = min(MAX_PAIRS_SUGGESTED, math.ceil(pairs * (crossing / distance) ** 2))
    return MetricComparison(metric, ratio, low, high, Verdict.INCONCLUSIVE, max(needed, pairs + 1))


def compare_query(
    name: str, pairs: Sequence[Pair], *, bound: float, seed: int = BOOTSTRAP_SEED, resamples: int = BOOTSTRAP_RESAMPLES
) -> QueryComparison:
    """Every metric of one query over its pairs of rounds."""
    if len(pairs) < MIN_PAIRS:
        raise ValueError(f"{name}: {len(pairs)} pairs of rounds; at least {MIN_PAIRS} are needed for an interval")
    metrics: dict[Metric, MetricComparison] = {}
    for metric in Metric:
        candidate = [c.value(metric) for c, _ in pairs]
        baseline = [b.value(metric) for _, b in pairs]
        found = bootstrap_ratio(candidate, baseline, resamples=resamples, seed=seed)
        if found is None:
            metrics[metric] = MetricComparison(metric, None, None, None, Verdict.INCONCLUSIVE, None)
            continue
        ratio, low, high = found
        metrics[metric] = judge(metric, ratio, low, high, bound=bound, pairs=len(pairs))
    return QueryComparison(name=name, pairs=len(pairs), metrics=metrics)
