"""What a drill run produced (its marks, probe outcomes, journal, traffic, alerts, durability) and the
measurements the report makes of it: detection and recovery times, impact, severity (chaos.drills.sev) and
the error budget consumed (chaos.drills.slo)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from chaos.drills.durability import Durability
from chaos.drills.fleet_watch import Transition
from chaos.drills.model import Drill, Observation
from chaos.drills.prometheus import AlertInterval
from chaos.drills.sev import Impact, Severity, classify
from chaos.drills.slo import BudgetUse, budget_use, objectives
from chaos.drills.traffic import Sample


def drill_time(t: float, fault_injected: float | None) -> str:
    """How the console and the report name a moment on the drill clock: `T+1.23 s` from the fault injection
    (T0, the origin of every report time), or `t=5.86 s` since the drill started while no fault has been
    injected (yet), since T0 is not known then; the report prints both for every probe."""
    return f"T{t - fault_injected:+.2f} s" if fault_injected is not None else f"t={t:.2f} s"


def alert_clock_label(measured_s: float, factor: int) -> str:
    """An alert time as the reports print it: measured, and on rules that run `factor` times faster than
    production (the drill variant, chaos.drills.alert_clock) the production-equivalent beside it."""
    if factor == 1:
        return f"{measured_s:.2f} s"
    return f"{measured_s:.2f} s (drill clock ×1/{factor}; production-equivalent {measured_s * factor:.1f} s)"


@dataclass(frozen=True, slots=True)
class JournalEntry:
    t: float
    at: str  # UTC, ISO 8601
    phase: str
    probe: str
    ok: bool
    value: Any
    detail: str


@dataclass(frozen=True)
class ProbeOutcome:
    phase: str
    probe: str
    tolerance: str
    met: bool
    at: float | None  # drill clock, when first met
    attempts: int
    last: Observation


@dataclass
class DrillResult:
    drill: Drill
    started_at: datetime
    version: str | None
    schema_revision: str | None
    marks: dict[str, float] = field(default_factory=dict)
    outcomes: list[ProbeOutcome] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    alerts: list[AlertInterval] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    journal: list[JournalEntry] = field(default_factory=list)
    durability: Durability | None = None
    notes: list[str] = field(default_factory=list)
    alerts_watched: bool = False  # a Prometheus evaluated the alert rules during the drill
    target: dict[str, Any] = field(default_factory=dict)  # what the drill ran against (name, kind, URL, images…)
    fleet: list[Transition] = field(default_factory=list)  # the balancer's view and each replica's readiness
    aborted: str | None = None  # why an abort condition stopped the drill (it was rolled back at once)
    measurements: dict[str, Any] = field(default_factory=dict)  # drill-specific figures (fleet drills)

    def time_label(self, t: float) -> str:
        """`t` as the report and the console both print it (see `drill_time`)."""
        return drill_time(t, self.marks.get("fault injected"))

    @property
    def passed(self) -> bool:
        return not self.failures

    # -- measurements ------------------------------------------------------------------------------------
    @property
    def fault_window(self) -> tuple[float, float]:
        start = self.marks.get("fault injected", 0.0)
        end = self.marks.get("fault removed", max((s.t for s in self.samples), default=start))
        return start, end

    @property
    def repaired_at(self) -> float | None:
        """When the repair began: the runbook's mitigation when the drill applies one (a rollback, a limit
        rollout), else the fault's removal."""
        return self.marks.get("mitigation applied", self.marks.get("fault removed"))

    def first_failure_signal(self) -> tuple[float, str] | None:
        """Fault injected → first failing readiness or API answer (MTTD, signal). In an overload the first
        signal is the guards and limits at work: the first 413 or 429."""
        start, _ = self.fault_window
        overload = self.drill.scenario == "overload"
        for sample in sorted(self.samples, key=lambda s: s.t):
            if sample.t < start:
                continue
            if sample.kind == "ready" and sample.status != 200:
                return sample.t - start, f"readiness {sample.status} {sample.code or ''}".strip()
            failed = sample.status >= 500 or sample.status == 0 or (overload and sample.status in (413, 429))
            if sample.kind != "ready" and sample.kind != "live" and failed:
                return sample.t - start, f"API {sample.kind} {sample.status or 'no answer'} {sample.code or ''}".strip()
        return None

    def _first_alert(self) -> AlertInterval | None:
        start, _ = self.fault_window
        fired = [a for a in self.alerts if a.fired_at >= start and a.kind == "symptom"]
        fired = fired or [a for a in self.alerts if a.fired_at >= start]
        return min(fired, key=lambda a: a.fired_at) if fired else None

    def first_alert(self) -> tuple[float, str] | None:
        """Fault injected → first alert firing, as measured. Symptom alerts count first: window and burn-rate
        alerts also fire on errors from before the fault (an earlier drill's), so they count only when nothing
        else fired."""
        first = self._first_alert()
        return (first.fired_at - self.fault_window[0], first.name) if first is not None else None

    def first_alert_production_equivalent(self) -> tuple[float, int] | None:
        """The first alert's time × the clock factor of the rules that fired it, with the factor: on the drill
        variant (every interval, window and `for:` divided by the factor) what production's timing would take.
        The service's own check timeouts do not scale, so for slow or hung dependencies it is an upper estimate."""
        first = self._first_alert()
        if first is None:
            return None
        return (first.fired_at - self.fault_window[0]) * first.clock_factor, first.clock_factor

    def recovery_s(self) -> float | None:
        repaired = self.repaired_at
        steady = self.marks.get("steady state restored")
        return steady - repaired if repaired is not None and steady is not None else None

    def alerts_resolved_s(self) -> float | None:
        repaired = self.repaired_at
        resolved = self.marks.get("alerts resolved")
        return resolved - repaired if repaired is not None and resolved is not None else None

    def window_samples(self, *kinds: str) -> list[Sample]:
        start, end = self.fault_window
        return [s for s in self.samples if start <= s.t < end and (not kinds or s.kind in kinds)]

    def status_counts(self) -> dict[str, dict[str, int]]:
        counts: dict[str, Counter[str]] = {}
        for sample in self.window_samples():
            label = f"{sample.status or 'no answer'}" + (
                f" {sample.code}" if sample.code and sample.status >= 400 else ""
            )
            counts.setdefault(sample.kind, Counter())[label] += 1
        return {kind: dict(sorted(counter.items())) for kind, counter in sorted(counts.items())}

    def impact(self) -> Impact:
        def failure_ratio(kind: str) -> float:
            samples = self.window_samples(kind)
            failed = [s for s in samples if s.status >= 500 or s.status == 0]
            return len(failed) / len(samples) if samples else 0.0

        latencies = sorted(s.latency_s for s in self.window_samples("read", "write"))
        p95 = latencies[int(0.95 * (len(latencies) - 1))] if latencies else None
        signals = []
        if any(s.kind == "ready" and s.status != 200 for s in self.window_samples()):
            signals.append("readiness 503")
        if any(s.status in (413, 429) for s in self.window_samples()):
            signals.append("413/429 by design")
        if any(a.name == "EventsApiRateLimitFallback" for a in self.alerts):
            signals.append("rate limits on the in-process fallback")
        durability = self.durability
        return Impact(
            read_failure_ratio=failure_ratio("read"),
            write_failure_ratio=failure_ratio("write"),
            p95_s=p95,
            events_lost=durability.missing + durability.partial_batches if durability else 0,
            events_duplicated=durability.duplicated if durability else 0,
            degraded_signals=tuple(signals),
        )

    def severity(self) -> Severity:
        return classify(self.impact())

    def budget(self) -> BudgetUse:
        slo = objectives()
        samples = self.window_samples("read", "write")
        start, end = self.fault_window
        return budget_use(
            requests=len(samples),
            bad=sum(1 for s in samples if s.status >= 500 or s.status == 0),
            slow=sum(1 for s in samples if s.latency_s > slo.latency_threshold_s),
            duration_s=max(0.0, end - start),
        )


@dataclass(frozen=True)
class NotApplicable:
    """A drill the target cannot run: what it needs that the target does not offer. Never a pass."""

    drill: Drill
    missing: frozenset[str]
    target: str

    @property
    def reason(self) -> str:
        return f"not applicable to this target ({self.target} lacks {', '.join(sorted(self.missing))})"
