"""The service's SLOs (from service/alerts/slo.yml, their one definition) and the error budget a drill or a
load run consumed against them (RB-SLO-BUDGET)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

SLO_FILE = Path(__file__).resolve().parents[2] / "service" / "alerts" / "slo.yml"


@dataclass(frozen=True)
class Objectives:
    window_days: int
    availability_target: float
    latency_threshold_s: float
    latency_target: float

    @property
    def window_s(self) -> float:
        return self.window_days * 86_400.0

    def describe(self) -> str:
        return (
            f"availability {self.availability_target:.1%} and {self.latency_target:.0%} of requests within "
            f"{self.latency_threshold_s * 1000:.0f} ms, over {self.window_days} days"
        )


@cache
def objectives() -> Objectives:
    raw = yaml.safe_load(SLO_FILE.read_text(encoding="utf-8"))
    return Objectives(
        window_days=int(raw["window_days"]),
        availability_target=float(raw["objectives"]["availability"]["target"]),
        latency_threshold_s=float(raw["objectives"]["latency"]["threshold_s"]),
        latency_target=float(raw["objectives"]["latency"]["target"]),
    )


@dataclass(frozen=True)
class BudgetUse:
    """Share of the SLO window's error budget used up by `duration_s` of traffic with these ratios.

    Volume-independent: `bad_ratio × duration` is the equivalent time of full outage, and the budget is
    `(1 − target) × window` of it. A 60 s total outage uses 60 / (0.001 × 30 d) ≈ 2.3 % of a 99.9 % budget.
    """

    availability_consumed: float
    latency_consumed: float
    bad_ratio: float
    slow_ratio: float
    duration_s: float

    def remaining_after(self) -> float:
        return max(0.0, 1.0 - self.availability_consumed)

    def status(self) -> str:
        """What post-incident output says about the budget (assuming it was whole before)."""
        worst = max(self.availability_consumed, self.latency_consumed)
        if worst >= 1:
            return "exhausted — freeze risky releases (error budget policy)"
        if worst >= 0.25:
            return "more than a quarter used by this incident — prioritise reliability work in the backlog"
        return "within budget"


def budget_use(*, requests: int, bad: int, slow: int, duration_s: float, slo: Objectives | None = None) -> BudgetUse:
    slo = slo or objectives()
    bad_ratio = bad / requests if requests else 0.0
    slow_ratio = slow / requests if requests else 0.0
    availability_budget_s = (1 - slo.availability_target) * slo.window_s
    latency_budget_s = (1 - slo.latency_target) * slo.window_s
    return BudgetUse(
        availability_consumed=bad_ratio * duration_s / availability_budget_s,
        latency_consumed=slow_ratio * duration_s / latency_budget_s,
        bad_ratio=bad_ratio,
        slow_ratio=slow_ratio,
        duration_s=duration_s,
    )
