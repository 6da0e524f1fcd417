"""Severity classification (RB-INC-SEV), the SEV report cadence and its fields per level (RB-INC-CADENCE):
the one place the rules are written down. The runbook's levels:

- SEV-1: 전체 장애 또는 치명적 데이터 무결성 위험 — total outage or data-integrity risk;
- SEV-2: 핵심 기능에 영향을 주는 중대 성능 저하 — core function seriously degraded;
- SEV-3: 우회 가능한 부분 장애 — partial failure with a workaround.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

# Update cadence per level, from the runbook's "SEV 보고 형식".
UPDATE_EVERY = {"SEV-1": timedelta(minutes=15), "SEV-2": timedelta(minutes=30), "SEV-3": timedelta(minutes=60)}


@dataclass(frozen=True)
class SevField:
    """One field of a SEV update: the runbook's words, an English gloss, and what fills it (`SevFill`)."""

    korean: str
    english: str
    fill: str


# The fields of each level's SEV update, in the runbook's order and words ("SEV 보고 형식"); each level has
# its own (SEV-1 states that there is no workaround, SEV-3 the workaround path and the permanent-fix
# schedule), so a report never uses another level's skeleton. tests/drills/test_sev_report.py parses the
# runbook and fails when these drift from it.
SEV_REPORT_FIELDS: dict[str, tuple[SevField, ...]] = {
    "SEV-1": (
        SevField("현재 영향 범위", "current scope", "scope"),
        SevField("고객 영향", "customer impact", "customer_impact"),
        SevField("우회 불가 여부", "no workaround?", "workaround"),
        SevField("15분 간격 업데이트", "next update, every 15 min", "next_update"),
        SevField("임시조치 ETA", "mitigation ETA", "mitigation_eta"),
        SevField("최종 복구 ETA", "final recovery ETA", "recovery_eta"),
    ),
    "SEV-2": (
        SevField("주요 기능 영향 범위", "core functions affected", "scope"),
        SevField("우회 가능 여부", "workaround available?", "workaround"),
        SevField("30분 간격 업데이트", "next update, every 30 min", "next_update"),
        SevField("완화/복구 ETA", "mitigation/recovery ETA", "mitigation_recovery_eta"),
    ),
    "SEV-3": (
        SevField("부분 영향 범위", "partial scope", "scope"),
        SevField("임시 우회 경로", "temporary workaround path", "workaround_path"),
        SevField("60분 간격 업데이트", "next update, every 60 min", "next_update"),
        SevField("영구 조치 일정", "permanent fix schedule", "permanent_fix"),
    ),
}

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
    workaround_note: str = ""  # what gets a client through (SEV-2/SEV-3), or why nothing does (SEV-1)

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
            workaround_note="acknowledged data is affected; no client action restores it",
        )
    worst = max(impact.read_failure_ratio, impact.write_failure_ratio)
    if min(impact.read_failure_ratio, impact.write_failure_ratio) >= TOTAL_OUTAGE_FAILURE_RATIO:
        return Severity(
            "SEV-1",
            f"total outage: reads {impact.read_failure_ratio:.0%} and writes {impact.write_failure_ratio:.0%} "
            "failed; no workaround",
            workaround=False,
            workaround_note="nothing is served, so no retry or alternative path gets through",
        )
    if worst >= SERIOUS_FAILURE_RATIO:
        failing = "reads" if impact.read_failure_ratio >= impact.write_failure_ratio else "writes"
        return Severity(
            "SEV-2",
            f"core function degraded: {failing} failed {worst:.0%} (≥ {SERIOUS_FAILURE_RATIO:.0%}); clients "
            "retrying with Retry-After get through",
            workaround=True,
            workaround_note="clients retrying with Retry-After (and their own event ids) get through",
        )
    if impact.p95_s is not None and impact.p95_s > P95_GATE_S:
        return Severity(
            "SEV-2",
            f"serious slowdown: core API p95 {impact.p95_s * 1000:.0f} ms above the {P95_GATE_S * 1000:.0f} ms gate",
            workaround=True,
            workaround_note=f"requests are answered, slowly: clients whose timeouts exceed "
            f"{impact.p95_s:.1f} s get through",
        )
    signals = ", ".join(impact.degraded_signals) or "no customer-visible impact"
    return Severity(
        "SEV-3",
        f"partial, served in degraded mode ({signals}); workaround: none needed",
        workaround=True,
        workaround_note="the service keeps answering in its degraded mode; clients need no action",
    )
