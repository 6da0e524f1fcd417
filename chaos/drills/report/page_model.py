"""What the game-day HTML page shows, gathered in one typed value: the run's drill results and everything the
other harnesses produced beside them (conformance matrix, perf-gate figures, cross-harness evidence).

The page (chaos.drills.report.html) renders exactly this and reads nothing else but the drills' timeline
PNGs, so a test can build one by hand and a game day builds it from what it wrote.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chaos.drills.report import history, matrix
from chaos.drills.result import DrillResult, NotApplicable

TIMELINE_PNG = "timeline.png"  # <run dir>/<drill>/timeline.png, as chaos.drills.run writes it


@dataclass(frozen=True)
class GamedayPage:
    """One game day's page. Optional parts are None when that harness did not run (the page says so)."""

    run_id: str
    target: Mapping[str, Any]  # what the run ran against: name, kind, base URL, images…
    results: Sequence[DrillResult]
    not_applicable: Sequence[NotApplicable] = ()
    run_dir: Path | None = None  # where each drill's directory (with its timeline.png) is
    history: Sequence[Mapping[str, Any]] = ()  # chaos.drills.report.history.load(): earlier runs, maybe this one
    matrix: Sequence[Mapping[str, Any]] | None = None  # chaos.drills.report.matrix.build(results); None: built here
    conformance: Mapping[str, Any] | None = None  # reports/conformance/requirements.json (plugin.build_matrix)
    # Perf gate: {"verdict": ..., "queries": {name: {count, mean_ms, p50_ms, p95_ms, p99_ms, max_ms, errors,
    # verdict}}}; the JSON of `benchmark_queries.py --json` ("summaries", "failed", "passed") is read too.
    perf: Mapping[str, Any] | None = None
    evidence: Sequence[Mapping[str, Any]] | None = None  # cross-harness requirement rows (conformance.evidence)
    provenance: Mapping[str, Any] | None = None  # conformance.provenance.current().as_dict() of the run
    run_notes: Sequence[str] = ()  # what the page must say first: the run was interrupted, a stack did not come up…

    def timeline_png(self, drill: str) -> Path | None:
        """Where the drill's timeline picture should be (it may be missing: the page then says so)."""
        return self.run_dir / drill / TIMELINE_PNG if self.run_dir is not None else None

    def matrix_rows(self) -> list[Mapping[str, Any]]:
        return list(self.matrix) if self.matrix is not None else list(matrix.build(list(self.results)))

    def trend_records(self) -> dict[str, list[Mapping[str, Any]]]:
        """Per drill, its history records in run order, with this run's own record appended when the history
        does not hold it yet, so a first game day still shows one point per drill."""
        records: list[Mapping[str, Any]] = list(self.history)
        recorded = {(record.get("run"), record.get("drill")) for record in records}
        records += [
            history.history_record(result, self.run_id)
            for result in self.results
            if (self.run_id, result.drill.name) not in recorded
        ]
        by_drill: dict[str, list[Mapping[str, Any]]] = {}
        for record in records:
            by_drill.setdefault(str(record.get("drill")), []).append(record)
        return by_drill
