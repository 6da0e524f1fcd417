"""Run a set of drills on one stack and write everything a game-day review needs: per-drill reports,
timelines and journals, the resiliency matrix, a summary, and the history with its trends."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from chaos.drills.engine import Pace, run_drill
from chaos.drills.lanes import MAX_LANES, DrillQueue, LaneRecord, OpenLane, Prometheus, default_lanes, run_lanes
from chaos.drills.model import Drill
from chaos.drills.prometheus import PrometheusServer
from chaos.drills.prometheus_api import PrometheusAPI
from chaos.drills.report import history, incident, junit, matrix
from chaos.drills.report.timeline import draw_timeline
from chaos.drills.result import DrillResult, NotApplicable
from chaos.drills.safeguards import Interruption, sigterm_interrupts
from chaos.lifecycle import ServerError, free_port
from chaos.stack import Backend, make_stack, resolve_backend
from chaos.stack.base import Capability, StackBackend
from chaos.targets.catalog import BUILTIN, open_target
from chaos.targets.catalog import offered as catalog_offered
from chaos.targets.spec import TargetSpec
from conformance.junit import CaseOutcome
from conformance.verdicts import Exit

Progress = Callable[[str], None]

# The stack drills run on: the service's defaults, spelled out where a drill changes them and rolls them
# back; a short drain so rollouts are quick; Redis recovery noticed within a quarter second.
DRILL_SERVICE_ENV = {
    "MAX_REQUEST_BODY_BYTES": "1048576",
    "INGEST_MAX_BATCH_ITEMS": "1000",
    "DRAIN_DELAY_S": "0.5",
    # Low enough that the overload drill's spiking client is throttled within its bounded burst, high enough
    # for the steady traffic (2 ingest requests per second from another principal).
    "RATE_LIMIT_WRITE": "300/minute",
    "RATE_LIMIT_PROBE_INTERVAL_S": "0.25",
}


@dataclass
class RunOutcome:
    run_id: str
    directory: Path
    results: list[DrillResult]
    not_applicable: list[NotApplicable] = field(default_factory=list)
    interrupted: bool = False
    could_not_run: str | None = None  # why the stack or target did not come up (then no drill ran)
    junit: Path | None = None  # <directory>/junit.xml, once written

    @property
    def passed(self) -> bool:
        """Every drill that ran passed, and at least one ran: a run where nothing applied proves nothing."""
        return bool(self.results) and all(result.passed for result in self.results) and not self.interrupted

    @property
    def failed(self) -> list[str]:
        """The drills that ran to their verdict and failed (an aborted drill has no verdict: see `aborted`)."""
        return [result.drill.name for result in self.results if not result.passed and result.aborted is None]

    @property
    def aborted(self) -> list[str]:
        """The drills an abort condition stopped (each rolled back at once)."""
        return [result.drill.name for result in self.results if result.aborted is not None]

    @property
    def exit_status(self) -> Exit:
        """The shared table's code (conformance.verdicts) for this run: a failed drill is news whatever else
        happened (1); else a run interrupted or a drill aborted is 5; else a run where nothing ran — nothing
        applied, or the stack or target could not start — is 3; else every drill that ran passed (0)."""
        if self.failed:
            return Exit.FAILED
        if self.interrupted or self.aborted:
            return Exit.ABORTED
        if self.could_not_run is not None or not self.results:
            return Exit.COULD_NOT_RUN
        return Exit.OK


def summary_lines(results: list[DrillResult], not_applicable: Sequence[NotApplicable] = ()) -> list[str]:
    """The run's table. `alert` is the first alert as measured; `prod-eq` is it × the clock factor of the rules
    that fired it (chaos.drills.alert_clock), the production-equivalent, equal to `alert` on production-timed
    rules; a footnote names the factor."""
    lines = [
        f"{'drill':22} {'verdict':7} {'SEV':5} {'MTTD':>7} {'alert':>7} {'prod-eq':>7} {'MTTR':>7} {'budget':>8}"
        "  first alert"
    ]
    factors: set[int] = set()
    for result in results:
        detection = result.first_failure_signal()
        alert = result.first_alert()
        production = result.first_alert_production_equivalent()
        factors |= {production[1]} if production is not None else set()
        recovery = result.recovery_s()
        lines.append(
            f"{result.drill.name:22} {'PASSED' if result.passed else 'FAILED':7} {result.severity().level:5} "
            f"{(f'{detection[0]:.2f}s' if detection else '—'):>7} {(f'{alert[0]:.2f}s' if alert else '—'):>7} "
            f"{(f'{production[0]:.1f}s' if production else '—'):>7} "
            f"{(f'{recovery:.2f}s' if recovery is not None else '—'):>7} "
            f"{result.budget().availability_consumed:8.3%}  {alert[1] if alert else '—'}"
        )
    for skipped in not_applicable:
        lines.append(f"{skipped.drill.name:22} {'n/a':7} {skipped.reason}")
    for factor in sorted(factors - {1}):
        lines.append(
            f"alert: on the drill clock (rules with every interval, window and for: ÷{factor}: "
            f"service/alerts/events-api.drill.rules.yml); prod-eq: alert ×{factor}, on production timing"
        )
    return lines


def _summary_markdown(outcome: RunOutcome, target: TargetSpec) -> str:
    lines = [
        f"# Game-day drill run {outcome.run_id}",
        "",
        f"Target: **{target.name}** ({target.kind}) — {target.description}",
        "",
        "```",
        *summary_lines(outcome.results, outcome.not_applicable),
        "```",
        "",
    ]
    for result in outcome.results:
        status = "PASSED" if result.passed else "FAILED: " + "; ".join(result.failures)
        lines.append(f"- [{result.drill.name}]({result.drill.name}/report.md) — {status}")
    for skipped in outcome.not_applicable:
        lines.append(f"- {skipped.drill.name} — NOT APPLICABLE: {skipped.reason}")
    lines += ["", "Resiliency matrix: [resiliency-matrix.md](resiliency-matrix.md)", ""]
    return "\n".join(lines)


def applicable(
    drills: list[Drill], offered: frozenset[Capability], target: str
) -> tuple[list[Drill], list[NotApplicable]]:
    """The drills the target can run, and those it cannot (with what is missing), in catalog order."""
    runnable, skipped = [], []
    for drill in drills:
        missing = drill.requires - offered
        if missing:
            skipped.append(NotApplicable(drill, frozenset(missing), target))
        else:
            runnable.append(drill)
    return runnable, skipped


def target_facts(target: TargetSpec, stack: StackBackend) -> dict[str, Any]:
    """What a report says about the target: its name and kind, where it answers, and for a fleet the image
    and the replicas."""
    facts: dict[str, Any] = {"name": target.name, "kind": target.kind, "base_url": stack.api_url}
    if target.kind == "throwaway":
        facts["backend"] = target.backend
    if stack.supports("replicas"):
        fleet = stack.fleet()
        replicas = fleet.replicas()
        facts |= {"image": fleet.image, "replicas": len(replicas), "replica_names": [r.name for r in replicas]}
    return facts


def _prometheus_for(
    target: TargetSpec, stack: StackBackend, resources: contextlib.ExitStack, progress: Progress
) -> PrometheusServer | PrometheusAPI:
    if target.kind == "deployment":
        if target.prometheus_url is None:
            raise ValueError(f"target {target.name} names no prometheus_url (use --no-prometheus to run without)")
        remote = PrometheusAPI(target.prometheus_url, clock_factor=target.alert_clock_factor)
        if not remote.ready():
            # Not a usage error: the target is configured, its Prometheus does not answer (could not run, 3).
            raise ServerError(f"target {target.name}: Prometheus at {target.prometheus_url} is not ready")
        pace = "production timing" if target.alert_clock_factor == 1 else f"a clock ×{target.alert_clock_factor}"
        progress(f"prometheus: the target's own, {target.prometheus_url}, its rules on {pace}")
        return remote
    return _throwaway_prometheus(stack.api_url, resources, progress)


def _throwaway_prometheus(api_url: str, resources: contextlib.ExitStack, progress: Progress) -> PrometheusServer:
    """One Prometheus for the run: its first scrape comes about 5 s after it starts (its target discovery sends
    its first update on a 5 s tick; docs/BENCHMARKS.md), so a throwaway one is started before the stack, on the
    port the service will take, and that wait passes while the stack starts."""
    prometheus = resources.enter_context(PrometheusServer(api_url))
    progress(
        f"prometheus: {prometheus.url} scraping {api_url} every {prometheus.scrape_interval}, evaluating "
        f"service/alerts/{prometheus.rules.name} (production timing ÷{prometheus.clock_factor})"
    )
    return prometheus


def _host_port(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}"


def _lane_count(
    asked: int | None,
    runnable: list[Drill],
    stack: StackBackend | None,
    target: TargetSpec,
    chosen: tuple[Backend, str] | None,
    pace: Pace | None,
) -> int:
    """How many lanes: `asked`, else the default for a local throwaway run, else one. Lanes are throwaway
    local stacks: a given stack or a deployment is one target, the Docker backend's lanes are not proven here,
    an operator mitigates one drill at a time, and a held fault is for people to watch as it happens (a lane
    prints a drill's lines only when it ends)."""
    why_one = (
        "a stack given by the caller is one stack"
        if stack is not None
        else f"target {target.name} is one deployment"
        if target.kind != "throwaway"
        else "the Docker backend runs one lane"
        if chosen is not None and chosen[0] != "local"
        else "--operator mitigates one drill at a time"
        if pace is not None and pace.operator is not None
        else "--hold keeps each fault for people to watch, one at a time"
        if pace is not None and pace.hold_s > 0
        else None
    )
    if asked is not None:
        if not 1 <= asked <= MAX_LANES:
            raise ValueError(f"lanes: {asked} is not between 1 and {MAX_LANES}")
        if asked > 1 and why_one is not None:
            raise ValueError(f"lanes: {asked} asked, but {why_one}")
        return asked
    return 1 if why_one is not None else default_lanes(len(runnable), os.cpu_count() or 1)


def _lane_opener(
    target: TargetSpec,
    stack: StackBackend | None,
    chosen: tuple[Backend, str] | None,
    with_prometheus: bool,
) -> OpenLane:
    """What opens a lane: the given stack, the deployment target, or a throwaway stack of its own (with its
    Prometheus started first, on the port the service will take)."""

    def open_lane(resources: contextlib.ExitStack, progress: Progress) -> tuple[StackBackend, Prometheus | None]:
        prometheus: Prometheus | None = None
        lane_stack = stack
        if lane_stack is None and chosen is not None:
            api_port = free_port()  # the service's, known before it starts: Prometheus can start first
            if with_prometheus:
                prometheus = _throwaway_prometheus(f"http://127.0.0.1:{api_port}", resources, progress)
            progress(f"starting the stack on {chosen[1]}: PostgreSQL, Redis, fault proxy, service with 2 workers")
            lane_stack = resources.enter_context(
                make_stack(
                    chosen[0],
                    workers=2,
                    api_port=api_port,
                    service_env=DRILL_SERVICE_ENV,
                    progress=lambda line: progress(f"  {line}"),
                )
            )
        elif lane_stack is None:
            progress(f"target {target.name}: {target.base_url} ({target.description})")
            lane_stack = resources.enter_context(
                open_target(target, service_env=DRILL_SERVICE_ENV, progress=lambda line: progress(f"  {line}"))
            )
        if isinstance(prometheus, PrometheusServer) and prometheus.target != _host_port(lane_stack.api_url):
            prometheus.close()  # the backend put the service elsewhere than asked: scrape where it is
            prometheus = None
        if prometheus is None and with_prometheus:
            prometheus = _prometheus_for(target, lane_stack, resources, progress)
        return lane_stack, prometheus

    return open_lane


def run_drills(
    drills: list[Drill],
    *,
    report_dir: Path,
    stack: StackBackend | None = None,
    progress: Progress = print,
    with_prometheus: bool = True,
    backend: str | None = None,
    target: TargetSpec | None = None,
    pace: Pace | None = None,
    lanes: int | None = None,
) -> RunOutcome:
    """Run `drills` on `stack`, or on `target` (a throwaway stack of their own by default: `backend` local,
    docker or auto). Drills the target cannot run are reported not applicable, never run and never passed.
    `lanes` throwaway local stacks run the drills side by side (chaos.drills.lanes; default: up to
    DEFAULT_LANES on 2 or more CPUs; one on a given stack, a deployment, Docker, with an operator or a hold).
    Ctrl-C and SIGTERM stop the run after the current drills' rollbacks; what ran is still reported."""
    started = datetime.now(UTC)
    run_id = started.strftime("%Y%m%dT%H%M%SZ")
    directory = report_dir / run_id
    if target is None and stack is None:
        target = BUILTIN[resolve_backend(backend)[0]]
    elif target is None:  # a stack the caller started (tests): a throwaway target of its own
        target = TargetSpec("given stack", "throwaway", None, f"a {type(stack).__name__} started by the caller")
    offered = stack.capabilities if stack is not None else catalog_offered(target)
    runnable, skipped = applicable(drills, offered, target.name)
    for not_run in skipped:
        progress(f"– {not_run.drill.name}: {not_run.reason}")
    chosen: tuple[Backend, str] | None = None
    if stack is None and runnable and target.kind == "throwaway":
        chosen = resolve_backend(backend or target.backend)
    count = _lane_count(lanes, runnable, stack, target, chosen, pace)
    open_lane = _lane_opener(target, stack, chosen, with_prometheus)

    def run_one(
        drill: Drill,
        lane_stack: StackBackend,
        prometheus: Prometheus | None,
        lane_progress: Progress,
        interruption: Interruption | None,
    ) -> DrillResult:
        facts = target_facts(target, lane_stack)
        return run_drill(
            drill,
            lane_stack,
            prometheus=prometheus,
            progress=lane_progress,
            pace=pace,
            target=facts,
            interruption=interruption,
        )

    def report(result: DrillResult) -> None:
        drill_dir = directory / result.drill.name
        incident.write_reports(result, drill_dir, draw_timeline(result, drill_dir / "timeline.png"))

    queue = DrillQueue(runnable, count)
    records: list[LaneRecord] = []
    with sigterm_interrupts():
        try:
            if runnable:
                if count > 1:
                    progress(f"{count} lanes side by side, each a stack and a Prometheus of its own")
                records = run_lanes(count, queue, open_lane, run_one, report, progress)
        except KeyboardInterrupt:
            records.append(LaneRecord(interrupted=True))
            progress("interrupted: stopping")
    results = [result for _, result in sorted(pair for record in records for pair in record.results)]
    durations = {name: took for record in records for name, took in record.durations.items()}
    unfinished = [case for record in records for case in record.unfinished]
    interrupted = any(record.interrupted for record in records)
    opened = [record for record in records if record.could_not_run is None]
    could_not_run = None if opened or not records else records[0].could_not_run
    left = queue.drain()
    if could_not_run is not None:
        unfinished += [junit.Unfinished(d, CaseOutcome.ERROR, f"could not run: {could_not_run}") for d in left]
    elif len(opened) < len(records):
        progress(f"{len(records) - len(opened)} of {len(records)} lanes could not start: the others ran the drills")
    base_url = next((record.base_url for record in records if record.base_url), target.base_url)
    outcome = RunOutcome(run_id, directory, results, skipped, interrupted, could_not_run)
    directory.mkdir(parents=True, exist_ok=True)
    outcome.junit = junit.write_run(
        directory,
        run_id=run_id,
        started_at=started.replace(microsecond=0).isoformat(),
        target={"name": target.name, "kind": target.kind, "base_url": base_url, "lanes": count},
        results=results,
        not_applicable=skipped,
        unfinished=unfinished,
        durations=durations,
    )
    history_file = report_dir / "history.jsonl"
    history.append(history_file, [history.history_record(result, run_id) for result in results])
    rows = matrix.build(results)
    matrix.write(rows, directory)
    (directory / "summary.md").write_text(_summary_markdown(outcome, target), encoding="utf-8")
    (directory / "summary.json").write_text(
        json.dumps(
            [history.history_record(result, run_id) | {"failures": result.failures} for result in results]
            + [
                {"drill": s.drill.name, "run_id": run_id, "verdict": "NOT APPLICABLE", "reason": s.reason}
                for s in skipped
            ],
            indent=2,
            ensure_ascii=False,
        )
    )
    progress("")
    for line in summary_lines(results, skipped):
        progress(line)
    progress("")
    progress(matrix.render_markdown(rows))
    progress("trends (from " + str(history_file) + "):")
    for line in history.trends(history.load(history_file)):
        progress("  " + line)
    progress(f"\nreports: {directory}")
    progress(f"junit: {outcome.junit}")
    return outcome
