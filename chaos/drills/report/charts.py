"""Inline SVG trend charts for the game-day page: one drill's MTTD (readiness/API signal), MTTD (first alert)
and MTTR across runs (RB-INC-MTTD-MTTR).

Plain SVG text, no script and no library, so the page stays one self-contained file. Each series has its own
colour *and* marker shape (readable in greyscale); a run without a figure leaves a gap in its line, and a
single run is a dot. Every text is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any


@dataclass(frozen=True, slots=True)
class Series:
    key: str  # the history record's field (chaos.drills.report.history.history_record)
    label: str
    colour: str
    marker: str  # circle, square or triangle


SERIES = (
    Series("mttd_signal_s", "MTTD (readiness/API)", "#1565c0", "circle"),
    Series("mttd_alert_s", "MTTD (first alert)", "#ef6c00", "triangle"),
    Series("mttr_s", "MTTR", "#2e7d32", "square"),
)

WIDTH, HEIGHT = 560, 260
LEFT, RIGHT, TOP, BOTTOM = 58, 16, 40, 58  # plot margins: room for the y labels, legend and run labels
MAX_RUNS = 12  # the most recent runs a chart shows; the table beside it gives the run count
MAX_X_LABELS = 6


def nice_ceiling(value: float) -> tuple[float, float]:
    """An axis top at or above `value` and its tick step, both round numbers (1, 2, 2.5 or 5 × 10^k)."""
    if value <= 0 or not math.isfinite(value):
        return 1.0, 0.25
    raw_step = value / 4
    magnitude = 10 ** math.floor(math.log10(raw_step))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw_step)
    return step * math.ceil(value / step - 1e-9), step


def _tick_label(value: float, step: float) -> str:
    """As many decimals as the step needs: 0.25 → 2, 0.5 → 1, 2 → 0."""
    decimals = next((d for d in range(4) if abs(step * 10**d - round(step * 10**d)) < 1e-9), 3)
    return f"{value:.{decimals}f}"


def _marker(shape: str, x: float, y: float, colour: str, title: str, css: str) -> str:
    """A series' marker: `css` is "point" on the plot (one per figure) or "key" in the legend."""
    common = f'class="{css}" fill="{colour}"'
    tooltip = f"<title>{escape(title)}</title>"
    if shape == "square":
        return f'<rect {common} x="{x - 4:.1f}" y="{y - 4:.1f}" width="8" height="8">{tooltip}</rect>'
    if shape == "triangle":
        points = f"{x:.1f},{y - 5:.1f} {x - 5:.1f},{y + 4:.1f} {x + 5:.1f},{y + 4:.1f}"
        return f'<polygon {common} points="{points}">{tooltip}</polygon>'
    return f'<circle {common} cx="{x:.1f}" cy="{y:.1f}" r="4.5">{tooltip}</circle>'


def _run_label(record: Mapping[str, Any]) -> str:
    """A short x label: the run's date (from started_at) or the end of its id; ✗ marks a failed run."""
    started = str(record.get("started_at") or "")
    label = started[5:16].replace("T", " ") if len(started) >= 16 else str(record.get("run", "?"))[-11:]
    return label + (" ✗" if record.get("verdict") == "FAILED" else "")


def _value(record: Mapping[str, Any], key: str) -> float | None:
    value = record.get(key)
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def trend_svg(drill: str, records: Sequence[Mapping[str, Any]]) -> str:
    """The chart of `drill`'s last runs (history records in run order) as an `<svg>` element."""
    shown = list(records)[-MAX_RUNS:]
    values = [v for record in shown for s in SERIES if (v := _value(record, s.key)) is not None]
    top, step = nice_ceiling(max(values, default=0.0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x_of(index: int) -> float:
        # one run sits in the middle; several spread edge to edge with a margin of half a slot
        return LEFT + plot_w * (index + 0.5) / max(len(shown), 1)

    def y_of(value: float) -> float:
        return TOP + plot_h * (1 - value / top)

    title = f"{drill}: MTTD and MTTR over the last {len(shown)} run(s), seconds"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="trend" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>',
    ]
    tick = 0.0
    while tick <= top + 1e-9:  # horizontal grid lines with their labels
        y = y_of(tick)
        parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" stroke="#e0e0e0"/>')
        parts.append(
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" class="tick">{_tick_label(tick, step)}</text>'
        )
        tick += step
    parts.append(
        f'<text x="14" y="{TOP + plot_h / 2:.1f}" transform="rotate(-90 14 {TOP + plot_h / 2:.1f})" '
        'text-anchor="middle" class="axis">seconds</text>'
    )
    parts.append(f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - RIGHT}" y2="{TOP + plot_h}" stroke="#616161"/>')
    every = max(1, math.ceil(len(shown) / MAX_X_LABELS))
    for index, record in enumerate(shown):
        if index % every == 0 or index == len(shown) - 1:
            x = x_of(index)
            parts.append(
                f'<line x1="{x:.1f}" y1="{TOP + plot_h}" x2="{x:.1f}" y2="{TOP + plot_h + 4}" stroke="#616161"/>'
            )
            parts.append(
                f'<text x="{x:.1f}" y="{TOP + plot_h + 18}" text-anchor="middle" class="tick">'
                f"{escape(_run_label(record))}</text>"
            )
    parts.append(
        f'<text x="{LEFT + plot_w / 2:.1f}" y="{HEIGHT - 8}" text-anchor="middle" class="axis">'
        "run (UTC start; ✗ = failed)</text>"
    )
    for s in SERIES:
        points = [(i, _value(record, s.key)) for i, record in enumerate(shown)]
        segment: list[str] = []
        for index, value in [*points, (len(points), None)]:  # a missing figure (or the end) closes a line
            if value is not None:
                segment.append(f"{x_of(index):.1f},{y_of(value):.1f}")
                continue
            if len(segment) > 1:
                parts.append(
                    f'<polyline points="{" ".join(segment)}" fill="none" stroke="{s.colour}" stroke-width="2"/>'
                )
            segment = []
        for index, value in points:
            if value is not None:
                run = escape(str(shown[index].get("run", "?")))
                parts.append(
                    _marker(s.marker, x_of(index), y_of(value), s.colour, f"{run}: {s.label} {value:.2f} s", "point")
                )
    legend_x: float = LEFT
    for s in SERIES:  # the legend: marker and name of every series, across the top
        parts.append(_marker(s.marker, legend_x + 5, 18, s.colour, s.label, "key"))
        parts.append(f'<text x="{legend_x + 14}" y="22" class="legend">{escape(s.label)}</text>')
        legend_x += 24 + 7.4 * len(s.label)
    if not values:
        parts.append(
            f'<text x="{LEFT + plot_w / 2:.1f}" y="{TOP + plot_h / 2:.1f}" text-anchor="middle" class="axis">'
            "no MTTD/MTTR measured in these runs</text>"
        )
    parts.append("</svg>")
    return "\n".join(parts)
