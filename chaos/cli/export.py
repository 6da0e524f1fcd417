"""`python -m chaos export NAME|all --format chaostoolkit`: drills as Chaos Toolkit experiments."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from conformance.verdicts import Exit, exit_code_epilog

DESCRIPTION = """\
Write each selected drill as a Chaos Toolkit experiment (JSON), to run with Chaos Toolkit's own
`chaos run EXPERIMENT` (chaostoolkit and chaostoolkit-toxiproxy; `make setup` installs them in .venv-ctk).

The experiment: the drill's steady state as the steady-state hypothesis (HTTP probes with status tolerances:
readiness 200, liveness 200, an authenticated read 200 and write 2xx), checked before and after the method;
the method injects the drill's fault with chaostoolkit-toxiproxy (disable/enable a proxy, create/delete a
toxic) on our fault proxy, which speaks Toxiproxy's API; probes what the drill expects under the fault
(readiness 503 naming the dependency, the API's 503 within its bound, liveness 200), keeps the fault for the
drill's dwell, removes it and pauses for recovery; the rollbacks remove the fault again.

Without --target the experiment reads where to go from the environment, with the names and defaults of
`python -m chaos stack up`: EVENTS_API_URL (http://127.0.0.1:8000), TOXIPROXY_URL (http://127.0.0.1:8474) and
API_KEY (printed by stack up as an export line). With --target FILE (a target file, docs/DEPLOYMENT.md) the
target's base URL, Toxiproxy URL and proxy names are written in, and the API key is read from the variable the
target's [credentials] names: a credential's value never goes into the file.

Drills that need what an experiment cannot express (the dependency's server process, a mitigation that
reconfigures the service, releases, fleet drills, expectations judged on recorded traffic) are reported as
"not exportable: why" on stderr, and no file is written for them. docs/CHAOSTOOLKIT.md maps every part.
"""
EXIT_CODES = """\
Here: 0 every selected drill that exports was written (those that do not are named on stderr);
2 an unknown drill or format, or a bad target file; 3 no selected drill exports (nothing was written)."""


def register(subcommands: Any) -> None:
    export = subcommands.add_parser(
        "export",
        help="write drills as Chaos Toolkit experiments (NAME ... or all)",
        description=DESCRIPTION,
        epilog=exit_code_epilog(extra=EXIT_CODES),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    export.add_argument(
        "drills",
        nargs="+",
        metavar="NAME",
        help="drill names from `python -m chaos list`, patterns such as 'db-*', or all",
    )
    export.add_argument(
        "--format", choices=("chaostoolkit",), required=True, help="the experiment format (Chaos Toolkit's JSON)"
    )
    export.add_argument(
        "--target",
        metavar="FILE",
        help="a target file (.toml): its URLs and proxy names are written into the experiments; default: "
        "environment variables as `python -m chaos stack up` prints them",
    )
    export.add_argument(
        "--output",
        metavar="DIR",
        default="reports/chaostoolkit",
        help="where NAME.json files go (default reports/chaostoolkit); `-` prints one experiment to stdout",
    )
    export.set_defaults(handler=export_drills)


def export_drills(args: argparse.Namespace) -> int:
    from chaos.ctk.configuration import Where
    from chaos.ctk.experiment import NotExportable, experiment
    from chaos.drills.catalog import select
    from chaos.targets.catalog import resolve
    from chaos.targets.spec import TargetError

    try:
        drills = select(args.drills)
        where = Where(resolve(args.target) if args.target else None)
    except (ValueError, TargetError) as error:
        print(f"python -m chaos export: {error}", file=sys.stderr)
        return Exit.USAGE
    experiments: list[tuple[str, dict[str, Any]]] = []
    for drill in drills:
        try:
            experiments.append((drill.name, experiment(drill, where)))
        except NotExportable as why:
            print(f"{drill.name}: not exportable: {why}", file=sys.stderr)
    if not experiments:
        print("python -m chaos export: no selected drill exports; nothing written", file=sys.stderr)
        return Exit.COULD_NOT_RUN
    if args.output == "-":
        if len(experiments) > 1:
            print("python -m chaos export: --output - prints one experiment; name one drill", file=sys.stderr)
            return Exit.USAGE
        print(_json(experiments[0][1]))
        return Exit.OK
    directory = Path(args.output)
    directory.mkdir(parents=True, exist_ok=True)
    for name, document in experiments:
        path = directory / f"{name}.json"
        path.write_text(_json(document) + "\n", encoding="utf-8")
        print(f"{name}: {path}")
    print(f"{len(experiments)} experiment(s) for {where.name}; run one with: chaos run --journal-path J.json FILE")
    return Exit.OK


def _json(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False)
