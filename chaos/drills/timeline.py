"""The timeline picture of a drill: what a person looks at first in a game-day review.

Top: every API request as a dot (time × latency), coloured by status. Middle: readiness state. Bottom:
alerts firing. The fault window and the mitigation are shaded across all three.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt
from matplotlib.patches import Patch

from chaos.drills.engine import DrillResult

STATUS_COLOURS = {"2xx": "#2e7d32", "4xx": "#f9a825", "503": "#e65100", "5xx": "#b71c1c", "none": "#6a1b9a"}


def _status_class(status: int) -> str:
    if status == 0:
        return "none"
    if status == 503:
        return "503"
    return f"{status // 100}xx"


def draw_timeline(result: DrillResult, path: Path) -> Path:
    start = result.marks.get("fault injected", 0.0)
    samples = [s for s in result.samples if s.kind not in ("ready", "live")]
    figure, (requests, readiness, alerts) = plt.subplots(
        3, 1, figsize=(11, 6.5), sharex=True, gridspec_kw={"height_ratios": [4, 1, 1.4]}
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
    end_of_record = max((s.t for s in result.samples), default=start) - start
    for row, name in enumerate(names):
        for interval in (a for a in result.alerts if a.name == name):
            fired = interval.fired_at - start
            resolved = (interval.resolved_at - start) if interval.resolved_at is not None else end_of_record
            alerts.barh(
                row,
                resolved - fired,
                left=fired,
                height=0.6,
                color="#c62828" if interval.kind == "symptom" else "#ef6c00",
            )
    alerts.set_yticks(range(len(names)), names, fontsize=6)
    alerts.set_ylabel("alerts", fontsize=8)
    alerts.set_xlabel("seconds since the fault was injected")

    fault_end = result.marks.get("fault removed")
    for axis in (requests, readiness, alerts):
        if fault_end is not None:
            axis.axvspan(0, fault_end - start, color="#ffcdd2", alpha=0.35, zorder=0)
        if "mitigation applied" in result.marks:
            mitigated = result.marks["mitigation applied"] - start
            axis.axvspan(
                mitigated, (fault_end - start) if fault_end else mitigated + 1, color="#c8e6c9", alpha=0.5, zorder=0
            )
        for t in result.marks.values():
            axis.axvline(t - start, color="black", linewidth=0.5, alpha=0.3)
    figure.legend(
        handles=[Patch(color="#ffcdd2", label="fault in place"), Patch(color="#c8e6c9", label="mitigation")],
        loc="lower right",
        fontsize=7,
    )
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
