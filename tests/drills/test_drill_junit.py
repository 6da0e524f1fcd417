"""A drill run's JUnit XML (`<run dir>/junit.xml`, suite `runbook-drills`) and the exit codes of
`python -m chaos run` (the shared table, conformance.verdicts): the one verdict scheme of every harness."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest

from chaos.drills.catalog import DRILLS
from chaos.drills.report.junit import SUITE_NAME, Unfinished, write_run
from chaos.drills.result import DrillResult, NotApplicable
from chaos.drills.run import RunOutcome
from conformance.junit import CaseOutcome, ReadSuite, read
from conformance.verdicts import Exit
from tests.drills.drill_results import alert, drill, result
from tests.drills.test_targets_cli import chaos

HOSTILE = 'probe "<API read>" & ]]> not met: \x00\x1b[31m</failure><skipped/>'
TARGET = {"name": "local", "kind": "throwaway", "base_url": "http://127.0.0.1:18000"}


def _failed() -> DrillResult:
    failed = result("db-down", failing=1.0)
    failed.failures += ["under fault: " + HOSTILE, "durability: 2 acknowledged events missing"]
    return failed


def _aborted() -> DrillResult:
    aborted = result("redis-slow")
    aborted.aborted = "error budget consumed 6.1% > 5.0%"
    aborted.failures.insert(0, f"aborted: {aborted.aborted} — the fault was rolled back at once")
    return aborted


def _not_applicable() -> NotApplicable:
    return NotApplicable(drill("instance-killed"), frozenset({"replicas", "balancer-view"}), "local")


def _written(tmp_path: Path) -> ReadSuite:
    passed = result("redis-down", alerts=(alert("EventsApiRedisDown", "page", 1.5),))
    path = write_run(
        tmp_path,
        run_id="20261201T120000Z",
        started_at="2026-12-01T12:00:00+00:00",
        target=TARGET,
        results=[passed, _failed(), _aborted()],
        not_applicable=[_not_applicable()],
        durations={"redis-down": 31.25},
    )
    assert path == tmp_path / "junit.xml"
    [suite] = read(path)
    return suite


def test_one_case_per_drill_with_its_requirements_and_verdict(tmp_path: Path) -> None:
    suite = _written(tmp_path)
    assert suite.name == SUITE_NAME
    assert suite.timestamp == "2026-12-01T12:00:00+00:00"
    cases = {case.name: case for case in suite.cases}
    assert list(cases) == ["redis-down", "db-down", "redis-slow", "instance-killed"]
    assert {case.classname for case in suite.cases} == {"drills"}
    assert [cases[name].outcome for name in cases] == [
        CaseOutcome.PASSED,
        CaseOutcome.FAILED,
        CaseOutcome.ABORTED,
        CaseOutcome.NOT_APPLICABLE,
    ]
    for name, case in cases.items():
        assert case.requirements == drill(name).requirements
        assert "RB-INC-SEV" in case.requirements, "every drill exercises the incident process"
    assert cases["redis-slow"].message.startswith("aborted: error budget consumed 6.1% > 5.0%")
    assert cases["instance-killed"].message == "not applicable: local lacks balancer-view, replicas"


def test_xml_hostile_failure_text_survives(tmp_path: Path) -> None:
    failed = {case.name: case for case in _written(tmp_path).cases}["db-down"]
    readable = HOSTILE.replace("\x00", "\ufffd").replace("\x1b", "\ufffd")  # what XML 1.0 cannot carry
    assert failed.message == "; ".join(_failed().failures).replace(HOSTILE, readable)
    assert "durability: 2 acknowledged events missing" in failed.message


def test_the_suite_says_what_ran_where_and_the_cases_carry_the_figures(tmp_path: Path) -> None:
    suite = _written(tmp_path)
    properties = suite.properties
    assert re.fullmatch(r"[0-9a-f]{40}|unknown", properties["commit"]), properties
    assert properties["dirty"] in ("true", "false")
    assert properties["version"]
    assert (properties["target"], properties["target_kind"]) == ("local", "throwaway")
    assert properties["target_base_url"] == "http://127.0.0.1:18000"
    assert properties["run_id"] == "20261201T120000Z"
    # The reader keeps the requirement IDs; the figures are the testcase's other properties.
    root = ET.parse(tmp_path / "junit.xml").getroot()  # noqa: S314 - the file this test wrote
    testcase = root.find("testsuite/testcase[@name='redis-down']")
    assert testcase is not None
    assert testcase.get("time") == "31.250"
    figures = {p.get("name"): p.get("value") for p in testcase.findall("properties/property")}
    expected = result("redis-down", alerts=(alert("EventsApiRedisDown", "page", 1.5),))
    assert figures["figure:severity"] == expected.severity().level
    assert figures["figure:mttd_alert_s"] == "1.5"
    assert figures["figure:first_alert"] == "EventsApiRedisDown"
    assert figures["figure:mttr_s"] == "0.4"
    assert float(figures["figure:mttd_signal_s"] or "nan") >= 0
    unmeasured = root.find("testsuite/testcase[@name='db-down']")
    assert unmeasured is not None
    assert float(unmeasured.get("time") or 0) > 0, "without a measured duration, the drill clock's span"
    suite_element = root.find("testsuite")
    assert suite_element is not None
    assert (suite_element.get("tests"), suite_element.get("failures")) == ("4", "1")
    assert (suite_element.get("errors"), suite_element.get("skipped")) == ("1", "1")


def test_a_drill_the_run_stopped_in_or_could_not_start_is_not_lost(tmp_path: Path) -> None:
    db_down = drill("db-down")
    write_run(
        tmp_path,
        run_id="r",
        started_at="2026-12-01T12:00:00+00:00",
        target=TARGET,
        results=[],
        unfinished=[
            Unfinished(db_down, CaseOutcome.ABORTED, "interrupted (Ctrl-C or SIGTERM): the fault was rolled back", 3.0),
            Unfinished(drill("redis-down"), CaseOutcome.ERROR, "could not run: port 5432 taken"),
        ],
    )
    [suite] = read(tmp_path / "junit.xml")
    assert [(c.name, c.outcome) for c in suite.cases] == [
        ("db-down", CaseOutcome.ABORTED),
        ("redis-down", CaseOutcome.ERROR),
    ]
    assert suite.cases[0].requirements == db_down.requirements
    assert suite.cases[1].message == "could not run: port 5432 taken"


@pytest.mark.parametrize(
    ("results", "changes", "expected"),
    [
        (lambda: [result("redis-down")], {}, Exit.OK),
        (lambda: [result("redis-down"), _failed()], {}, Exit.FAILED),
        (lambda: [result("redis-down"), _aborted()], {}, Exit.ABORTED),
        (lambda: [_failed(), _aborted()], {}, Exit.FAILED),  # a failure is news whatever else happened
        (lambda: [result("redis-down")], {"interrupted": True}, Exit.ABORTED),
        (lambda: [], {"interrupted": True}, Exit.ABORTED),
        (lambda: [], {"not_applicable": [_not_applicable()]}, Exit.COULD_NOT_RUN),
        (lambda: [], {"could_not_run": "the service did not become ready"}, Exit.COULD_NOT_RUN),
    ],
    ids=["passed", "failed", "aborted", "failed-and-aborted", "interrupted", "interrupted-first", "nothing", "down"],
)
def test_a_run_exits_with_the_shared_table(results: object, changes: dict[str, object], expected: Exit) -> None:
    assert callable(results)
    outcome = replace(RunOutcome("r", Path("r"), results()), **changes)  # type: ignore[arg-type]
    assert outcome.exit_status is expected


def test_chaos_run_help_shows_the_shared_table() -> None:
    shown = chaos("run", "--help")
    assert shown.returncode == 0, shown.stderr
    assert "  5  aborted: stopped before its verdict" in shown.stdout
    assert "  3  could not run" in shown.stdout
    assert "5 aborted: interrupted (Ctrl-C, SIGTERM) or a drill" in shown.stdout
    assert "130" not in shown.stdout


def test_a_run_where_nothing_applies_writes_every_drill_skipped(tmp_path: Path) -> None:
    run = chaos("run", "instance-*", "--report-dir", str(tmp_path), "--no-prometheus")
    assert run.returncode == Exit.COULD_NOT_RUN, run.stdout + run.stderr
    [junit] = tmp_path.glob("*/junit.xml")
    assert f"junit: {junit}" in run.stdout
    [suite] = read(junit)
    assert [(c.name, c.outcome) for c in suite.cases] == [
        ("instance-killed", CaseOutcome.NOT_APPLICABLE),
        ("instance-partitioned", CaseOutcome.NOT_APPLICABLE),
    ]
    assert all(c.message.startswith("not applicable: local lacks") for c in suite.cases)


@pytest.mark.integration
def test_a_real_run_of_one_drill_writes_its_junit(tmp_path: Path) -> None:
    """`python -m chaos run db-down` on its own throwaway stack (the cheapest drill: seconds of fault)."""
    run = chaos("run", "db-down", "--no-prometheus", "--report-dir", str(tmp_path), timeout=600)
    assert run.returncode == Exit.OK, run.stdout[-4000:] + run.stderr[-4000:]
    [junit] = tmp_path.glob("*/junit.xml")
    assert f"junit: {junit}" in run.stdout
    [suite] = read(junit)
    assert suite.name == "runbook-drills"
    assert suite.properties["run_id"] == junit.parent.name
    assert suite.properties["target"] == "local"
    assert suite.properties["target_base_url"].startswith("http://127.0.0.1:")
    [case] = [c for c in suite.cases if c.outcome is not CaseOutcome.NOT_APPLICABLE]
    assert (case.name, case.outcome) == ("db-down", CaseOutcome.PASSED)
    assert case.requirements == next(d for d in DRILLS if d.name == "db-down").requirements
    assert len(suite.cases) == 1, "only db-down was selected"
