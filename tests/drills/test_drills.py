"""The drill engine itself: a violated expectation fails the drill and names the probe, rollbacks always
run, and a real drill run writes the runbook's report, timeline, journal, history and matrix."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from chaos.drills import probes
from chaos.drills.actions import proxy_down, restore_dependencies
from chaos.drills.catalog import DRILLS, select
from chaos.drills.engine import run_drill
from chaos.drills.model import Drill, DrillContext, Mitigation
from chaos.drills.prometheus import PrometheusServer
from chaos.drills.run import DRILL_SERVICE_ENV, run_drills
from chaos.stack.local import LocalStack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(workers=2, service_env=DRILL_SERVICE_ENV) as running:
        yield running


@pytest.fixture(scope="module")
def prometheus(stack: LocalStack) -> Iterator[PrometheusServer]:
    with PrometheusServer(stack.api_url) as server:
        yield server


def _proxy_enabled(stack: LocalStack, name: str) -> bool:
    return stack.proxy(name).enabled  # type: ignore[arg-type]


def _drill(**changes: object) -> Drill:
    inject, remove = proxy_down("postgres")
    base = Drill(
        name="test-db-down",
        title="test / database down",
        scenario="db",
        requirements=("RB-DB-FAILFAST",),
        description="test drill",
        inject=inject,
        remove=remove,
        expected=(probes.ready_degraded("database"),),
        mitigation=Mitigation("automatic", "none"),
        suspected_cause="test",
        confirmed_cause="test",
        follow_up=(),
        rollbacks=(restore_dependencies,),
        dwell_s=0.2,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_a_violated_expectation_fails_the_drill_and_names_the_probe(stack: LocalStack) -> None:
    wrong = replace(probes.api_ok("read"), timeout_s=2)  # under a database outage reads cannot succeed
    result = run_drill(_drill(expected=(wrong,)), stack, prometheus=None, progress=lambda _: None)
    assert not result.passed
    assert any("under fault: probe 'API read succeeds' not met" in failure for failure in result.failures)
    unmet = [o for o in result.outcomes if o.phase == "under fault" and not o.met]
    assert [o.probe for o in unmet] == ["API read succeeds"]
    assert unmet[0].attempts > 1, "the probe was retried until its timeout"
    assert _proxy_enabled(stack, "postgres"), "the fault was removed"
    assert httpx.get(f"{stack.api_url}/health/ready", timeout=5).status_code in (200, 503)


def test_rollbacks_run_when_the_drill_itself_breaks(stack: LocalStack) -> None:
    def inject_then_break(ctx: DrillContext) -> None:
        ctx.stack.proxy("postgres").disable()
        raise RuntimeError("the drill broke after injecting")

    result = run_drill(_drill(inject=inject_then_break), stack, prometheus=None, progress=lambda _: None)
    assert not result.passed
    assert any("drill error: RuntimeError" in failure for failure in result.failures)
    assert _proxy_enabled(stack, "postgres"), "rolled back although the drill failed"
    assert "the fault was removed by the rollback after the drill failed" in result.notes


def test_the_dwell_keeps_the_fault_until_the_clients_met_it(stack: LocalStack) -> None:
    """The dwell is a bounded wait for a state, not a hold after the last probe: the fault stays in place
    `dwell_s` from its injection and until a read and a write of the clients' traffic were answered under it."""
    result = run_drill(_drill(dwell_s=1.5), stack, prometheus=None, progress=lambda _: None)
    assert result.passed, result.failures
    injected, removed = result.marks["fault injected"], result.marks["fault removed"]
    assert removed - injected >= 1.5
    under_fault = [s for s in result.samples if injected <= s.t < removed]
    for kind in ("read", "write"):
        answers = [s.status for s in under_fault if s.kind == kind]
        assert answers, f"no {kind} answered under the fault"
        assert 503 in answers, answers  # met the outage (the first may have left just before the proxy went down)
    assert not any(note.startswith("dwell:") for note in result.notes)


