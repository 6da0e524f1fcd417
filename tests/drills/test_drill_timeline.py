"""The drill's times and picture tell one story: the console and the report name the same probe with the same
time (T from the fault injection, t on the drill clock before it), and the timeline's legend lists exactly what
is drawn, every vertical line included."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import matplotlib.pyplot as plt
import pytest
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from chaos.drills.engine import _expect
from chaos.drills.model import DrillContext, Observation, Probe
from chaos.drills.report.incident import render_markdown
from chaos.drills.report.timeline import FAULT_COLOUR, MITIGATION_COLOUR, build_figure
from chaos.drills.result import drill_time
from chaos.drills.traffic import DrillClock
from tests.drills.drill_results import alert, result


def test_drill_time_names_T_from_the_fault_and_t_before_it() -> None:
    assert drill_time(5.856, 6.03) == "T-0.17 s"
    assert drill_time(6.27, 6.03) == "T+0.24 s"
    assert drill_time(5.856, None) == "t=5.86 s"


def _probe(name: str) -> Probe:
    return Probe(name, "always met", lambda ctx: Observation(True, 200, "ok"))


def test_the_console_and_the_report_give_a_probe_the_same_time() -> None:
    drill_result = result("redis-down")
    drill_result.marks.clear()
    console: list[str] = []
    ctx = DrillContext(drill_result.drill, None, DrillClock(), None, None, drill_result, console.append)  # type: ignore[arg-type]
    _expect(ctx, drill_result, _probe("steady probe"), "steady state")
    ctx.mark("fault injected")
    _expect(ctx, drill_result, _probe("fault probe"), "under fault")
    steady, fault = drill_result.outcomes
    assert steady.at is not None
    assert fault.at is not None
    injected = drill_result.marks["fault injected"]

    printed_steady = next(line for line in console if "steady probe" in line)
    printed_fault = next(line for line in console if "fault probe" in line)
    assert drill_time(steady.at, None) in printed_steady  # before T0 exists, the console prints t
    assert "T" not in printed_steady.split("steady probe")[1].split("(")[0]
    assert drill_time(fault.at, injected) in printed_fault
    assert any(f"fault injected (T0 = t={injected:.2f} s" in line for line in console)

    table = render_markdown(drill_result, None).splitlines()
    rows = {line.split(" | ")[3]: line for line in table if "probe |" in line}
    # the report's row for each probe holds the very strings the console printed, and T for the steady one
    assert drill_time(steady.at, None) in rows["steady probe"]
    assert drill_time(steady.at, injected) in rows["steady probe"]
    assert rows["steady probe"].split(" | ")[0] == f"| {drill_time(steady.at, injected)}"
    assert drill_time(fault.at, injected) in rows["fault probe"]


@pytest.fixture
def figures() -> Iterator[list[Figure]]:
    made: list[Figure] = []
    yield made
    for figure in made:
        plt.close(figure)


def _legend_texts(figure: Figure) -> list[str]:
    return [text.get_text() for legend in figure.legends for text in legend.get_texts()]


def _vertical_lines(figure: Figure) -> list[Line2D]:
    return [
        line
        for axis in figure.axes
        for line in axis.get_lines()
        if len(xs := list(line.get_xdata())) == 2 and xs[0] == xs[1]  # type: ignore[arg-type]
    ]


def _spans(figure: Figure, colour: str) -> list[Any]:
    wanted = to_rgb(colour)
    return [
        patch
        for axis in figure.axes
        for patch in axis.patches
        if isinstance(patch, Rectangle) and patch.get_facecolor()[:3] == pytest.approx(wanted)
    ]


def test_without_a_mitigation_step_the_legend_has_no_mitigation_band(figures: list[Figure]) -> None:
    figure = build_figure(result("redis-down", alerts=(alert("EventsApiRedisDown", "ticket", 0.3),)))
    figures.append(figure)
    texts = _legend_texts(figure)
    assert not any("mitigation" in text for text in texts), texts
    assert not _spans(figure, MITIGATION_COLOUR)
    assert "fault in place" in texts
    assert _spans(figure, FAULT_COLOUR)


def test_a_mitigation_band_is_drawn_and_listed(figures: list[Figure]) -> None:
    figure = build_figure(result("overload-spike", mitigation=True))
    figures.append(figure)
    assert "mitigation in force" in _legend_texts(figure)
    assert len(_spans(figure, MITIGATION_COLOUR)) == 3  # across all three panels


def test_every_vertical_line_is_a_labelled_mark_in_the_legend(figures: list[Figure]) -> None:
    drill_result = result("overload-spike", mitigation=True)
    figure = build_figure(drill_result)
    figures.append(figure)
    lines = _vertical_lines(figure)
    assert len(lines) == 3 * len(drill_result.marks)
    labels = {str(line.get_label()) for line in lines}
    assert labels == set(drill_result.marks)
    texts = _legend_texts(figure)
    for name, t in drill_result.marks.items():
        assert f"{name} ({t - drill_result.marks['fault injected']:+.2f} s)" in texts
    styles = {(line.get_color(), line.get_linestyle()) for line in lines}
    assert len(styles) == len(drill_result.marks)  # each mark tells itself apart


def test_alert_bars_are_explained_in_the_legend(figures: list[Figure]) -> None:
    fired = (alert("EventsApiRedisDown", "ticket", 0.3), alert("EventsApiHighErrorRatio", "page", 1.0, "window"))
    figure = build_figure(result("redis-down", alerts=fired))
    figures.append(figure)
    texts = _legend_texts(figure)
    assert "symptom alert firing" in texts
    assert "window/burn alert firing" in texts
    ticks = [tick.get_text() for tick in figure.axes[2].get_yticklabels()]
    assert ticks == ["EventsApiHighErrorRatio (page)", "EventsApiRedisDown (ticket)"]
