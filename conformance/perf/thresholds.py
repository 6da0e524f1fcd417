"""The runbook's performance gate in numbers: a mean and a p95 per query (BENCH_FAIL_THRESHOLD_MS,
BENCH_FAIL_P95_THRESHOLD_MS), and the nearest-rank percentile they are compared with."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

DEFAULT_MEAN_THRESHOLD_MS = 250.0
DEFAULT_P95_THRESHOLD_MS = 400.0


@dataclass(frozen=True)
class Thresholds:
    """The runbook's gate: a query fails when its mean or its p95 is over these (milliseconds)."""

    mean_ms: float = DEFAULT_MEAN_THRESHOLD_MS
    p95_ms: float = DEFAULT_P95_THRESHOLD_MS

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Thresholds:
        """BENCH_FAIL_THRESHOLD_MS (mean, default 250) and BENCH_FAIL_P95_THRESHOLD_MS (default 400)."""
        env = os.environ if environ is None else environ
        return cls(
            mean_ms=_positive_ms(env, "BENCH_FAIL_THRESHOLD_MS", DEFAULT_MEAN_THRESHOLD_MS),
            p95_ms=_positive_ms(env, "BENCH_FAIL_P95_THRESHOLD_MS", DEFAULT_P95_THRESHOLD_MS),
        )


def _positive_ms(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a number of milliseconds") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name}={raw!r} must be a positive number of milliseconds")
    return value


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values (0.0 for none)."""
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]
