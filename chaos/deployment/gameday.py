"""`make gameday-deployment` (`python -m chaos deployment gameday`): bring the local deployment up (production
compose + chaos overlay, the drill variant of the alert rules), run every drill that applies to it through its
target file, measure the balancer's hop, print the summary, and tear it all down — on success, failure, Ctrl-C
and SIGTERM alike."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from chaos.deployment.hop_cost import measure
from chaos.deployment.lifecycle import DEFAULT_PROJECT, deployment_down, deployment_up
from chaos.drills.catalog import select
from chaos.drills.fleet_watch import rotation_lags
from chaos.drills.gameday import write_gameday_page
from chaos.drills.run import RunOutcome, run_drills
from chaos.stack.fleet import Fleet
from chaos.targets.deployment import DeploymentTarget
from chaos.targets.spec import load_env_file, read_target

Progress = Callable[[str], None]


def rotation_figures(outcome: RunOutcome) -> list[str]:
    """The balancer's measured lag behind readiness, over every drill of the run."""
    outs = [lag.balancer_after_s for r in outcome.results for lag in rotation_lags(r.fleet) if lag.direction == "out"]
    ins = [lag.balancer_after_s for r in outcome.results for lag in rotation_lags(r.fleet) if lag.direction == "in"]

    def spread(values: list[float]) -> str:
        return f"{len(values)} times, {min(values):.2f}–{max(values):.2f} s" if values else "never observed"

    return [
        f"readiness 503 → balancer out of rotation: {spread(outs)}",
        f"readiness 200 → balancer back in rotation: {spread(ins)}",
    ]


def _hop(target_file: Path, progress: Progress) -> None:
    target = DeploymentTarget(read_target(target_file))
    with target:
        fleet: Fleet = target.fleet()
        replica = next((r for r in fleet.replicas() if r.url), None)
        if replica is None or replica.url is None:
            progress("balancer hop: no replica reachable directly; not measured")
            return
        progress(measure(target.api_url, replica.url, target.api_key).line())


def run_deployment_gameday(
    *, replicas: int, report_dir: Path, drills: list[str], project: str = DEFAULT_PROJECT, progress: Progress = print
) -> int:
    """0 when every applicable drill passed (and at least one ran), else 1."""
    started = time.monotonic()
    deployment_dir = report_dir / "deployment"
    deployment = deployment_up(
        replicas=replicas, project=project, report_dir=deployment_dir, progress=progress, alert_rules="drill"
    )
    try:
        load_env_file(deployment.env_file)
        target = read_target(deployment.target_file)
        outcome = run_drills(select(drills), report_dir=report_dir / "drills", target=target, progress=progress)
        progress("\n== deployment game day ==")
        for line in rotation_figures(outcome):
            progress(line)
        if not outcome.interrupted:
            _hop(deployment.target_file, progress)
        failed = [r.drill.name for r in outcome.results if not r.passed]
        progress(
            f"drills: {len(outcome.results) - len(failed)}/{len(outcome.results)} passed on {target.name} "
            f"({replicas} replicas, {deployment.image})"
            + (f"; {len(outcome.not_applicable)} not applicable" if outcome.not_applicable else "")
            + (f"; FAILED: {', '.join(failed)}" if failed else "")
            + f" — {outcome.directory / 'summary.md'}"
        )
        page, _ = write_gameday_page(
            outcome, report_dir, notes=[f"{replicas} replicas behind HAProxy, {deployment.image}"]
        )
        progress(f"report: {page}")
        return outcome.exit_status
    finally:
        deployment_down(project=project, report_dir=deployment_dir, progress=progress)
        progress(f"took {time.monotonic() - started:.0f} s")
