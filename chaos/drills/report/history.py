"""Drill results kept across runs (a JSON-lines history) and the trends they show (RB-INC-MTTD-MTTR)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from chaos.drills.result import DrillResult


def history_record(result: DrillResult, run_id: str) -> dict[str, Any]:
    detection = result.first_failure_signal()
    alert = result.first_alert()
    budget = result.budget()
    return {
        "run": run_id,
        "drill": result.drill.name,
        "started_at": result.started_at.isoformat(),
        "version": result.version,
        "verdict": "PASSED" if result.passed else "FAILED",
        "severity": result.severity().level,
        "mttd_signal_s": round(detection[0], 3) if detection else None,
        "mttd_alert_s": round(alert[0], 3) if alert else None,
        "first_alert": alert[1] if alert else None,
        "mttr_s": round(value, 3) if (value := result.recovery_s()) is not None else None,
        "alerts_resolved_s": round(value, 3) if (value := result.alerts_resolved_s()) is not None else None,
        "budget_consumed": round(budget.availability_consumed, 6),
    }


def append(history_file: Path, records: list[dict[str, Any]]) -> None:
    history_file.parent.mkdir(parents=True, exist_ok=True)
    with history_file.open("a", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def load(history_file: Path) -> list[dict[str, Any]]:
    if not history_file.exists():
        return []
    return [json.loads(line) for line in history_file.read_text(encoding="utf-8").splitlines() if line.strip()]


def _fmt(value: float | None) -> str:
    return f"{value:6.2f}" if value is not None else "     —"


def _delta(now: float | None, before: float | None) -> str:
    if now is None or before is None:
        return "      "
    return f"{now - before:+6.2f}"


def trends(history: list[dict[str, Any]], *, last: int = 5) -> list[str]:
    """Per drill: the latest MTTD/MTTR, the change since the previous run, and the recent series."""
    columns = ("mttd_signal_s", "mttd_alert_s", "mttr_s")
    header = "  ".join(f"{title:>6} {'Δ':>6}" for title in ("MTTD s", "alert s", "MTTR s"))
    lines = [f"{'drill':18} {'runs':>4}  {header}  verdicts"]
    for name in sorted({record["drill"] for record in history}):
        runs = [record for record in history if record["drill"] == name]
        latest, previous = runs[-1], (runs[-2] if len(runs) > 1 else {})
        figures = "  ".join(f"{_fmt(latest[c])} {_delta(latest[c], previous.get(c))}" for c in columns)
        verdicts = " ".join("✓" if r["verdict"] == "PASSED" else "✗" for r in runs[-last:])
        lines.append(f"{name:18} {len(runs):>4}  {figures}  {verdicts}")
    return lines
