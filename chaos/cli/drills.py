"""`python -m chaos list` and `python -m chaos run NAME|all`: the game-day drills."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chaos.targets.spec import TargetError
from conformance.verdicts import Exit, exit_code_epilog

if TYPE_CHECKING:
    from chaos.targets.spec import TargetSpec

RUN_DESCRIPTION = """\
Run drills against a target: by default a throwaway stack (PostgreSQL, Redis, the fault proxy, the service with
2 workers) the run starts and removes, with a real Prometheus evaluating the service's alert rules; with
--target, a deployment described by a target file (python -m chaos targets; docs/DEPLOYMENT.md), through its
load balancer, with its own Prometheus and fault drivers. Each drill: steady state → inject the fault → observe
the degraded behaviour → the runbook's mitigation → recovery → rollbacks (always: also on an abort condition,
Ctrl-C, SIGTERM and the drill's time limit). A drill whose capabilities the target lacks is reported "not
applicable", never run and never passed. Writes per drill a report in the runbook's incident template
(Markdown + JSON), a timeline picture and a journal of every probe; then the resiliency matrix, a summary, the
run's JUnit XML (junit.xml: one testcase per drill with its requirement IDs) and the history (history.jsonl)
with trends. On throwaway local stacks the drills run in lanes side by side (--lanes), each lane a stack and a
Prometheus of its own; each drill's lines are printed as one block when it ends.
"""

# What each code of the shared table (conformance.verdicts.Exit) means for `python -m chaos run`.
RUN_EXIT_MEANINGS = """\
For `python -m chaos run`: 0 every drill that ran passed (and at least one ran); 1 a drill failed (whatever
else happened); 2 bad arguments or target file; 3 could not run: no selected drill applies to the target, or
the stack, the target or its Prometheus could not start; 5 aborted: interrupted (Ctrl-C, SIGTERM) or a drill
stopped by its abort condition, each rolled back at once, what ran reported. --plan: 0, or 3 when nothing
applies."""


def _list(args: argparse.Namespace) -> int:
    from chaos.drills.catalog import DRILLS

    width = max(len(drill.name) for drill in DRILLS)
    for drill in DRILLS:
        print(f"{drill.name:<{width}}  [{drill.scenario}] {drill.title}")
        if args.verbose:
            print(f"{'':<{width}}  {drill.description}")
            print(f"{'':<{width}}  requirements: {', '.join(drill.requirements)}")
    return 0


def _target(args: argparse.Namespace) -> TargetSpec:
    from chaos.targets.catalog import BUILTIN, resolve
    from chaos.targets.spec import load_env_file

    if args.env_file:
        load_env_file(Path(args.env_file))
    if args.target and args.backend:
        raise TargetError("--target and --backend exclude each other (a target file names its own backend)")
    if args.target:
        return resolve(args.target)
    from chaos.stack import resolve_backend

    return BUILTIN[resolve_backend(args.backend)[0]]


def _run(args: argparse.Namespace) -> int:
    from chaos.drills.catalog import select
    from chaos.drills.engine import Pace
    from chaos.drills.operator import OperatorPrompt
    from chaos.drills.plan import plan_lines
    from chaos.drills.run import applicable, run_drills
    from chaos.targets.catalog import offered

    try:
        drills = select(args.drills)
        target = _target(args)
    except (ValueError, TargetError) as error:
        print(f"python -m chaos run: {error}", file=sys.stderr)
        return Exit.USAGE
    if args.plan:
        runnable, skipped = applicable(drills, offered(target), target.name)
        print("\n".join(plan_lines(runnable, skipped, target, hold_s=args.hold, operator=args.operator)))
        return Exit.OK if runnable else Exit.COULD_NOT_RUN
    operator = OperatorPrompt(timeout_s=args.operator_timeout) if args.operator else None
    try:
        outcome = run_drills(
            drills,
            report_dir=Path(args.report_dir),
            progress=lambda line: print(line, flush=True),
            with_prometheus=not args.no_prometheus,
            backend=args.backend,
            target=target,
            pace=Pace(hold_s=args.hold, operator=operator),
            lanes=args.lanes,
        )
    except (ValueError, TargetError) as error:  # e.g. an unknown backend, a credential variable not set
        print(f"python -m chaos run: {error}", file=sys.stderr)
        return Exit.USAGE
    status = outcome.exit_status
    if outcome.failed:
        print(f"FAILED drills: {', '.join(outcome.failed)}", file=sys.stderr)
    if outcome.aborted:
        print(f"ABORTED drills (rolled back at once): {', '.join(outcome.aborted)}", file=sys.stderr)
    if outcome.interrupted:
        print("interrupted: the drill in progress was rolled back", file=sys.stderr)
    if outcome.could_not_run is not None:
        print(f"could not run: {outcome.could_not_run}", file=sys.stderr)
    elif not outcome.results and not outcome.interrupted:
        print(f"no selected drill applies to target {target.name}", file=sys.stderr)
    if status is Exit.OK:
        not_applicable = f"; {len(outcome.not_applicable)} not applicable" if outcome.not_applicable else ""
        print(f"all {len(outcome.results)} drills passed{not_applicable}")
    return status


def _duration(text: str) -> float:
    """`90`, `90s`, `2m`, `1m30s` → seconds (argparse type)."""
    import re

    match = re.fullmatch(r"(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s?)?", text.strip())
    if not text.strip() or match is None:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 90s, 2m, 1m30s)")
    seconds = int(match.group(1) or 0) * 60 + float(match.group(2) or 0)
    if not 0 <= seconds <= MAX_HOLD_S:
        raise argparse.ArgumentTypeError(f"{text!r}: at most {MAX_HOLD_S // 60:.0f} minutes")
    return seconds


MAX_HOLD_S = 3600.0


def _lanes(text: str) -> int:
    """--lanes N: a whole number from 1 to MAX_LANES (argparse type)."""
    from chaos.drills.lanes import MAX_LANES

    if not text.strip().isdigit() or not 1 <= int(text) <= MAX_LANES:
        raise argparse.ArgumentTypeError(f"{text!r}: a whole number of lanes from 1 to {MAX_LANES}")
    return int(text)


def register(subcommands: Any) -> None:
    from chaos.drills.lanes import DEFAULT_LANES, MAX_LANES

    listing = subcommands.add_parser("list", help="list the drills", description="The drill catalog.")
    listing.add_argument("-v", "--verbose", action="store_true", help="also show what each drill does")
    listing.set_defaults(handler=_list)

    run = subcommands.add_parser(
        "run",
        help="run drills (NAME ... or all)",
        description=RUN_DESCRIPTION,
        epilog=exit_code_epilog(extra=RUN_EXIT_MEANINGS),
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
        "--target",
        metavar="NAME|FILE",
        help="what to run against: a built-in target (local, docker) or a target file (.toml); "
        "see `python -m chaos targets`",
    )
    run.add_argument(
        "--env-file",
        metavar="FILE",
        help="load the target's credentials (NAME=value lines, mode 0600) into the environment first, as "
        "`python -m chaos deployment up` writes them",
    )
    run.add_argument(
        "--backend",
        choices=("local", "docker", "auto"),
        default=None,
        help="where a throwaway stack runs (default: $STACK_BACKEND, else local); the release drills need local",
    )
    run.add_argument(
        "--plan",
        action="store_true",
        help="print every action, its target, blast radius and abort conditions; do nothing",
    )
    run.add_argument(
        "--hold",
        type=_duration,
        default=0.0,
        metavar="DURATION",
        help="keep each fault in place this long (e.g. 2m), with progress every 5 s, so dashboards and a "
        "deployment's own alert rules have time to show it (at most 60m)",
    )
    run.add_argument(
        "--operator",
        action="store_true",
        help="after injecting each fault, wait for a person to apply the runbook's mitigation (the drill sees "
        "the steady state back, or Enter is pressed), measuring the time it took; then roll back",
    )
    run.add_argument(
        "--operator-timeout",
        type=_duration,
        default=600.0,
        metavar="DURATION",
        help="how long --operator waits before rolling back by itself (default 10m)",
    )
    run.add_argument(
        "--lanes",
        type=_lanes,
        default=None,
        metavar="N",
        help=f"run the drills on N throwaway local stacks side by side, each with its own Prometheus "
        f"(1-{MAX_LANES}; default {DEFAULT_LANES} with 2 or more CPUs, else 1; always 1 on a deployment, the "
        "Docker backend, with --operator or --hold)",
    )
    run.add_argument(
        "--no-prometheus",
        action="store_true",
        help="skip the Prometheus alert evaluation (alerts are then not measured)",
    )
    run.set_defaults(handler=_run)
