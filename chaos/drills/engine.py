"""Runs one drill against a stack: the phases of `chaos.drills.model`, timed on the drill clock, with
traffic recorded throughout, a real Prometheus evaluating the service's alert rules, and rollbacks that
always run. Produces a `chaos.drills.result.DrillResult` with every measurement the report needs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import asyncpg
import httpx

from chaos.drills import probes
from chaos.drills.alert_clock import DRILL_FACTOR
from chaos.drills.durability import check_durability
from chaos.drills.fleet_watch import FleetWatcher
from chaos.drills.model import Drill, DrillAborted, DrillContext, Observation, Probe
from chaos.drills.prometheus import AlertWatcher, PrometheusServer
from chaos.drills.prometheus_api import PrometheusAPI
from chaos.drills.result import DrillResult, JournalEntry, ProbeOutcome
from chaos.drills.safeguards import AbortMonitor, Interruption
from chaos.drills.traffic import DrillClock, Sample, TrafficRecorder
from chaos.stack.base import StackBackend
from conformance.tls import shared_tls_context

log = logging.getLogger("chaos.drills")
Progress = Callable[[str], None]
ALERT_TIMEOUT_S = 15.0
ALERTS_RESOLVED_TIMEOUT_S = 20.0
HOLD_MARGIN_S = 120.0  # beyond --hold (and --operator's wait): time to observe before and recover after
# How long the dwell waits past `Drill.dwell_s` for the clients' traffic to be answered under the fault: a read
# and a write to a hung dependency answer within the service's own bounds (DB_REQUEST_TIMEOUT_S, 2 s).
DWELL_TRAFFIC_TIMEOUT_S = 10.0


def await_probe(ctx: DrillContext, result: DrillResult, probe: Probe, phase: str) -> ProbeOutcome:
    """Observe until the tolerance is met or the probe's timeout passes; journal every attempt."""
    deadline = time.monotonic() + probe.timeout_s
    attempts = 0
    while True:
        ctx.check_abort()
        attempts += 1
        t = ctx.clock.now()
        try:
            observation = probe.observe(ctx)
        except (httpx.HTTPError, OSError) as error:
            observation = Observation(False, None, f"{type(error).__name__}: {error}")
        result.journal.append(
            JournalEntry(
                t,
                ctx.clock.wall(t).isoformat(),
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
            result.outcomes.append(outcome)
            return outcome
        ctx.wait(probe.interval_s)


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return str(value)


def _expect(ctx: DrillContext, result: DrillResult, probe: Probe, phase: str) -> bool:
    outcome = await_probe(ctx, result, probe, phase)
    mark = "✓" if outcome.met else "✗"
    when = result.time_label(outcome.at) if outcome.at is not None else f"not within {probe.timeout_s:.0f}s"
    ctx.progress(f"    {mark} [{phase}] {probe.name}: {when} ({outcome.last.detail})")
    if not outcome.met:
        result.failures.append(
            f"{phase}: probe '{probe.name}' not met ({probe.tolerance}); last: {outcome.last.detail}"
        )
    return outcome.met


def _service_identity(stack: StackBackend) -> tuple[str | None, str | None]:
    with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
        live = httpx.get(f"{stack.api_url}/health/live", timeout=3, verify=shared_tls_context()).json()
        ready = httpx.get(f"{stack.api_url}/health/ready", timeout=3, verify=shared_tls_context()).json()
        return live.get("version"), ready.get("schema_revision")
    return None, None


@dataclass(frozen=True)
class Pace:
    """How long a fault stays in place: the drill's own dwell, or a game day's `--hold` (live progress every
    `report_every_s` for the people watching dashboards), or `--operator` (a person applies the mitigation)."""

    hold_s: float = 0.0
    report_every_s: float = 5.0
    operator: OperatorWait | None = None


class OperatorWait(Protocol):
    timeout_s: float

    def __call__(self, ctx: DrillContext) -> float | None:
        """Wait for the person to mitigate; the seconds it took, or None when the time limit passed."""


def _hold(ctx: DrillContext, seconds: float, every_s: float) -> None:
    """Keep the fault in place for `seconds`, printing what the traffic and the alerts show as it goes."""
    started = ctx.clock.now()
    while (left := seconds - (ctx.clock.now() - started)) > 0:
        ctx.wait(min(every_s, left))
        since = ctx.clock.now() - every_s
        recent = [s for s in ctx.traffic.samples(since=since) if s.kind in ("read", "write")]
        failed = sum(1 for s in recent if s.status >= 500 or s.status == 0)
        firing = ", ".join(ctx.alerts.firing()) if ctx.alerts is not None else "not watched"
        held = ctx.clock.now() - started
        ctx.progress(
            f"    … holding {held:4.0f}/{seconds:.0f} s: last {every_s:.0f} s {len(recent)} API requests, "
            f"{failed} failed; alerts firing: {firing or 'none'}"
        )


def _dwell(ctx: DrillContext, dwell_s: float) -> None:
    """Keep the fault in place until its impact is measured: `dwell_s` since it was injected (the probes and
    alerts awaited so far count towards it), and until the clients' traffic has had a read and a write sent
    under the fault answered, so the report's impact rests on requests that met it. A bounded wait for that
    state, not a fixed hold after the last probe: a drill whose alerts took seconds to fire is already past it."""
    injected = ctx.result.marks.get("fault injected", ctx.clock.now())
    deadline = injected + dwell_s + DWELL_TRAFFIC_TIMEOUT_S

    def answered(kind: str) -> bool:
        return bool(ctx.traffic.samples(kind, since=injected))

    while ctx.clock.now() < deadline:
        held = ctx.clock.now() - injected
        if held >= dwell_s and answered("read") and answered("write"):
            return
        ctx.wait(max(0.05, min(0.1, dwell_s - held)))
    ctx.result.notes.append(
        f"dwell: no read and write answered under the fault within {dwell_s + DWELL_TRAFFIC_TIMEOUT_S:.0f} s "
        "of its injection; the impact rests on the probes alone"
    )


def run_drill(
    drill: Drill,
    stack: StackBackend,
    *,
    prometheus: PrometheusServer | PrometheusAPI | None,
    progress: Progress = print,
    pace: Pace | None = None,
    target: dict[str, Any] | None = None,
    interruption: Interruption | None = None,
) -> DrillResult:
    """Run one drill; `prometheus` (scraping the target's service) measures alerts, None skips them.

    Ctrl-C (and SIGTERM, inside `chaos.drills.safeguards.sigterm_interrupts`) stops the drill, rolls back, and
    is raised again once the result is complete; outside the main thread, `interruption` brings it."""
    pace = pace or Pace()
    clock = DrillClock()
    version, schema = _service_identity(stack)
    result = DrillResult(drill=drill, started_at=clock.wall_zero, version=version, schema_revision=schema)
    result.target = dict(target or {})
    source = f"drill-{drill.name}-{uuid.uuid4().hex[:8]}"
    traffic = TrafficRecorder(stack.api_url, stack.api_key, clock, source=source)
    watcher: AlertWatcher | None = None
    fleet_watcher: FleetWatcher | None = None
    monitor: AbortMonitor | None = None
    interrupted: KeyboardInterrupt | None = None
    ctx = DrillContext(drill, stack, clock, traffic, None, result, progress)
    operator_s = pace.operator.timeout_s if pace.operator is not None else 0.0
    ctx.time_limit_s = max(drill.abort.max_duration_s, pace.hold_s + operator_s + HOLD_MARGIN_S)
    removed = True
    progress(f"▶ {drill.name}: {drill.title}")
    if interruption is not None:
        interruption.watch(ctx)
    try:
        for capability in sorted(drill.requires):
            stack.require(capability)  # NotCapable: a clear drill error, with the rollbacks still run
        if prometheus is not None:
            watcher = AlertWatcher(prometheus, clock).start()
            ctx.alerts = watcher
            result.alerts_watched = True
        if stack.supports("balancer-view"):
            fleet_watcher = FleetWatcher(clock, stack.fleet()).start()
            ctx.state["fleet_watcher"] = fleet_watcher
        if drill.setup is not None:
            drill.setup(ctx)
        traffic.start()
        steady = probes.steady_state(with_alerts=watcher is not None) + drill.steady_state_extra
        if not all(_expect(ctx, result, probe, "steady state") for probe in steady):
            result.failures.insert(0, "steady state was not met before the fault; nothing was injected")
            return result
        injected_at = ctx.mark("fault injected")
        monitor = AbortMonitor(ctx, injected_at).start()
        removed = False
        drill.inject(ctx)
        for probe in drill.expected:
            _expect(ctx, result, probe, "under fault")
        if drill.during_fault is not None:
            drill.during_fault(ctx)
        # Rules on a slower clock than the drill variant's (a deployment's production rules) fire that much
        # later: their alerts are awaited only after a --hold, with timeouts scaled to their clock.
        scale = DRILL_FACTOR / watcher.clock_factor if watcher is not None else 1.0
        expected_alerts = drill.expected_alerts if watcher is not None else ()
        if scale == 1:
            for alert in expected_alerts:
                _expect(ctx, result, probes.alert_firing(alert, ALERT_TIMEOUT_S), "under fault")
        if pace.hold_s > drill.dwell_s:
            _hold(ctx, pace.hold_s, pace.report_every_s)
        else:
            _dwell(ctx, drill.dwell_s)
        if scale != 1 and expected_alerts and pace.hold_s > 0:
            for alert in expected_alerts:
                _expect(ctx, result, probes.alert_firing(alert, ALERT_TIMEOUT_S * scale), "under fault")
        elif scale != 1 and expected_alerts:
            result.notes.append(
                f"expected alerts ({', '.join(expected_alerts)}) not awaited: the target's rules run at production "
                f"pace (their for: up to {scale:.0f}× the drill variant's); hold the fault (--hold "
                f"{ALERT_TIMEOUT_S * scale:.0f}s) to see them fire"
            )
        if pace.operator is not None:
            ctx.mark("operator paged")
            took = pace.operator(ctx)
            if took is None:
                result.failures.append("operator: the mitigation was not applied within the time limit; rolled back")
            else:
                result.measurements["operator_time_to_mitigate_s"] = round(took, 2)
                ctx.mark("operator mitigated")
        if drill.mitigation.apply is not None:
            ctx.mark("mitigation applied")
            drill.mitigation.apply(ctx)
            for probe in drill.mitigation.verify:
                _expect(ctx, result, probe, "mitigation")
        ctx.mark("fault removed")
        monitor.stop()
        if "operator mitigated" in result.marks:
            try:  # the person may have removed the fault themselves: what is left of it goes now
                drill.remove(ctx)
            except Exception as error:
                result.notes.append(f"the fault was already gone when the drill removed it ({error})")
        else:
            drill.remove(ctx)
        removed = True
        if all(_expect(ctx, result, probe, "recovery") for probe in probes.steady_state(with_alerts=False)):
            ctx.mark("steady state restored")
        for probe in drill.recovery_extra:
            _expect(ctx, result, probe, "recovery")
        if watcher is not None and _expect(
            ctx, result, probes.symptom_alerts_resolved(ALERTS_RESOLVED_TIMEOUT_S * scale), "recovery"
        ):
            ctx.mark("alerts resolved")
    except DrillAborted as aborted:
        result.aborted = str(aborted)
        result.failures.insert(0, f"aborted: {aborted} — the fault was rolled back at once")
    except KeyboardInterrupt as interrupt:
        interrupted = interrupt
        result.aborted = "interrupted (Ctrl-C or SIGTERM)"
        result.failures.insert(0, "interrupted (Ctrl-C or SIGTERM): the fault was rolled back")
    except Exception as error:  # a broken drill is a failed drill, with its rollbacks still run
        log.exception("drill %s failed with an error", drill.name)
        result.failures.append(f"drill error: {type(error).__name__}: {error}")
    finally:
        if monitor is not None:
            monitor.stop()
        if interruption is not None:
            interruption.unwatch(ctx)
        ctx.clear_abort()  # the rollbacks must not be aborted themselves
        _rollback(ctx, result, removed)
        traffic.stop()
        if watcher is not None:
            watcher.stop()
            result.alerts = watcher.snapshot()
        if fleet_watcher is not None:
            fleet_watcher.stop()
            result.fleet = fleet_watcher.transitions()
        result.samples = traffic.samples()
    _judge_client_failures(drill, result)
    try:
        result.durability = asyncio.run(
            check_durability(
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
    if interrupted is not None:
        raise interrupted
    return result


def _rollback(ctx: DrillContext, result: DrillResult, removed: bool) -> None:
    """Remove the fault if it is still in place, then run the drill's rollbacks; failures are reported."""
    actions = ([] if removed else [ctx.drill.remove]) + list(ctx.drill.rollbacks)
    for action in actions:
        try:
            action(ctx)
        except Exception as error:
            result.failures.append(f"rollback {getattr(action, '__name__', action)} failed: {error}")
    if not removed:
        result.notes.append("the fault was removed by the rollback after the drill failed")


def _failed(sample: Sample) -> bool:
    return sample.status >= 500 or sample.status == 0


def _judge_client_failures(drill: Drill, result: DrillResult) -> None:
    """What the clients saw against what the drill allows (`Drill.client_failures`)."""
    start, end = result.fault_window
    start = min(start, result.marks.get("rollout started", start))  # a bad release serves while it rolls out
    if drill.client_failures == "unavailable":
        server_errors = [
            s
            for s in result.samples
            if s.status >= 500 and s.status != 503 and not (drill.server_errors_expected and start <= s.t < end)
        ]
        if server_errors:
            first = server_errors[0]
            result.failures.append(
                f"{len(server_errors)} answers were 5xx other than 503 (first: {first.kind} {first.status} "
                f"{first.code} at {result.time_label(first.t)}): a fault must never surface as a 500"
            )
        return
    since = result.marks.get("fault injected", 0.0)
    # The clients' requests: the recorder's own readiness and liveness polls watch the target, they are not
    # client traffic (a draining replica's readiness 503 is how it leaves rotation).
    after = [s for s in result.samples if s.t >= since and s.kind in ("read", "write")]
    failed = [s for s in after if _failed(s) and not (drill.server_errors_expected and start <= s.t < end)]
    result.measurements["client_requests"] = len(after)
    result.measurements["client_failures"] = len(failed)
    if drill.client_failures == "in-flight":
        killing, killed = result.marks.get("killing replica"), result.marks.get("replica killed")
        if killing is None or killed is None:
            result.failures.append("the drill never marked the kill, so requests in flight cannot be told apart")
            return
        in_flight = [s for s in failed if s.t <= killed and s.t + s.latency_s >= killing]
        result.measurements["failed_in_flight"] = len(in_flight)
        failed = [s for s in failed if s not in in_flight]
    if failed:
        first = failed[0]
        allowed = "requests in flight on the killed replica" if drill.client_failures == "in-flight" else "none"
        result.failures.append(
            f"{len(failed)} client requests failed (first: {first.kind} {first.status or 'no answer'} "
            f"{first.code or ''} at {result.time_label(first.t)}); allowed: {allowed}"
        )