def test_every_drill_passes_and_writes_the_runbook_report(stack: LocalStack, tmp_path: Path) -> None:
    """The whole catalog on the embedded stack (the drills run in CI): DB, Redis, overload, release."""
    first = run_drills(select(["all"]), report_dir=tmp_path, stack=stack, progress=lambda _: None)
    assert {r.drill.name: r.failures for r in first.results if not r.passed} == {}
    db = first.directory / "db-down"
    markdown = (db / "report.md").read_text()
    headings = [line for line in markdown.splitlines() if line.startswith("## ")]
    assert headings[:5] == [
        "## 영향 / Impact",
        "## 원인 / Cause",
        "## 임시조치 / Mitigation",
        "## 복구검증 / Recovery verification",
        "## 후속조치 / Follow-up",
    ]
    for text in (
        "추정 / Suspected",
        "확정 / Confirmed",
        "Risk:",
        "심각도 / Severity: **SEV-",
        "영향 받은 버전",
        "간격 업데이트 / next update, every",
        "error budget consumed",
        "first alert firing (EventsApi",
    ):
        assert text in markdown, text
    data = json.loads((db / "report.json").read_text())
    assert data["severity"]["level"] in {"SEV-1", "SEV-2", "SEV-3"}
    assert data["sev_report"]["update_every_min"] in {15, 30, 60}
    assert data["recovery_verification"]["detection_signal_s"] is not None
    assert data["recovery_verification"]["detection_alert"] == "EventsApiDatabaseDown"
    assert data["recovery_verification"]["durability"]["missing"] == 0
    assert data["recovery_verification"]["durability"]["acknowledged"] > 0
    assert (db / "timeline.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    journal = json.loads((db / "journal.json").read_text())
    assert journal
    assert all(re.match(r"\d{4}-\d\d-\d\dT", entry["at"]) and "phase" in entry for entry in journal)
    assert "## 후속조치" in (first.directory / "redis-down" / "report.md").read_text()
    redis = json.loads((first.directory / "redis-down" / "report.json").read_text())
    symptom_pages = [
        a["name"]
        for a in redis["recovery_verification"]["alerts"]
        if a["fired_at"] >= 0 and a["severity"] == "page" and a["kind"] == "symptom"
    ]
    assert redis["severity"]["level"] != "SEV-3" or not symptom_pages, symptom_pages  # SEV-3 is a ticket
    assert "## 용량/성능 후속조치" in (first.directory / "overload-spike" / "report.md").read_text()
    release = (first.directory / "release-bad-code" / "report.md").read_text()
    assert "## 롤백/재배포 기록" in release
    assert "`python -m alembic downgrade -1`" in release
    assert (first.directory / "release-bad-code" / "CHANGELOG-entry.md").read_text().startswith("### Fixed")
    assert "configuration rollback first" in (first.directory / "release-bad-config" / "report.md").read_text()
    matrix = (first.directory / "resiliency-matrix.md").read_text()
    assert "| postgres | down | db-down |" in matrix
    assert "| redis | down | redis-down |" in matrix

    second = run_drills(select(["db-down"]), report_dir=tmp_path, stack=stack, progress=lambda _: None)
    history = [json.loads(line) for line in (tmp_path / "history.jsonl").read_text().splitlines()]
    assert [record["drill"] for record in history][-1] == "db-down"
    assert len(history) == len(first.results) + 1
    assert history[-1]["run"] == second.run_id


def test_the_catalog_has_each_scenario_and_unique_names() -> None:
    names = [drill.name for drill in DRILLS]
    assert len(names) == len(set(names))
    assert {drill.scenario for drill in DRILLS} >= {"db", "redis", "overload"}
    assert {
        "db-down",
        "db-refusing",
        "db-slow",
        "db-hung",
        "db-hung-sigstop",
        "db-crash-restart",
        "redis-down",
        "redis-slow",
        "redis-flapping",
        "overload-spike",
    } <= set(names)
    with pytest.raises(ValueError, match="unknown drill"):
        select(["no-such-drill"])
    assert [d.name for d in select(["release-*"])] == ["release-bad-config", "release-bad-code", "release-bad-image"]
    assert [d.name for d in select(["instance-*"])] == ["instance-killed", "instance-partitioned"]
    assert [d.name for d in select(["redis-down", "db-down"])] == ["db-down", "redis-down"]  # catalog order
