"""`python -m chaos targets [NAME|FILE ...]`: the targets drills can run against and what each offers."""

from __future__ import annotations

import argparse
import sys
from typing import Any

DESCRIPTION = """\
List the targets drills can run against — the built-in throwaway stacks (local, docker), the target files
shipped in targets/, the local deployment's (reports/deployment/target.toml, while one is up) and any file
named here — with what each offers (its capabilities, from its fault drivers) and which drills apply to it.
Nothing is contacted: this reads files only. Exit status 2 when a named target cannot be read.
"""


def _targets(args: argparse.Namespace) -> int:
    from chaos.drills.catalog import DRILLS
    from chaos.drills.run import applicable
    from chaos.targets.catalog import BUILTIN, discover, offered, resolve
    from chaos.targets.spec import TargetError

    names = args.targets or [*BUILTIN, *(str(path) for path in discover())]
    status = 0
    for name in names:
        try:
            spec = resolve(name)
        except TargetError as error:
            print(f"{name}: {error}", file=sys.stderr)
            status = 2
            continue
        capabilities = offered(spec)
        runnable, skipped = applicable(list(DRILLS), capabilities, spec.name)
        where = spec.base_url or f"started and removed by the run ({spec.backend} backend)"
        origin = f" [{spec.source}]" if spec.source else " [built in]"
        print(f"{spec.name}{origin}: {spec.kind}, {where}")
        if spec.description:
            print(f"  {spec.description}")
        print(f"  offers: {', '.join(sorted(capabilities)) or 'nothing beyond the basic contract'}")
        if spec.kind == "deployment":
            drivers = [d for d in ("toxiproxy", "docker") if getattr(spec, d) is not None]
            print(f"  drivers: {', '.join(drivers) or 'none'}; prometheus: {spec.prometheus_url or 'none'}")
        print(f"  drills: {len(runnable)} apply, {len(skipped)} not applicable")
        if args.verbose:
            for drill in runnable:
                print(f"    ✓ {drill.name}")
            for not_run in skipped:
                print(f"    – {not_run.drill.name}: lacks {', '.join(sorted(not_run.missing))}")
    return status


def register(subcommands: Any) -> None:
    targets = subcommands.add_parser(
        "targets",
        help="the targets drills can run against, and what each offers",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    targets.add_argument("targets", nargs="*", metavar="NAME|FILE", help="targets to describe (default: all known)")
    targets.add_argument("-v", "--verbose", action="store_true", help="list every drill as applicable or not")
    targets.set_defaults(handler=_targets)
