"""The resiliency matrix (after Shopify's): dependency × fault × API area → the behaviour the drills observed.

Built from the drills' own recordings, so it cannot drift from what the service does."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from chaos.drills.result import DrillResult

AREAS = (("read", "API reads"), ("write", "API writes"), ("ready", "/health/ready"), ("live", "/health/live"))


def _behaviour(result: DrillResult, kind: str) -> str:
    samples = result.window_samples(kind)
    if not samples:
        return "—"
    counts = Counter(
        f"{s.status or 'no answer'}" + (f" {s.code}" if s.code and s.status >= 400 else "") for s in samples
    )
    latencies = sorted(s.latency_s for s in samples)
    p95 = latencies[int(0.95 * (len(latencies) - 1))]
    top = ", ".join(f"{label} ×{n}" for label, n in counts.most_common(3))
    return f"{top} (p95 {p95 * 1000:.0f} ms)"


def build(results: list[DrillResult]) -> list[dict[str, Any]]:
    rows = []
    for result in results:
        tags = result.drill.tags
        rows.append(
            {
                "dependency": tags.get("dependency", "?"),
                "fault": tags.get("fault", "?"),
                "drill": result.drill.name,
                "verdict": "PASSED" if result.passed else "FAILED",
                **{label: _behaviour(result, kind) for kind, label in AREAS},
            }
        )
    return sorted(rows, key=lambda row: (row["dependency"], row["fault"], row["drill"]))


def render_markdown(rows: list[dict[str, Any]]) -> str:
    header = ["dependency", "fault", "drill", *[label for _, label in AREAS], "verdict"]
    lines = [
        "# Resiliency matrix",
        "",
        "Observed during each drill's fault window (status ×count, p95).",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for row in rows:
        lines.append("| " + " | ".join(str(row[column]) for column in header) + " |")
    return "\n".join(lines) + "\n"


def write(rows: list[dict[str, Any]], directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "resiliency-matrix.json").write_text(json.dumps(rows, indent=2, ensure_ascii=False))
    path = directory / "resiliency-matrix.md"
    path.write_text(render_markdown(rows), encoding="utf-8")
    return path
