"""The game day (`make gameday`): the conformance suite, then every drill, then one summary.

    python scripts/gameday.py [--report-dir reports] [--drills all|NAME ...] [--skip-conformance]

Each harness starts its own throwaway stack (PostgreSQL, Redis, the fault proxy, the service) on loopback
ports and stops it when done. Prints the requirement matrix's failures, the drill summary with detection and
recovery times, the resiliency matrix and the trends over earlier game days; exits 1 when any requirement or
drill failed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chaos.drills.run import run_drills, select

REPO = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--report-dir", default="reports", help="where every report goes (default: reports)")
    parser.add_argument("--drills", nargs="+", default=["all"], help="drill names, or all (default)")
    parser.add_argument("--skip-conformance", action="store_true", help="run the drills only")
    args = parser.parse_args(argv)
    reports = Path(args.report_dir)
    started = time.monotonic()

    conformance_ok = True
    failed_requirements: list[str] = []
    if not args.skip_conformance:
        print("== conformance: every runbook requirement against the embedded stack ==", flush=True)
        result = subprocess.run(
            [sys.executable, "-m", "conformance", "--report-dir", str(reports / "conformance"), "-q"],
            cwd=REPO,
            check=False,
        )
        conformance_ok = result.returncode == 0
        matrix_file = reports / "conformance" / "requirements.json"
        if matrix_file.exists():
            failed_requirements = json.loads(matrix_file.read_text())["failed"]
        elif conformance_ok:
            conformance_ok = False
            failed_requirements = ["(no requirement matrix was written)"]

    print("\n== drills: the runbook's scenarios against a real stack ==", flush=True)
    outcome = run_drills(
        select(args.drills), report_dir=reports / "drills", progress=lambda line: print(line, flush=True)
    )
    failed_drills = [result.drill.name for result in outcome.results if not result.passed]

    print("\n== game day summary ==")
    if not args.skip_conformance:
        verdict = "all requirements conform" if conformance_ok else "FAILED: " + ", ".join(failed_requirements)
        print(f"conformance: {verdict} — {reports / 'conformance' / 'requirements.md'}")
    print(
        f"drills: {len(outcome.results) - len(failed_drills)}/{len(outcome.results)} passed"
        + (f"; FAILED: {', '.join(failed_drills)}" if failed_drills else "")
        + f" — {outcome.directory / 'summary.md'}"
    )
    print(f"took {time.monotonic() - started:.0f} s")
    return 0 if conformance_ok and not failed_drills else 1


if __name__ == "__main__":
    sys.exit(main())
