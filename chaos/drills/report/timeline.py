"""The timeline picture of a drill: what a person looks at first in a game-day review.

Top: every API request as a dot (time × latency), coloured by status. Middle: readiness state. Bottom:
alerts firing. The fault window (and the runbook's mitigation, where the drill applied one) is shaded across
all three, and every mark of the drill (fault injected, mitigation applied, fault removed, steady state
restored, alerts resolved, …) is a vertical line of its own style. The legend lists exactly what is drawn:
`build_figure` returns the figure so tests can read its legend and lines.
"""

from __future__ import annotations

import threading
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt
from matplotlib.artist import Artist
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from chaos.drills.result import DrillResult

STATUS_COLOURS = {"2xx": "#2e7d32", "4xx": "#f9a825", "503": "#e65100", "5xx": "#b71c1c", "none": "#6a1b9a"}
ALERT_COLOURS = {"symptom": "#c62828", "window/burn": "#ef6c00"}
FAULT_COLOUR = "#ffcdd2"
MITIGATION_COLOUR = "#c8e6c9"
# One style per drill mark; a mark not listed here (a drill's own) gets the fallback, still labelled.
MARK_STYLES: dict[str, tuple[str, str]] = {
    "rollout started": ("#6d4c41", ":"),
    "fault injected": ("#b71c1c", "-"),
    "mitigation applied": ("#2e7d32", "-."),
    "fault removed": ("#1565c0", "--"),
    "steady state restored": ("#00838f", "-"),
    "alerts resolved": ("#6a1b9a", ":"),
}
FALLBACK_MARK_STYLE = ("#424242", "--")


def _status_class(status: int) -> str:
    if status == 0:
        return "none"
    if status == 503:
        return "503"
    return f"{status // 100}xx"


# pyplot's figure registry is global state: drills reported side by side (chaos.drills.lanes) draw in turn.
_PYPLOT = threading.Lock()


def draw_timeline(result: DrillResult, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with _PYPLOT:
        figure = build_figure(result)
        figure.savefig(path, dpi=110)
        plt.close(figure)
    return path


def build_figure(result: DrillResult) -> Figure:
    start = result.marks.get("fault injected", 0.0)
    samples = [s for s in result.samples if s.kind not in ("ready", "live")]
    figure, (requests, readiness, alerts) = plt.subplots(
        3, 1, figsize=(13, 6.5), sharex=True, gridspec_kw={"height_ratios": [4, 1, 1.4]}, layout="constrained"
    )
    for label, colour in STATUS_COLOURS.items():
        chosen = [s for s in samples if _status_class(s.status) == label]
        if chosen:
            requests.scatter(
                [s.t - start for s in chosen],
                [s.latency_s * 1000 for s in chosen],
                s=6,
                c=colour,
                label=f"{label} ({len(chosen)})",
                alpha=0.7,
                linewidths=0,
            )
    requests.axhline(400, color="grey", linestyle="--", linewidth=0.8)
    requests.text(0.01, 0.95, "p95 gate 400 ms", transform=requests.transAxes, fontsize=7, color="grey", va="top")
    requests.set_yscale("log")
    requests.set_ylabel("latency (ms)")
    requests.legend(loc="upper right", fontsize=7, markerscale=2)
    english = result.drill.title.split(" / ", 1)[-1]  # the Korean half needs fonts the machine may not have
    requests.set_title(f"{result.drill.name}: {english}", fontsize=10)

    ready = sorted((s for s in result.samples if s.kind == "ready"), key=lambda s: s.t)
    readiness.step(
        [s.t - start for s in ready], [1 if s.status == 200 else 0 for s in ready], where="post", color="#1565c0"
    )
    readiness.set_yticks([0, 1], ["503/none", "200"])
    readiness.set_ylim(-0.3, 1.3)
    readiness.set_ylabel("ready", fontsize=8)

    names = sorted({a.name for a in result.alerts})
    severities = {a.name: a.severity or "?" for a in result.alerts}
    kinds_drawn: set[str] = set()
    end_of_record = max((s.t for s in result.samples), default=start) - start
    for row, name in enumerate(names):
        for interval in (a for a in result.alerts if a.name == name):
            fired = interval.fired_at - start
            resolved = (interval.resolved_at - start) if interval.resolved_at is not None else end_of_record
            kind = "symptom" if interval.kind == "symptom" else "window/burn"
            kinds_drawn.add(kind)
            alerts.barh(row, resolved - fired, left=fired, height=0.6, color=ALERT_COLOURS[kind])
    alerts.set_yticks(range(len(names)), [f"{name} ({severities[name]})" for name in names], fontsize=6)
    alerts.set_ylabel("alerts", fontsize=8)
    injected = "fault injected" in result.marks
    alerts.set_xlabel("seconds since the fault was injected (T)" if injected else "seconds since the drill started (t)")

    handles: list[Artist] = []
    fault_end = result.marks.get("fault removed")
    fault_span = (0.0, fault_end - start) if injected and fault_end is not None else None
    mitigated = result.marks.get("mitigation applied")
    mitigation_span = (mitigated - start, fault_span[1]) if mitigated is not None and fault_span else None
    if fault_span:
        handles.append(Patch(color=FAULT_COLOUR, alpha=0.35, label="fault in place"))
    if mitigation_span:
        handles.append(Patch(color=MITIGATION_COLOUR, alpha=0.5, label="mitigation in force"))
    handles += [Patch(color=ALERT_COLOURS[kind], label=f"{kind} alert firing") for kind in sorted(kinds_drawn)]
    marks = sorted(result.marks.items(), key=lambda item: item[1])
    for name, t in marks:
        colour, style = MARK_STYLES.get(name, FALLBACK_MARK_STYLE)
        handles.append(Line2D([], [], color=colour, linestyle=style, linewidth=1, label=f"{name} ({t - start:+.2f} s)"))
    for axis in (requests, readiness, alerts):
        if fault_span:
            axis.axvspan(*fault_span, color=FAULT_COLOUR, alpha=0.35, zorder=0)
        if mitigation_span:
            axis.axvspan(*mitigation_span, color=MITIGATION_COLOUR, alpha=0.5, zorder=0)
        for name, t in marks:
            colour, style = MARK_STYLES.get(name, FALLBACK_MARK_STYLE)
            axis.axvline(t - start, color=colour, linestyle=style, linewidth=1, alpha=0.8, label=name)
    if handles:  # beside the panels, so it never hides a request dot or an alert bar
        figure.legend(
            handles=handles,
            loc="outside right lower",
            fontsize=7,
            title="T (s)" if injected else "t (s)",
            title_fontsize=7,
        )
    return figure
