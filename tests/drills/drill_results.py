"""Drill results built by hand, for the report and timeline tests: what a real run records, without a stack."""

from __future__ import annotations

from datetime import UTC, datetime

from chaos.drills.catalog import DRILLS
from chaos.drills.durability import Durability
from chaos.drills.model import Drill, Observation
from chaos.drills.prometheus import AlertInterval
from chaos.drills.result import DrillResult
from chaos.drills.traffic import Sample

FAULT_AT = 6.0  # drill clock: the fault is injected 6 s after the drill started
FAULT_FOR = 4.0


def drill(name: str) -> Drill:
    return next(d for d in DRILLS if d.name == name)


def result(
    name: str = "redis-down",
    *,
    failing: float = 0.0,
    lost: int = 0,
    alerts: tuple[AlertInterval, ...] = (),
    mitigation: bool = False,
) -> DrillResult:
    """A finished drill: steady traffic around a 4 s fault in which `failing` of reads and writes got 503."""
    marks = {"fault injected": FAULT_AT}
    if mitigation:
        marks["mitigation applied"] = FAULT_AT + 2.0
    marks |= {
        "fault removed": FAULT_AT + FAULT_FOR,
        "steady state restored": FAULT_AT + FAULT_FOR + 0.4,
        "alerts resolved": FAULT_AT + FAULT_FOR + 1.0,
    }
    samples = []
    for step in range(160):  # every 0.1 s for 16 s
        t = step * 0.1
        in_fault = FAULT_AT <= t < FAULT_AT + FAULT_FOR
        for kind in ("read", "write"):
            fails = in_fault and (step % 10) < failing * 10
            samples.append(Sample(t, kind, 503 if fails else 200, 0.02, "DEPENDENCY_UNAVAILABLE" if fails else None))
        samples.append(Sample(t, "ready", 503 if in_fault else 200, 0.01, "degraded" if in_fault else "ready"))
    return DrillResult(
        drill=drill(name),
        started_at=datetime(2026, 12, 1, 12, 0, tzinfo=UTC),
        version="1.4.0",
        schema_revision="0007",
        marks=marks,
        samples=samples,
        alerts=list(alerts),
        alerts_watched=True,
        durability=Durability(acknowledged=40, missing=lost, duplicated=0, partial_batches=0, unacknowledged_batches=0),
    )


def alert(name: str, severity: str, fired: float, kind: str = "symptom") -> AlertInterval:
    """An alert firing `fired` s after the fault was injected, resolved after the repair."""
    return AlertInterval(name, kind, severity, FAULT_AT + fired, FAULT_AT + FAULT_FOR + 0.8)


OK = Observation(True, 200, "200 ready")
