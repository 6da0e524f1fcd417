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
from typing import Any

import asyncpg
import httpx

from chaos.drills import probes
from chaos.drills.durability import check_durability
from chaos.drills.model import Drill, DrillContext, Observation, Probe
from chaos.drills.prometheus import AlertWatcher, PrometheusServer
from chaos.drills.result import DrillResult, JournalEntry, ProbeOutcome
from chaos.drills.traffic import DrillClock, TrafficRecorder
from chaos.stack.base import StackBackend

log = logging.getLogger("chaos.drills")
Progress = Callable[[str], None]
ALERT_TIMEOUT_S = 15.0
ALERTS_RESOLVED_TIMEOUT_S = 20.0


def await_probe(ctx: DrillContext, result: DrillResult, probe: Probe, phase: str) -> ProbeOutcome:
    """Observe until the tolerance is met or the probe's timeout passes; journal every attempt."""
    deadline = time.monotonic() + probe.timeout_s
    attempts = 0
    while True:
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
        time.sleep(probe.interval_s)


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
        for capability in sorted(drill.requires):
            stack.require(capability)  # NotCapable: a clear drill error, with the rollbacks still run
        if prometheus is not None:
            watcher = AlertWatcher(prometheus, clock).start()
            ctx.alerts = watcher
            result.alerts_watched = True
        if drill.setup is not None:
            drill.setup(ctx)
        traffic.start()
        steady = probes.steady_state(with_alerts=watcher is not None) + drill.steady_state_extra
        if not all(_expect(ctx, result, probe, "steady state") for probe in steady):
            result.failures.insert(0, "steady state was not met before the fault; nothing was injected")
            return result
        ctx.mark("fault injected")
        removed = False
        drill.inject(ctx)
        for probe in drill.expected:
            _expect(ctx, result, probe, "under fault")
        if drill.during_fault is not None:
            drill.during_fault(ctx)
        for alert in drill.expected_alerts if watcher is not None else ():
            _expect(ctx, result, probes.alert_firing(alert, ALERT_TIMEOUT_S), "under fault")
        time.sleep(drill.dwell_s)
        if drill.mitigation.apply is not None:
            ctx.mark("mitigation applied")
            drill.mitigation.apply(ctx)
            for probe in drill.mitigation.verify:
                _expect(ctx, result, probe, "mitigation")
        ctx.mark("fault removed")
        drill.remove(ctx)
        removed = True
        if all(_expect(ctx, result, probe, "recovery") for probe in probes.steady_state(with_alerts=False)):
            ctx.mark("steady state restored")
        if watcher is not None and _expect(
            ctx, result, probes.symptom_alerts_resolved(ALERTS_RESOLVED_TIMEOUT_S), "recovery"
        ):
            ctx.mark("alerts resolved")
    except Exception as error:  # a broken drill is a failed drill, with its rollbacks still run
        log.exception("drill %s failed with an error", drill.name)
        result.failures.append(f"drill error: {type(error).__name__}: {error}")
    finally:
        _rollback(ctx, result, removed)
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
