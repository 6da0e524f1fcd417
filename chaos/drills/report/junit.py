"""A drill run as JUnit XML (`<run dir>/junit.xml`, suite `runbook-drills`): the one verdict scheme CI systems
and the evidence matrix (conformance.evidence) read for every harness.

One testcase per drill, classname `drills`, named after the drill, carrying the drill's requirement IDs: a
passed drill is a plain testcase; a failed one has `<failure>` with its failures joined; a drill stopped by
its abort condition or by Ctrl-C/SIGTERM has `<error type="aborted">`; a drill the run could not start (the
stack or target did not come up) has `<error>`; a drill the target cannot run is `<skipped>` — never a pass.
Its figures (MTTD, first alert, MTTR, SEV) are testcase properties, as strings, under the same `figure:` prefix
the conformance suite records its figures with.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chaos.drills.model import Drill
from chaos.drills.report.history import history_record
from chaos.drills.result import DrillResult, NotApplicable
from conformance.junit import FIGURE_PREFIX, Case, CaseOutcome, Suite, write
from conformance.provenance import current

SUITE_NAME = "runbook-drills"
CLASSNAME = "drills"
FILE_NAME = "junit.xml"

# history_record's figures that a testcase carries, in this order.
FIGURES = ("severity", "mttd_signal_s", "mttd_alert_s", "first_alert", "mttr_s", "alerts_resolved_s", "budget_consumed")


@dataclass(frozen=True, slots=True)
class Unfinished:
    """A drill that has no result: interrupted while it ran (its result is lost with the interruption) or never
    started because the stack or target could not."""

    drill: Drill
    outcome: CaseOutcome  # ABORTED or ERROR
    message: str
    time_s: float = 0.0


def _figures(result: DrillResult) -> dict[str, str]:
    record = history_record(result, run_id="")
    return {f"{FIGURE_PREFIX}{name}": str(record[name]) for name in FIGURES if record.get(name) is not None}


def drill_case(result: DrillResult, time_s: float) -> Case:
    if result.aborted is not None:
        outcome = CaseOutcome.ABORTED
    elif result.passed:
        outcome = CaseOutcome.PASSED
    else:
        outcome = CaseOutcome.FAILED
    return Case(
        classname=CLASSNAME,
        name=result.drill.name,
        time_s=time_s,
        outcome=outcome,
        requirements=result.drill.requirements,
        message="; ".join(result.failures),
        properties=_figures(result),
    )


def not_applicable_case(skipped: NotApplicable) -> Case:
    return Case(
        classname=CLASSNAME,
        name=skipped.drill.name,
        time_s=0.0,
        outcome=CaseOutcome.NOT_APPLICABLE,
        requirements=skipped.drill.requirements,
        message=f"{skipped.target} lacks {', '.join(sorted(skipped.missing))}",  # junit writes "not applicable: "
    )


def unfinished_case(unfinished: Unfinished) -> Case:
    drill = unfinished.drill
    return Case(CLASSNAME, drill.name, unfinished.time_s, unfinished.outcome, drill.requirements, unfinished.message)


def _drill_time(result: DrillResult) -> float:
    """A hand-built result's duration: the last moment its clock recorded (a run measures the wall time)."""
    moments = [*result.marks.values(), *(s.t for s in result.samples), *(e.t for e in result.journal)]
    return max(moments, default=0.0)


def write_run(
    directory: Path,
    *,
    run_id: str,
    started_at: str,
    target: Mapping[str, Any],
    results: Sequence[DrillResult],
    not_applicable: Sequence[NotApplicable] = (),
    unfinished: Sequence[Unfinished] = (),
    durations: Mapping[str, float] | None = None,
) -> Path:
    """Write `directory/junit.xml` for one drill run; cases in catalog order as the run met them: the drills
    that ran, then the one the run stopped in (or those it could not start), then the ones not applicable."""
    provenance = current()
    properties = {
        "commit": provenance.commit,
        "dirty": str(provenance.dirty).lower(),
        "version": provenance.version,
        "target": str(target.get("name", "")),
        "target_kind": str(target.get("kind", "")),
        "target_base_url": str(target.get("base_url") or ""),
        "lanes": str(target.get("lanes", 1)),  # stacks side by side (chaos.drills.lanes); base_url is the first's
        "run_id": run_id,
    }
    times = durations or {}
    cases = [drill_case(result, times.get(result.drill.name, _drill_time(result))) for result in results]
    cases += [unfinished_case(item) for item in unfinished]
    cases += [not_applicable_case(skipped) for skipped in not_applicable]
    return write(directory / FILE_NAME, Suite(SUITE_NAME, started_at, properties), cases)
