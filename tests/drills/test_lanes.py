"""Drills side by side (chaos.drills.lanes): the queue's order and its rule for a drill that runs alone, two
lanes on real stacks of their own, and Ctrl-C/SIGTERM rolling back every lane's drill."""

from __future__ import annotations

import socket
import threading
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from chaos.drills.catalog import DRILLS, select
from chaos.drills.lanes import DrillQueue
from chaos.drills.run import run_drills
from conformance.verdicts import Exit
from tests.drills.sigterm_run import sigterm_when

REPO = Path(__file__).resolve().parents[2]
LOCAL = [drill for drill in DRILLS if not drill.requires & {"balancer-view", "image-deploy"}]
BY_NAME = {drill.name: drill for drill in DRILLS}


def _names(queue: DrillQueue) -> list[str]:
    names = []
    while (taken := queue.try_take()) is not None:
        names.append(taken[1].name)
        queue.finished()
    return names


def test_lanes_take_the_drill_that_runs_alone_first_then_the_releases_then_the_longest_alert_waits() -> None:
    queue = DrillQueue(LOCAL, lanes=2)
    queue.lane_started()
    queue.lane_started()
    order = _names(queue)
    assert order[0] == "overload-spike"
    assert order[1:3] == ["release-bad-config", "release-bad-code"]
    # The Redis drills await EventsApiRedisDown (for: 2m in production), the database ones a 1m `for:`.
    assert order[3:6] == ["redis-down", "redis-slow", "redis-hung"]
    assert order[6:] == [d.name for d in LOCAL if d.scenario == "db"] + ["redis-flapping"]
    assert sorted(order) == sorted(d.name for d in LOCAL)


def test_one_lane_keeps_the_catalog_order() -> None:
    queue = DrillQueue(LOCAL, lanes=1)
    queue.lane_started()
    assert _names(queue) == [d.name for d in LOCAL]


def test_a_drill_that_runs_alone_waits_for_every_lane_to_be_up_and_nothing_starts_beside_it() -> None:
    alone, first, second = (BY_NAME[name] for name in ("overload-spike", "db-down", "db-hung"))
    queue = DrillQueue([first, alone, second], lanes=2)
    queue.lane_started()
    assert queue.try_take() is None  # the other lane is still starting its stack
    assert not queue.over
    queue.lane_started()
    taken = queue.try_take()
    assert taken is not None
    assert taken[1] is alone
    assert queue.try_take() is None  # nothing beside it
    queue.finished()
    assert [taken[1].name for taken in (queue.try_take(), queue.try_take()) if taken] == ["db-down", "db-hung"]
    assert queue.over


def test_a_drill_that_runs_alone_waits_for_the_other_lanes_drills_to_end() -> None:
    alone, ordinary = BY_NAME["overload-spike"], BY_NAME["db-down"]
    queue = DrillQueue([alone, ordinary], lanes=2)
    queue.lane_started()
    assert queue.try_take() is None
    queue.leave(busy=True)  # the second lane's stack could not start: it must not hold the first back
    taken = queue.try_take()
    assert taken is not None
    assert taken[1] is alone


def test_an_interrupted_queue_releases_every_waiting_lane() -> None:
    alone, ordinary = BY_NAME["overload-spike"], BY_NAME["db-down"]
    queue = DrillQueue([alone, ordinary], lanes=2)
    queue.lane_started()  # the other lane never comes up: the first waits in take()
    results: list[object] = []
    waiting = threading.Thread(target=lambda: results.append(queue.take()))
    waiting.start()
    queue.close()
    waiting.join(10)
    assert not waiting.is_alive()
    assert results == [None]
    assert queue.over


@pytest.mark.integration
def test_two_lanes_run_drills_side_by_side_each_on_a_stack_and_prometheus_of_its_own(tmp_path: Path) -> None:
    lines: list[str] = []
    outcome = run_drills(
        select(["db-refusing", "db-crash-restart"]), report_dir=tmp_path, lanes=2, progress=lines.append
    )
    assert outcome.passed, "\n".join(lines)
    assert [r.drill.name for r in outcome.results] == ["db-refusing", "db-crash-restart"]  # catalog order
    assert len({r.target["base_url"] for r in outcome.results}) == 2  # a stack each
    assert all(r.first_alert() is not None for r in outcome.results)  # a Prometheus each, alerts measured
    # Each drill's lines are one block: nothing of the other lane between its start and its verdict.
    text = "\n".join(lines)
    for name, other in (("db-refusing", "db-crash-restart"), ("db-crash-restart", "db-refusing")):
        block = text[text.index(f"▶ {name}:") : text.index(f"◀ {name}:")]
        assert other not in block
    assert any(line.startswith("[lane 2] ") for line in lines)
    suite = ET.parse(outcome.junit or "").getroot().find("testsuite")  # noqa: S314 - the run's own report
    assert suite is not None
    properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert properties["lanes"] == "2"
    assert (outcome.directory / "db-crash-restart" / "timeline.png").is_file()


@pytest.mark.integration
def test_sigterm_rolls_back_the_drill_of_every_lane_and_stops_their_stacks(tmp_path: Path) -> None:
    run = sigterm_when(
        ["db-hung", "redis-hung", "--lanes", "2", "--report-dir", str(tmp_path)],
        lambda lines: sum("▶" in line and line.rstrip().endswith("started") for line in lines) == 2,
    )
    text = run.text
    assert run.returncode == Exit.ABORTED, text
    assert text.count("interrupted (Ctrl-C or SIGTERM): the fault was rolled back") == 2, text
    cases = ET.parse(next(tmp_path.glob("*/junit.xml"))).getroot().iter("testcase")  # noqa: S314 - the run's
    aborted = sorted(
        case.get("name") or ""
        for case in cases
        if (error := case.find("error")) is not None and error.get("type") == "aborted"
    )
    assert aborted == ["db-hung", "redis-hung"]
    # Every lane's PostgreSQL and Redis are gone with the run.
    ups = [line.split(": up on 127.0.0.1:")[1] for line in run.lines if ": up on 127.0.0.1:" in line]
    ports = [int(up.split(";")[0].split()[0]) for up in ups]
    assert len(ports) == 4, text
    for port in ports:
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still answers"
