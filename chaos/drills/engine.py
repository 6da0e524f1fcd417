"""Runs one drill against a stack: the phases of `chaos.drills.model`, timed on the drill clock, with
traffic recorded throughout, a real Prometheus evaluating the service's alert rules, and rollbacks that
always run. Produces a `DrillResult` with every measurement the report needs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
import httpx

from chaos.drills import probes
from chaos.drills.model import Drill, Observation, Probe
from chaos.drills.prometheus import AlertInterval, AlertWatcher, PrometheusServer
from chaos.drills.sev import Impact, Severity, classify
from chaos.drills.slo import BudgetUse, budget_use, objectives
from chaos.drills.traffic import DrillClock, Sample, TrafficRecorder
from chaos.stack import StackBackend

log = logging.getLogger("chaos.drills")
Progress = Callable[[str], None]
ALERT_TIMEOUT_S = 15.0
ALERTS_RESOLVED_TIMEOUT_S = 20.0


def drill_time(t: float, fault_injected: float | None) -> str:
    """How the console and the report name a moment on the drill clock: `T+1.23 s` from the fault injection
    (T0, the origin of every report time), or `t=5.86 s` since the drill started while no fault has been
    injected (yet), since T0 is not known then; the report prints both for every probe."""
    return f"T{t - fault_injected:+.2f} s" if fault_injected is not None else f"t={t:.2f} s"


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
class Durability:
    acknowledged: int
    missing: int
    duplicated: int
    partial_batches: int
    unacknowledged_batches: int

    @property
    def ok(self) -> bool:
        return self.missing == 0 and self.duplicated == 0 and self.partial_batches == 0


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

    def first_alert(self) -> tuple[float, str] | None:
        """Fault injected → first alert firing. Symptom alerts count first: window and burn-rate alerts also
        fire on errors from before the fault (an earlier drill's), so they count only when nothing else fired."""
        start, _ = self.fault_window
        fired = [a for a in self.alerts if a.fired_at >= start and a.kind == "symptom"]
        fired = fired or [a for a in self.alerts if a.fired_at >= start]
        if not fired:
            return None
        first = min(fired, key=lambda a: a.fired_at)
        return first.fired_at - start, first.name

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


class DrillContext:
    """What a drill's actions and probes can use."""

    def __init__(
        self,
        drill: Drill,
        stack: StackBackend,
        clock: DrillClock,
        traffic: TrafficRecorder,
        alerts: AlertWatcher | None,
        result: DrillResult,
        progress: Progress,
    ) -> None:
        self.drill = drill
        self.stack = stack
        self.clock = clock
        self.traffic = traffic
        self.alerts = alerts
        self.result = result
        self.progress = progress
        self.state: dict[str, Any] = {}  # scratch space shared by a drill's actions

    @property
    def base_url(self) -> str:
        return self.stack.api_url

    @property
    def auth(self) -> dict[str, str]:
        return {"X-API-Key": self.stack.api_key}

    @contextlib.contextmanager
    def client(self, timeout: float = 5.0) -> Iterator[httpx.Client]:
        with httpx.Client(base_url=self.base_url, timeout=timeout) as client:
            yield client

    def record(self, line: str) -> None:
        """A line of the drill's action record (the release drills' 롤백/재배포 기록), timestamped."""
        t = self.clock.now()
        self.result.notes.append(f"{self.clock.wall(t):%H:%M:%S.%f}"[:-3] + f" UTC: {line}")
        self.progress(f"  {self.result.time_label(t):>9}  {line}")

    def mark(self, name: str) -> float:
        t = self.clock.now()
        self.result.marks[name] = t
        origin = f" (T0 = t={t:.2f} s on the drill clock)" if name == "fault injected" else ""
        self.progress(f"  {self.result.time_label(t):>9}  {name}{origin}")
        return t

    def await_probe(self, probe: Probe, phase: str) -> ProbeOutcome:
        """Observe until the tolerance is met or the probe's timeout passes; journal every attempt."""
        deadline = time.monotonic() + probe.timeout_s
        attempts = 0
        while True:
            attempts += 1
            t = self.clock.now()
            try:
                observation = probe.observe(self)
            except (httpx.HTTPError, OSError) as error:
                observation = Observation(False, None, f"{type(error).__name__}: {error}")
            self.result.journal.append(
                JournalEntry(
                    t,
                    self.clock.wall(t).isoformat(),
                    phase,
                    probe.name,
                    observation.ok,
                    _jsonable(observation.value),
                    observation.detail,
                )
            )
            if observation.ok or time.monotonic() >= deadline:
                outcome = ProbeOutcome(
                    phase,
                    probe.name,
                    probe.tolerance,
                    observation.ok,
                    t if observation.ok else None,
                    attempts,
                    observation,
                )
                self.result.outcomes.append(outcome)
                return outcome
            time.sleep(probe.interval_s)


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return str(value)


def _expect(ctx: DrillContext, probe: Probe, phase: str) -> bool:
    outcome = ctx.await_probe(probe, phase)
    mark = "✓" if outcome.met else "✗"
    when = ctx.result.time_label(outcome.at) if outcome.at is not None else f"not within {probe.timeout_s:.0f}s"
    ctx.progress(f"    {mark} [{phase}] {probe.name}: {when} ({outcome.last.detail})")
    if not outcome.met:
        ctx.result.failures.append(
            f"{phase}: probe '{probe.name}' not met ({probe.tolerance}); last: {outcome.last.detail}"
        )
    return outcome.met


async def _check_durability(
    database_url: str, source: str, acknowledged: list[str], unacknowledged: list[list[str]]
) -> Durability:
    connection = await asyncpg.connect(database_url, timeout=10)
    try:
        rows = await connection.fetch("SELECT id::text AS id FROM events WHERE source = $1", source)
    finally:
        await connection.close()
    stored = Counter(row["id"] for row in rows)
    missing = sum(1 for event_id in acknowledged if stored[event_id] == 0)
    duplicated = sum(count - 1 for count in stored.values() if count > 1)
    partial = sum(1 for batch in unacknowledged if 0 < sum(1 for i in batch if stored[i]) < len(batch))
    return Durability(len(acknowledged), missing, duplicated, partial, len(unacknowledged))


def _service_identity(stack: StackBackend) -> tuple[str | None, str | None]:
    with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
        live = httpx.get(f"{stack.api_url}/health/live", timeout=3).json()
        ready = httpx.get(f"{stack.api_url}/health/ready", timeout=3).json()
        return live.get("version"), ready.get("schema_revision")
    return None, None


def run_drill(
    drill: Drill, stack: StackBackend, *, prometheus: PrometheusServer | None, progress: Progress = print
) -> DrillResult:
    """Run one drill; `prometheus` (already scraping the stack's service) measures alerts, None skips them."""
    clock = DrillClock()
    version, schema = _service_identity(stack)
    result = DrillResult(drill=drill, started_at=clock.wall_zero, version=version, schema_revision=schema)
    source = f"drill-{drill.name}-{uuid.uuid4().hex[:8]}"
    traffic = TrafficRecorder(stack.api_url, stack.api_key, clock, source=source)
    watcher: AlertWatcher | None = None
    ctx = DrillContext(drill, stack, clock, traffic, None, result, progress)
    removed = True
    progress(f"▶ {drill.name}: {drill.title}")
    try:
        if prometheus is not None:
            watcher = AlertWatcher(prometheus, clock).start()
            ctx.alerts = watcher
            result.alerts_watched = True
        if drill.setup is not None:
            drill.setup(ctx)
        traffic.start()
        steady = probes.steady_state(with_alerts=watcher is not None) + drill.steady_state_extra
        if not all(_expect(ctx, probe, "steady state") for probe in steady):
            result.failures.insert(0, "steady state was not met before the fault; nothing was injected")
            return result
        ctx.mark("fault injected")
        removed = False
        drill.inject(ctx)
        for probe in drill.expected:
            _expect(ctx, probe, "under fault")
        if drill.during_fault is not None:
            drill.during_fault(ctx)
        for alert in drill.expected_alerts if watcher is not None else ():
            _expect(ctx, probes.alert_firing(alert, ALERT_TIMEOUT_S), "under fault")
        time.sleep(drill.dwell_s)
        if drill.mitigation.apply is not None:
            ctx.mark("mitigation applied")
            drill.mitigation.apply(ctx)
            for probe in drill.mitigation.verify:
                _expect(ctx, probe, "mitigation")
        ctx.mark("fault removed")
        drill.remove(ctx)
        removed = True
        if all(_expect(ctx, probe, "recovery") for probe in probes.steady_state(with_alerts=False)):
            ctx.mark("steady state restored")
        if watcher is not None and _expect(ctx, probes.symptom_alerts_resolved(ALERTS_RESOLVED_TIMEOUT_S), "recovery"):
            ctx.mark("alerts resolved")
    except Exception as error:  # a broken drill is a failed drill, with its rollbacks still run
        log.exception("drill %s failed with an error", drill.name)
        result.failures.append(f"drill error: {type(error).__name__}: {error}")
    finally:
        _rollback(ctx, removed)
        traffic.stop()
        if watcher is not None:
            watcher.stop()
            result.alerts = watcher.snapshot()
        result.samples = traffic.samples()
    start, end = result.fault_window
    start = min(start, result.marks.get("rollout started", start))  # a bad release serves while it rolls out
    server_errors = [
        s
        for s in result.samples
        if s.status >= 500 and s.status != 503 and not (drill.server_errors_expected and start <= s.t < end)
    ]
    if server_errors:
        first = server_errors[0]
        result.failures.append(
            f"{len(server_errors)} answers were 5xx other than 503 (first: {first.kind} {first.status} {first.code} "
            f"at {result.time_label(first.t)}): a fault must never surface as a 500"
        )
    try:
        result.durability = asyncio.run(
            _check_durability(
                stack.database_url, source, traffic.writes.acknowledged, traffic.writes.unacknowledged_batches
            )
        )
        if not result.durability.ok:
            result.failures.append(
                f"durability: {result.durability.missing} acknowledged events missing, "
                f"{result.durability.duplicated} duplicated, {result.durability.partial_batches} partial batches"
            )
    except (OSError, asyncpg.PostgresError) as error:
        result.failures.append(f"durability could not be checked: {error}")
    verdict = "PASSED" if result.passed else "FAILED"
    progress(f"◀ {drill.name}: {verdict}" + (f" — {result.failures[0]}" if result.failures else ""))
    return result


def _rollback(ctx: DrillContext, removed: bool) -> None:
    """Remove the fault if it is still in place, then run the drill's rollbacks; failures are reported."""
    actions = ([] if removed else [ctx.drill.remove]) + list(ctx.drill.rollbacks)
    for action in actions:
        try:
            action(ctx)
        except Exception as error:
            ctx.result.failures.append(f"rollback {getattr(action, '__name__', action)} failed: {error}")
    if not removed:
        ctx.result.notes.append("the fault was removed by the rollback after the drill failed")
