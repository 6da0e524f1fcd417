"""`python -m chaos list` and `python -m chaos run NAME|all`: the game-day drills."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

RUN_DESCRIPTION = """\
Run drills against a throwaway stack (PostgreSQL, Redis, the fault proxy, the service with 2 workers) and a
real Prometheus evaluating the service's alert rules. Each drill: steady state → inject the fault → observe
the degraded behaviour → the runbook's mitigation → recovery → rollbacks (always). Writes per drill a report
in the runbook's incident template (Markdown + JSON), a timeline picture and a journal of every probe; then
the resiliency matrix, a summary, and the history (history.jsonl) with trends. Exit status 1 when any
drill's expectation failed.
"""


def _list(args: argparse.Namespace) -> int:
    from chaos.drills.catalog import DRILLS

    width = max(len(drill.name) for drill in DRILLS)
    for drill in DRILLS:
        print(f"{drill.name:<{width}}  [{drill.scenario}] {drill.title}")
        if args.verbose:
            print(f"{'':<{width}}  {drill.description}")
            print(f"{'':<{width}}  requirements: {', '.join(drill.requirements)}")
    return 0


def _run(args: argparse.Namespace) -> int:
    from chaos.drills.catalog import select
    from chaos.drills.run import run_drills

    try:
        drills = select(args.drills)
    except ValueError as error:
        print(f"python -m chaos run: {error}", file=sys.stderr)
        return 2
    try:
        outcome = run_drills(
            drills,
            report_dir=Path(args.report_dir),
            progress=lambda line: print(line, flush=True),
            with_prometheus=not args.no_prometheus,
            backend=args.backend,
        )
    except ValueError as error:  # e.g. an unknown backend
        print(f"python -m chaos run: {error}", file=sys.stderr)
        return 2
    failed = [result.drill.name for result in outcome.results if not result.passed]
    if failed:
        print(f"FAILED drills: {', '.join(failed)}", file=sys.stderr)
        return 1
    print(f"all {len(outcome.results)} drills passed")
    return 0


def register(subcommands: Any) -> None:
    listing = subcommands.add_parser("list", help="list the drills", description="The drill catalog.")
    listing.add_argument("-v", "--verbose", action="store_true", help="also show what each drill does")
    listing.set_defaults(handler=_list)

    run = subcommands.add_parser(
        "run",
        help="run drills (NAME ... or all)",
        description=RUN_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument(
        "drills",
        nargs="+",
        metavar="NAME",
        help="drill names from `python -m chaos list`, patterns such as 'release-*', or all",
    )
    run.add_argument("--report-dir", default="reports/drills", help="where reports go (default: reports/drills)")
    run.add_argument(
        "--backend",
        choices=("local", "docker", "auto"),
        default=None,
        help="where the stack runs (default: $STACK_BACKEND, else local); the release drills need local",
    )
    run.add_argument(
        "--no-prometheus",
        action="store_true",
        help="skip the Prometheus alert evaluation (alerts are then not measured)",
    )
    run.set_defaults(handler=_run)
