"""Finished drills with a journal of probe attempts, as the engine records them, for the journal tests."""

from __future__ import annotations

from datetime import timedelta

from chaos.drills import probes
from chaos.drills.model import Observation
from chaos.drills.result import DrillResult, JournalEntry, ProbeOutcome
from tests.drills.drill_results import FAULT_AT, FAULT_FOR, result


def _attempt(finished: DrillResult, t: float, phase: str, name: str, ok: bool) -> None:
    at = (finished.started_at + timedelta(seconds=t)).isoformat()
    value = 200 if ok else 503
    finished.journal.append(JournalEntry(t, at, phase, name, ok, value, f"{value}"))


def _probe(finished: DrillResult, t: float, phase: str, name: str, *, met: bool = True, attempts: int = 1) -> None:
    for attempt in range(attempts):
        _attempt(finished, t + attempt * 0.1, phase, name, met or attempt < attempts - 1)
    last = Observation(met, 200 if met else 503, "200" if met else "503")
    finished.outcomes.append(ProbeOutcome(phase, name, "tolerance", met, t if met else None, attempts, last))


def finished(name: str = "db-down", *, recovered: bool = True) -> DrillResult:
    """A drill that ran every phase: steady state, the fault and its expectations, removal, recovery."""
    done = result(name)
    steady = [probe.name for probe in probes.steady_state(with_alerts=False)]
    for number, probe in enumerate(steady):
        _probe(done, 1.0 + number * 0.2, "steady state", probe)
    for number, expected in enumerate(done.drill.expected):
        _probe(done, FAULT_AT + 0.3 + number * 0.2, "under fault", expected.name, attempts=2)
    for number, probe in enumerate(steady):
        met = recovered or number > 0
        _probe(done, FAULT_AT + FAULT_FOR + 0.1 + number * 0.2, "recovery", probe, met=met, attempts=3)
        if not met:
            done.failures.append(f"recovery: probe '{probe}' not met (tolerance); last: 503")
            break
    return done
