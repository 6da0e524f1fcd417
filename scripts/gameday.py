"""The game day (`make gameday`): the conformance suite, then every drill, then one summary.

    python scripts/gameday.py [--report-dir reports] [--drills all|NAME ...] [--skip-conformance]

Each harness starts its own throwaway stack (PostgreSQL, Redis, the fault proxy, the service) on loopback
ports and stops it when done. Prints the requirement matrix's failures, the drill summary with detection and
recovery times, the resiliency matrix and the trends over earlier game days; exits 1 when any requirement or
drill failed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from chaos.drills.gameday import run_gameday


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--report-dir", default="reports", help="where every report goes (default: reports)")
    parser.add_argument("--drills", nargs="+", default=["all"], help="drill names, or all (default)")
    parser.add_argument("--skip-conformance", action="store_true", help="run the drills only")
    args = parser.parse_args(argv)
    return run_gameday(Path(args.report_dir), args.drills, skip_conformance=args.skip_conformance)


if __name__ == "__main__":
    sys.exit(main())
