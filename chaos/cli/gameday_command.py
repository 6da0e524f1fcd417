"""The game day's command line (`make gameday`, `runbook-gameday`, `python scripts/gameday.py`): the
conformance suite, every drill and the perf gate, then one summary and one HTML page.

    runbook-gameday [--report-dir reports] [--drills all|NAME ...] [--skip-conformance] [--skip-perf]

Each harness (conformance, the drills, the perf gate on its ci profile) starts its own throwaway stack
(PostgreSQL, Redis, the fault proxy, the service) on loopback ports and stops it when done. Prints the
requirement matrix's failures, the drill summary with detection and recovery times, the resiliency matrix, the
trends over earlier game days and the cross-harness requirement matrix, then the path of the game day's one
HTML page (reports/drills/<run>/gameday.html). Exit status: the shared table below (1 when any requirement,
drill or query failed; 5 when interrupted). The stacks migrate with the checkout's alembic scripts: run it
from a checkout, or from an editable install of one (`pip install -e .`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from chaos.drills.gameday import run_gameday
from chaos.invocation import program_name
from conformance.verdicts import exit_code_epilog


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=program_name("chaos.cli.gameday_command"),
        description=__doc__,
        epilog=exit_code_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--report-dir", default="reports", help="where every report goes (default: reports)")
    parser.add_argument("--drills", nargs="+", default=["all"], help="drill names, or all (default)")
    parser.add_argument("--skip-conformance", action="store_true", help="leave the conformance suite out")
    parser.add_argument("--skip-perf", action="store_true", help="leave the perf gate (ci profile, about a minute) out")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # Keyword arguments: run_gameday grows options of its own, and positions must not shift under us.
    return run_gameday(
        report_dir=Path(args.report_dir),
        drills=args.drills,
        skip_conformance=args.skip_conformance,
        skip_perf=args.skip_perf,
    )


if __name__ == "__main__":
    sys.exit(main())
