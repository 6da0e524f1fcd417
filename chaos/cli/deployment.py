"""`python -m chaos deployment up|down`: the production stack plus the chaos overlay, locally, as a drill target."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from chaos.deployment import ComposeError, DeploymentError, deployment_down, deployment_up
from chaos.deployment.lifecycle import DEFAULT_PROJECT, DEFAULT_REPORT_DIR, MAX_REPLICAS, Interrupted
from conformance.verdicts import Exit, exit_code_epilog

UP_DESCRIPTION = """\
Bring up docker-compose.prod.yml with docker-compose.chaos.yml on this machine's Docker engine, as a game-day
target: the API as N replicas behind HAProxy, the fault proxy (Toxiproxy's API) between the replicas and
PostgreSQL/Redis, and a Prometheus that scrapes every replica and evaluates the shipped alert rules.

The three secrets are generated and given to compose in its environment only; every port is a free one on
127.0.0.1. Once the balancer routes to every replica and Prometheus scrapes each of them, it writes
REPORT_DIR/target.toml (the target file for `python -m chaos run --target`: URLs, fault drivers, and the names
of the environment variables that hold the credentials) and REPORT_DIR/target.env (mode 0600: their values and
the compose secrets), prints where everything answers, and returns; the deployment keeps running until
`python -m chaos deployment down`.

Where no registry is reachable, the images are built on the stand-ins `make docker-prepare` builds (chosen
automatically when they are present and the public bases are not; --ci-images / --public-images decide).
A failure, Ctrl-C or SIGTERM while it comes up removes everything it started.
"""

UP_EPILOG = f"""\
examples:
  python -m chaos deployment up
  python -m chaos deployment up --replicas 3 --project staging1 --report-dir reports/staging1
  set -a; . {DEFAULT_REPORT_DIR}/target.env; set +a     # the API key etc. in this shell
  python -m chaos deployment down
"""

DOWN_DESCRIPTION = """\
Remove every container, network and volume of the deployment's compose project (`down -v --remove-orphans`)
and its target files. Nothing to remove is not an error, so it is safe to run twice, or after an `up` that was
killed.
"""

GAMEDAY_DESCRIPTION = """\
The game day on a deployment, in one command: bring the deployment up (as `up`, with the drill variant of the
alert rules so alerts fire within each drill), run every drill that applies to it against its target file
(the fleet drills included; the ones it cannot run are reported not applicable), print the balancer's measured
rotation lags and its per-request cost beside a direct request, print the summary, and take it all down — also
after a failure, Ctrl-C or SIGTERM. Exit status (the shared table below): 0 when every drill that ran passed, 1 when one
failed, 3 when the deployment could not be brought up, 5 when interrupted or a drill was aborted.
"""

# The shared exit statuses (conformance.verdicts, README "Exit codes"): could not run means nothing is left running.
COULD_NOT_RUN = Exit.COULD_NOT_RUN


def _replicas(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 1 <= value <= MAX_REPLICAS:
        raise argparse.ArgumentTypeError(f"between 1 and {MAX_REPLICAS} (the balancer's slots), not {value}")
    return value


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--project",
        default=DEFAULT_PROJECT,
        help=f"compose project name (default {DEFAULT_PROJECT}); containers, networks and volumes carry it",
    )
    parser.add_argument(
        "--report-dir",
        type=Path,
        default=DEFAULT_REPORT_DIR,
        metavar="DIR",
        help=f"where target.toml, target.env and compose.log go (default {DEFAULT_REPORT_DIR})",
    )


def register(subcommands: Any) -> None:
    deployment = subcommands.add_parser(
        "deployment",
        help="bring the production stack + chaos overlay up or down locally, as a drill target",
        description="The production stack with the chaos overlay, on this machine's Docker engine.",
    )
    actions = deployment.add_subparsers(title="actions", metavar="ACTION", required=True)
    up = actions.add_parser(
        "up",
        help="build and start the deployment, write its target file",
        description=UP_DESCRIPTION,
        epilog=exit_code_epilog(extra=UP_EPILOG),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    up.add_argument(
        "--replicas", type=_replicas, default=2, metavar="N", help=f"API replicas (default 2, 1-{MAX_REPLICAS})"
    )
    _common(up)
    images = up.add_mutually_exclusive_group()
    images.add_argument(
        "--ci-images",
        dest="ci_images",
        action="store_const",
        const=True,
        default=None,
        help="build on the locally built stand-ins (runbook-local/*; make docker-prepare)",
    )
    images.add_argument(
        "--public-images",
        dest="ci_images",
        action="store_const",
        const=False,
        help="build on the public base images (pulled when missing)",
    )
    up.add_argument(
        "--alert-rules",
        choices=("production", "drill"),
        default="production",
        help="the rules its Prometheus evaluates: the shipped production timing (default), or the drill variant "
        "(every duration ÷ 20) so alerts fire within a short drill; target.toml's alert_clock_factor says which",
    )
    up.set_defaults(handler=up_command)
    gameday = actions.add_parser(
        "gameday",
        help="up, every applicable drill against it, the summary, down (make gameday-deployment)",
        description=GAMEDAY_DESCRIPTION,
        epilog=exit_code_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    gameday.add_argument(
        "--replicas", type=_replicas, default=2, metavar="N", help=f"API replicas (default 2, 2-{MAX_REPLICAS})"
    )
    gameday.add_argument("--project", default=DEFAULT_PROJECT, help=f"compose project name (default {DEFAULT_PROJECT})")
    gameday.add_argument(
        "--report-dir",
        type=Path,
        default=Path("reports/gameday-deployment"),
        metavar="DIR",
        help="where the deployment's files and the drill reports go (default reports/gameday-deployment)",
    )
    gameday.add_argument("drills", nargs="*", default=["all"], metavar="NAME", help="drills or patterns (default all)")
    gameday.set_defaults(handler=gameday_command)
    down = actions.add_parser(
        "down",
        help="remove the deployment (containers, networks, volumes) and its target files",
        description=DOWN_DESCRIPTION,
        epilog=exit_code_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(down)
    down.set_defaults(handler=down_command)


def _print(line: str) -> None:
    print(line, flush=True)


def up_command(args: argparse.Namespace) -> int:
    try:
        deployment_up(
            replicas=args.replicas,
            project=args.project,
            report_dir=args.report_dir,
            ci_images=args.ci_images,
            progress=_print,
            alert_rules=args.alert_rules,
        )
    except (DeploymentError, ComposeError) as error:
        print(f"python -m chaos deployment up: {error}", file=sys.stderr)
        return COULD_NOT_RUN
    except (KeyboardInterrupt, Interrupted):
        print("python -m chaos deployment up: interrupted; what was started was removed.", file=sys.stderr)
        return Exit.ABORTED
    return Exit.OK


def gameday_command(args: argparse.Namespace) -> int:
    from chaos.deployment.gameday import run_deployment_gameday

    try:
        return run_deployment_gameday(
            replicas=args.replicas,
            report_dir=args.report_dir,
            drills=args.drills,
            project=args.project,
            progress=_print,
        )
    except (DeploymentError, ComposeError, ValueError) as error:
        print(f"python -m chaos deployment gameday: {error}", file=sys.stderr)
        return COULD_NOT_RUN
    except (KeyboardInterrupt, Interrupted):
        print("python -m chaos deployment gameday: interrupted; rolled back and removed.", file=sys.stderr)
        return Exit.ABORTED


def down_command(args: argparse.Namespace) -> int:
    try:
        deployment_down(project=args.project, report_dir=args.report_dir, progress=_print)
    except (DeploymentError, ComposeError) as error:
        print(f"python -m chaos deployment down: {error}", file=sys.stderr)
        return Exit.FAILED
    except (KeyboardInterrupt, Interrupted):
        return Exit.ABORTED
    return Exit.OK
