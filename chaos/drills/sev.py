"""Severity classification (RB-INC-SEV) and the SEV report cadence (RB-INC-CADENCE): the one place the
rules are written down. The runbook's levels:

- SEV-1: 전체 장애 또는 치명적 데이터 무결성 위험 — total outage or data-integrity risk;
- SEV-2: 핵심 기능에 영향을 주는 중대 성능 저하 — core function seriously degraded;
- SEV-3: 우회 가능한 부분 장애 — partial failure with a workaround.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

# Update cadence per level, from the runbook's "SEV 보고 형식".
UPDATE_EVERY = {"SEV-1": timedelta(minutes=15), "SEV-2": timedelta(minutes=30), "SEV-3": timedelta(minutes=60)}

TOTAL_OUTAGE_FAILURE_RATIO = 0.9  # ≥ 90 % of core API calls failing: nothing usable is left
SERIOUS_FAILURE_RATIO = 0.1  # ≥ 10 % failing: a core function is seriously degraded
P95_GATE_S = 0.4  # the runbook's p95 gate


@dataclass(frozen=True)
class Impact:
    """What the drill observed during the fault, on the core API paths (reads and writes)."""

    read_failure_ratio: float
    write_failure_ratio: float
    p95_s: float | None
    events_lost: int
    events_duplicated: int
    degraded_signals: tuple[str, ...]  # e.g. readiness degraded, rate limits on fallback, 413/429 by design


@dataclass(frozen=True)
class Severity:
    level: str
    rule: str
    workaround: bool

    @property
    def update_every(self) -> timedelta:
        return UPDATE_EVERY[self.level]

    def next_update_due(self, now: datetime) -> datetime:
        return now + self.update_every


def classify(impact: Impact) -> Severity:
    if impact.events_lost or impact.events_duplicated:
        return Severity(
            "SEV-1",
            f"data integrity: {impact.events_lost} acknowledged events lost, {impact.events_duplicated} duplicated",
            workaround=False,
        )
    worst = max(impact.read_failure_ratio, impact.write_failure_ratio)
    if min(impact.read_failure_ratio, impact.write_failure_ratio) >= TOTAL_OUTAGE_FAILURE_RATIO:
        return Severity(
            "SEV-1",
            f"total outage: reads {impact.read_failure_ratio:.0%} and writes {impact.write_failure_ratio:.0%} "
            "failed; no workaround",
            workaround=False,
        )
    if worst >= SERIOUS_FAILURE_RATIO:
        failing = "reads" if impact.read_failure_ratio >= impact.write_failure_ratio else "writes"
        return Severity(
            "SEV-2",
            f"core function degraded: {failing} failed {worst:.0%} (≥ {SERIOUS_FAILURE_RATIO:.0%}); clients "
            "retrying with Retry-After get through",
            workaround=True,
        )
    if impact.p95_s is not None and impact.p95_s > P95_GATE_S:
        return Severity(
            "SEV-2",
            f"serious slowdown: core API p95 {impact.p95_s * 1000:.0f} ms above the {P95_GATE_S * 1000:.0f} ms gate",
            workaround=True,
        )
    signals = ", ".join(impact.degraded_signals) or "no customer-visible impact"
    return Severity("SEV-3", f"partial, served in degraded mode ({signals}); workaround: none needed", workaround=True)
