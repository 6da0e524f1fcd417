"""The game day (`make gameday`, `runbook-gameday`): the conformance suite, the drills and the performance gate,
each on its own throwaway stack, then one summary, one cross-harness requirement matrix with evidence dates,
and one self-contained HTML page of it all. The exit status is the shared table's (conformance.verdicts)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chaos.drills.catalog import select
from chaos.drills.report import history
from chaos.drills.report.html import write_page
from chaos.drills.report.page_model import GamedayPage
from chaos.drills.run import RunOutcome, run_drills
from chaos.stack.migrations import REPO_ROOT
from conformance import evidence
from conformance.evidence import MARKDOWN_FILE
from conformance.evidence import write_reports as write_evidence
from conformance.provenance import current
from conformance.verdicts import Exit

Progress = Callable[[str], None]

PERF_PROFILE = "ci"  # the gate's CI profile: 200,000 events, 16 clients, 15 s (conformance/perf/profiles.toml)
HTML_NAME = "gameday.html"

# Whichever harness says so first decides the game day's status: a failure is news whatever else happened;
# then an interruption; then a harness that could not run.
_PRECEDENCE = (Exit.FAILED, Exit.ABORTED, Exit.COULD_NOT_RUN)


def combined_status(statuses: list[int]) -> Exit:
    for status in _PRECEDENCE:
        if status in statuses:
            return status
    if any(status != Exit.OK for status in statuses):  # usage errors and anything unexpected: could not run
        return Exit.COULD_NOT_RUN
    return Exit.OK


def _harness(command: list[str], *, env: dict[str, str] | None = None) -> int:
    """One harness in a process of its own (its own stack, its own exit status); Ctrl-C reaches it too."""
    try:
        return subprocess.run(command, cwd=REPO_ROOT, check=False, env=env).returncode
    except KeyboardInterrupt:
        return Exit.ABORTED


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return loaded if isinstance(loaded, dict) else None


def write_gameday_page(
    outcome: RunOutcome,
    report_dir: Path,
    *,
    conformance: dict[str, Any] | None = None,
    perf: dict[str, Any] | None = None,
    notes: list[str] | None = None,
) -> tuple[Path, evidence.Matrix]:
    """The cross-harness evidence matrix (`report_dir`/evidence-matrix.md|json) and the HTML page of the game
    day (`<drill run dir>/gameday.html`), from everything the harnesses wrote under `report_dir`."""
    matrix = evidence.build([report_dir])
    write_evidence(matrix, report_dir)
    run_notes = list(notes or [])
    if outcome.interrupted:
        run_notes.append("interrupted (Ctrl-C or SIGTERM): the drill in progress was rolled back")
    if outcome.could_not_run:
        run_notes.append(f"drills could not run: {outcome.could_not_run}")
    target = outcome.results[0].target if outcome.results else {"name": "—"}
    page = GamedayPage(
        run_id=outcome.run_id,
        target=target,
        results=outcome.results,
        not_applicable=outcome.not_applicable,
        run_dir=outcome.directory,
        history=history.load(report_dir / "drills" / "history.jsonl"),
        conformance=conformance,
        perf=perf,
        evidence=matrix.display_rows(),
        provenance=current().as_dict(),
        run_notes=run_notes,
    )
    return write_page(page, outcome.directory / HTML_NAME), matrix


def run_gameday(
    report_dir: Path,
    drills: list[str],
    *,
    skip_conformance: bool = False,
    skip_perf: bool = False,
    progress: Progress = lambda line: print(line, flush=True),
) -> int:
    """Run the conformance suite, `drills` (names or patterns) and the perf gate (each unless skipped), with
    reports under `report_dir`; print the summary and the HTML page's path; return the shared exit status."""
    started = time.monotonic()
    statuses: list[int] = []
    conformance_matrix: dict[str, Any] | None = None
    conformance_status: int | None = None
    if not skip_conformance:
        progress("== conformance: every runbook requirement against the embedded stack ==")
        conformance_dir = report_dir / "conformance"
        conformance_status = _harness([sys.executable, "-m", "conformance", "--report-dir", str(conformance_dir), "-q"])
        conformance_matrix = _read_json(conformance_dir / "requirements.json")
        if conformance_matrix is None and conformance_status == Exit.OK:
            conformance_status = Exit.COULD_NOT_RUN  # a run that wrote no matrix proves nothing
        statuses.append(conformance_status)

    progress("\n== drills: the runbook's scenarios against a real stack ==")
    outcome = run_drills(select(drills), report_dir=report_dir / "drills", progress=progress)
    statuses.append(outcome.exit_status)

    perf_figures: dict[str, Any] | None = None
    perf_status: int | None = None
    if not skip_perf and not outcome.interrupted:
        progress(f"\n== perf gate (RB-PERF-GATE), profile {PERF_PROFILE}: every query's mean and p95 ==")
        perf_dir = report_dir / "perf"
        perf_status = _harness(
            [sys.executable, "-m", "conformance.perf", "--profile", PERF_PROFILE, "--report-dir", str(perf_dir)],
            env={**os.environ, "BENCH_PROFILE": PERF_PROFILE},
        )
        perf_figures = _read_json(perf_dir / "figures.json")
        statuses.append(perf_status)

    page, matrix = write_gameday_page(outcome, report_dir, conformance=conformance_matrix, perf=perf_figures)
    status = combined_status(statuses)

    progress("\n== game day summary ==")
    if conformance_status is not None:
        failed = (conformance_matrix or {}).get("failed") or []
        verdict = (
            "all requirements conform"
            if conformance_status == Exit.OK
            else f"exit {conformance_status}" + (": FAILED " + ", ".join(failed) if failed else "")
        )
        progress(f"conformance: {verdict} — {report_dir / 'conformance' / 'requirements.md'}")
    progress(
        f"drills: {len(outcome.results) - len(outcome.failed)}/{len(outcome.results)} passed"
        + (f"; FAILED: {', '.join(outcome.failed)}" if outcome.failed else "")
        + (f"; ABORTED: {', '.join(outcome.aborted)}" if outcome.aborted else "")
        + f" — {outcome.directory / 'summary.md'}, {outcome.junit}"
    )
    if perf_status is not None:
        perf_verdict = {Exit.OK: "passed", Exit.FAILED: "FAILED"}.get(Exit(perf_status), f"exit {perf_status}")
        progress(f"perf gate: {perf_verdict} — {report_dir / 'perf' / 'junit.xml'}")
    counts = Counter(str(row.verdict) for row in matrix.rows)
    tally = ", ".join(f"{count} {verdict}" for verdict, count in counts.most_common())
    progress(f"requirements across harnesses: {tally} — {report_dir / MARKDOWN_FILE}")
    progress(f"report: {page}")
    progress(f"took {time.monotonic() - started:.0f} s; exit {int(status)} ({status.name.lower().replace('_', ' ')})")
    return int(status)
