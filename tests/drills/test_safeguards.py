"""Game-day safeguards (RB-DRILL-TARGET): an abort condition stops the drill and rolls back at once, the report
says why; Ctrl-C and SIGTERM roll back too; `--hold` keeps the fault with progress."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from chaos.drills import probes
from chaos.drills.actions import proxy_down, restore_dependencies
from chaos.drills.engine import Pace, run_drill
from chaos.drills.model import AbortConditions, Drill, DrillContext, Mitigation, Observation, Probe
from chaos.drills.run import DRILL_SERVICE_ENV
from chaos.stack.local import LocalStack
from conformance.verdicts import Exit
from tests.drills.sigterm_run import sigterm_when

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(workers=1, service_env=DRILL_SERVICE_ENV) as running:
        yield running


def _drill(**changes: object) -> Drill:
    inject, remove = proxy_down("postgres")
    base = Drill(
        name="test-db-down",
        title="test / database down",
        scenario="db",
        requirements=("RB-DRILL-TARGET",),
        description="test drill",
        inject=inject,
        remove=remove,
        expected=(probes.ready_degraded("database"),),
        mitigation=Mitigation("automatic", "none"),
        suspected_cause="test",
        confirmed_cause="test",
        follow_up=(),
        rollbacks=(restore_dependencies,),
        dwell_s=10.0,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def _quiet(_: str) -> None:
    pass


def test_an_error_budget_beyond_the_bound_aborts_and_rolls_back_at_once(stack: LocalStack) -> None:
    drill = _drill(abort=AbortConditions(max_budget_consumed=0.0001))  # a second of outage is more than this
    started = time.monotonic()
    result = run_drill(drill, stack, prometheus=None, progress=_quiet)
    took = time.monotonic() - started
    assert result.aborted is not None
    assert result.aborted.startswith("error budget consumed")
    assert result.failures[0].startswith("aborted: error budget consumed")
    assert stack.proxy("postgres").enabled, "rolled back"
    assert "fault removed" not in result.marks  # the drill did not get to its own removal: the rollback did
    assert took < 10.0 + 20, took  # the 10 s dwell was cut short (a generous bound: this is not a timing test)


def test_a_failing_check_outside_the_drill_scope_aborts(stack: LocalStack) -> None:
    def redis_still_served(ctx: DrillContext) -> Observation:
        return Observation(False, None, "pretend the Redis path broke too")

    guard = Probe("Redis path unaffected", "rate_limit_backend=redis", redis_still_served)
    result = run_drill(_drill(abort=AbortConditions(guards=(guard,))), stack, prometheus=None, progress=_quiet)
    assert (
        result.aborted
        == "a check outside the drill's scope failed: Redis path unaffected (pretend the Redis path broke too)"
    )
    assert stack.proxy("postgres").enabled


def test_hold_keeps_the_fault_with_progress(stack: LocalStack) -> None:
    lines: list[str] = []
    result = run_drill(
        _drill(dwell_s=0.2), stack, prometheus=None, progress=lines.append, pace=Pace(hold_s=3, report_every_s=1)
    )
    assert result.passed, result.failures
    holding = [line for line in lines if "holding" in line]
    assert len(holding) >= 2, lines
    assert "API requests" in holding[0]
    assert result.marks["fault removed"] - result.marks["fault injected"] >= 3


def test_sigterm_during_a_drill_rolls_back_and_exits_aborted(tmp_path: Path) -> None:
    run = sigterm_when(
        ["db-down", "--hold", "60s", "--no-prometheus", "--report-dir", str(tmp_path)],
        lambda lines: "holding" in lines[-1],
    )
    text = run.text
    assert run.returncode == Exit.ABORTED, text
    assert "interrupted (Ctrl-C or SIGTERM): the fault was rolled back" in text
    assert "interrupted: the drill in progress was rolled back" in text


def test_operator_mode_measures_the_time_a_person_took_to_mitigate(stack: LocalStack) -> None:
    """A stand-in for the person on call (a thread) brings the database back 1.5 s after being paged."""
    from chaos.drills.operator import OperatorPrompt

    prompt = OperatorPrompt(timeout_s=30)

    def operator(ctx: DrillContext) -> float | None:
        timer = threading.Timer(1.5, lambda: stack.proxy("postgres").enable())
        timer.start()
        try:
            return prompt(ctx)
        finally:
            timer.cancel()

    operator_wait: Any = operator
    operator_wait.timeout_s = prompt.timeout_s
    lines: list[str] = []
    result = run_drill(
        _drill(dwell_s=0.2), stack, prometheus=None, progress=lines.append, pace=Pace(operator=operator_wait)
    )
    assert result.passed, result.failures
    took = result.measurements["operator_time_to_mitigate_s"]
    assert 1.5 <= took < 15, took
    assert any("OPERATOR" in line for line in lines)
    assert result.marks["operator mitigated"] > result.marks["operator paged"]


def test_operator_mode_rolls_back_when_nobody_mitigates_in_time(stack: LocalStack) -> None:
    from chaos.drills.operator import OperatorPrompt

    result = run_drill(
        _drill(dwell_s=0.2), stack, prometheus=None, progress=_quiet, pace=Pace(operator=OperatorPrompt(timeout_s=2))
    )
    assert not result.passed
    assert "operator: the mitigation was not applied within the time limit; rolled back" in result.failures
    assert stack.proxy("postgres").enabled
