"""Run a set of drills on one stack and write everything a game-day review needs: per-drill reports,
timelines and journals, the resiliency matrix, a summary, and the history with its trends."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from chaos.drills.engine import run_drill
from chaos.drills.model import Drill
from chaos.drills.prometheus import PrometheusServer
from chaos.drills.report import history, incident, matrix
from chaos.drills.report.timeline import draw_timeline
from chaos.drills.result import DrillResult
from chaos.stack import make_stack, resolve_backend
from chaos.stack.base import StackBackend

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

    @property
    def passed(self) -> bool:
        return all(result.passed for result in self.results)


def summary_lines(results: list[DrillResult]) -> list[str]:
    lines = [f"{'drill':18} {'verdict':7} {'SEV':5} {'MTTD':>7} {'alert':>7} {'MTTR':>7} {'budget':>8}  first alert"]
    for result in results:
        detection = result.first_failure_signal()
        alert = result.first_alert()
        recovery = result.recovery_s()
        lines.append(
            f"{result.drill.name:18} {'PASSED' if result.passed else 'FAILED':7} {result.severity().level:5} "
            f"{(f'{detection[0]:.2f}s' if detection else '—'):>7} {(f'{alert[0]:.2f}s' if alert else '—'):>7} "
            f"{(f'{recovery:.2f}s' if recovery is not None else '—'):>7} "
            f"{result.budget().availability_consumed:8.3%}  {alert[1] if alert else '—'}"
        )
    return lines


def _summary_markdown(outcome: RunOutcome) -> str:
    lines = [f"# Game-day drill run {outcome.run_id}", "", "```", *summary_lines(outcome.results), "```", ""]
    for result in outcome.results:
        status = "PASSED" if result.passed else "FAILED: " + "; ".join(result.failures)
        lines.append(f"- [{result.drill.name}]({result.drill.name}/report.md) — {status}")
    lines += ["", "Resiliency matrix: [resiliency-matrix.md](resiliency-matrix.md)", ""]
    return "\n".join(lines)


def run_drills(
    drills: list[Drill],
    *,
    report_dir: Path,
    stack: StackBackend | None = None,
    progress: Progress = print,
    with_prometheus: bool = True,
    backend: str | None = None,
) -> RunOutcome:
    """Run `drills` on `stack`, or on a stack of their own (`backend`: local, docker or auto)."""
    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    directory = report_dir / run_id
    results: list[DrillResult] = []
    with contextlib.ExitStack() as resources:
        if stack is None:
            chosen, reason = resolve_backend(backend)
            progress(f"starting the stack on {reason}: PostgreSQL, Redis, fault proxy, service with 2 workers")
            stack = resources.enter_context(
                make_stack(
                    chosen, workers=2, service_env=DRILL_SERVICE_ENV, progress=lambda line: progress(f"  {line}")
                )
            )
        prometheus = None
        if with_prometheus:
            # One Prometheus for the run: its first scrape comes seconds after it starts (docs/BENCHMARKS.md).
            prometheus = resources.enter_context(PrometheusServer(stack.api_url))
            progress(
                f"prometheus: {prometheus.url} scraping {stack.api_url} every 1 s, evaluating "
                "service/alerts/events-api.rules.yml"
            )
        for drill in drills:
            result = run_drill(drill, stack, prometheus=prometheus, progress=progress)
            drill_dir = directory / drill.name
            picture = draw_timeline(result, drill_dir / "timeline.png")
            incident.write_reports(result, drill_dir, picture)
            results.append(result)
    outcome = RunOutcome(run_id, directory, results)
    history_file = report_dir / "history.jsonl"
    history.append(history_file, [history.history_record(result, run_id) for result in results])
    rows = matrix.build(results)
    matrix.write(rows, directory)
    (directory / "summary.md").write_text(_summary_markdown(outcome), encoding="utf-8")
    (directory / "summary.json").write_text(
        json.dumps(
            [history.history_record(result, run_id) | {"failures": result.failures} for result in results],
            indent=2,
            ensure_ascii=False,
        )
    )
    progress("")
    for line in summary_lines(results):
        progress(line)
    progress("")
    progress(matrix.render_markdown(rows))
    progress("trends (from " + str(history_file) + "):")
    for line in history.trends(history.load(history_file)):
        progress("  " + line)
    progress(f"\nreports: {directory}")
    return outcome
