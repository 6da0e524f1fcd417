"""The game day (`make gameday`, `scripts/gameday.py`): the conformance suite, then the drills, then one
summary; the exit status says whether every requirement and every drill passed."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from chaos.drills.catalog import select
from chaos.drills.run import run_drills
from chaos.stack.migrations import REPO_ROOT


def run_gameday(report_dir: Path, drills: list[str], *, skip_conformance: bool = False) -> int:
    """Run the conformance suite (unless skipped) and `drills` (names or patterns), each harness on its own
    throwaway stack, with reports under `report_dir`; print the summary and return 0 when all passed, else 1."""
    started = time.monotonic()
    conformance_ok = True
    failed_requirements: list[str] = []
    if not skip_conformance:
        print("== conformance: every runbook requirement against the embedded stack ==", flush=True)
        result = subprocess.run(
            [sys.executable, "-m", "conformance", "--report-dir", str(report_dir / "conformance"), "-q"],
            cwd=REPO_ROOT,
            check=False,
        )
        conformance_ok = result.returncode == 0
        matrix_file = report_dir / "conformance" / "requirements.json"
        if matrix_file.exists():
            failed_requirements = json.loads(matrix_file.read_text())["failed"]
        elif conformance_ok:
            conformance_ok = False
            failed_requirements = ["(no requirement matrix was written)"]

    print("\n== drills: the runbook's scenarios against a real stack ==", flush=True)
    outcome = run_drills(
        select(drills), report_dir=report_dir / "drills", progress=lambda line: print(line, flush=True)
    )
    failed_drills = [result.drill.name for result in outcome.results if not result.passed]

    print("\n== game day summary ==")
    if not skip_conformance:
        verdict = "all requirements conform" if conformance_ok else "FAILED: " + ", ".join(failed_requirements)
        print(f"conformance: {verdict} — {report_dir / 'conformance' / 'requirements.md'}")
    print(
        f"drills: {len(outcome.results) - len(failed_drills)}/{len(outcome.results)} passed"
        + (f"; FAILED: {', '.join(failed_drills)}" if failed_drills else "")
        + f" — {outcome.directory / 'summary.md'}"
    )
    print(f"took {time.monotonic() - started:.0f} s")
    return 0 if conformance_ok and not failed_drills else 1
