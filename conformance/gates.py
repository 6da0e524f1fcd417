"""Quality gates (RB-OPS-QUALITY-GATES): the commands defined in conformance/requirements.yaml, listed in
docs/QUALITY_GATES.md, and run by `make gates`.

    python -m conformance.gates list
    python -m conformance.gates run [NAME ...]      # all gates, in order, when no name is given
    python -m conformance.gates docs > docs/QUALITY_GATES.md

Each gate's command runs from the repository root with bash; the run stops at nothing, reports every gate's
outcome and time, and exits 1 when any gate failed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from conformance.registry import Gate, load_registry

REPO = Path(__file__).resolve().parent.parent


def run_gate(gate: Gate) -> tuple[bool, float]:
    print(f"\n== gate {gate.name}: {gate.what}\n$ {gate.command}", flush=True)
    started = time.monotonic()
    result = subprocess.run(["bash", "-o", "pipefail", "-c", gate.command], cwd=REPO, check=False)
    return result.returncode == 0, time.monotonic() - started


QUALITY_GATES_INTRO = """\
# Quality gates

Every gate the project holds itself to, with the command that runs it (RB-OPS-QUALITY-GATES). `make gates`
runs them all in this order and prints each one's outcome and time; `python -m conformance.gates run NAME`
runs one. This file is generated from `conformance/requirements.yaml` (`python -m conformance.gates docs`),
and a test fails when the two differ, so it cannot go stale. The performance gates, their profiles and how
to refresh the pytest-benchmark baseline: [PERFORMANCE.md](PERFORMANCE.md).
"""


def render_markdown(gates: dict[str, Gate]) -> str:
    lines = [QUALITY_GATES_INTRO, "| gate | what it proves | command |", "|---|---|---|"]
    for gate in gates.values():
        lines.append(f"| `{gate.name}` | {gate.what} | `{gate.command}` |")
    requirements = load_registry().requirements.values()
    lines += ["", "## Requirements verified by gates", "", "| requirement | gates |", "|---|---|"]
    for requirement in requirements:
        if requirement.gates:
            lines.append(f"| {requirement.id} | {', '.join(f'`{g}`' for g in requirement.gates)} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m conformance.gates", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    actions = parser.add_subparsers(dest="action", required=True)
    actions.add_parser("list", help="list the gates and their commands")
    actions.add_parser("docs", help="print docs/QUALITY_GATES.md")
    run = actions.add_parser("run", help="run gates (all when no name is given)")
    run.add_argument("names", nargs="*", metavar="NAME")
    args = parser.parse_args(argv)

    gates = load_registry().gates
    if args.action == "docs":
        print(render_markdown(gates), end="")
        return 0
    if args.action == "list":
        for gate in gates.values():
            print(f"{gate.name:14} {gate.what}\n{'':14} $ {gate.command}")
        return 0
    unknown = [name for name in args.names if name not in gates]
    if unknown:
        print(f"unknown gate(s): {', '.join(unknown)}; known: {', '.join(gates)}", file=sys.stderr)
        return 2
    outcomes = [(gate, *run_gate(gate)) for gate in (gates[n] for n in args.names or list(gates))]
    print("\n== gates ==")
    for gate, passed, seconds in outcomes:
        print(f"{'PASS' if passed else 'FAIL'}  {gate.name:14} {seconds:7.1f} s")
    return 0 if all(passed for _, passed, _ in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
