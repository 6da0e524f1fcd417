"""Quality gates (RB-OPS-QUALITY-GATES): the commands defined in conformance/requirements.yaml, listed in
docs/QUALITY_GATES.md, and run by `make gates`.

    python -m conformance.gates list
    python -m conformance.gates run [NAME ...]      # all gates, in order, when no name is given
    python -m conformance.gates docs > docs/QUALITY_GATES.md

Each gate's command runs from the repository root with bash; the run stops at nothing, reports every gate's
outcome and time, writes them as JUnit XML (reports/gates/<run id>/junit.xml, or under --report-dir: suite
`runbook-gates`, one testcase per gate with the requirement IDs the registry says it verifies), and exits 1 when
any gate failed (0 all passed, 2 an unknown gate name, 5 interrupted: the gate in progress was stopped).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from chaos.invocation import program_name
from conformance.junit import Case, CaseOutcome, Suite, write
from conformance.provenance import current
from conformance.registry import Gate, Registry, load_registry
from conformance.verdicts import Exit, exit_code_epilog

REPO = Path(__file__).resolve().parent.parent
DEFAULT_REPORT_DIR = REPO / "reports" / "gates"
SUITE_NAME = "runbook-gates"
CLASSNAME = "gates"


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


def gate_requirements(registry: Registry) -> dict[str, tuple[str, ...]]:
    """Per gate, the requirement IDs it verifies (requirements.yaml: `verified_by: gate:NAME`)."""
    found: dict[str, list[str]] = {name: [] for name in registry.gates}
    for requirement in registry.requirements.values():
        for gate in requirement.gates:
            found.setdefault(gate, []).append(requirement.id)
    return {name: tuple(ids) for name, ids in found.items()}


def write_junit(
    path: Path, started: datetime, outcomes: Sequence[tuple[Gate, bool | None, float]], registry: Registry
) -> Path:
    """One testcase per gate run: passed, failed (its command exited non-zero), or aborted (None: interrupted)."""
    provenance = current()
    suite = Suite(
        SUITE_NAME,
        started.replace(microsecond=0).isoformat(),
        {
            "commit": provenance.commit,
            "dirty": str(provenance.dirty).lower(),
            "version": provenance.version,
            "target": "the checkout",  # gates run the project's own commands from the repository root
        },
    )
    requirements = gate_requirements(registry)
    cases = []
    for gate, passed, seconds in outcomes:
        if passed is None:
            outcome, message = CaseOutcome.ABORTED, "interrupted (Ctrl-C or SIGTERM)"
        elif passed:
            outcome, message = CaseOutcome.PASSED, ""
        else:
            outcome, message = CaseOutcome.FAILED, f"`{gate.command}` exited non-zero"
        cases.append(
            Case(CLASSNAME, gate.name, seconds, outcome, requirements.get(gate.name, ()), message, output=gate.command)
        )
    return write(path, suite, cases)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=program_name("conformance.gates"),
        description=__doc__,
        epilog=exit_code_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", required=True)
    actions.add_parser("list", help="list the gates and their commands")
    actions.add_parser("docs", help="print docs/QUALITY_GATES.md")
    run = actions.add_parser(
        "run",
        help="run gates (all when no name is given)",
        epilog=exit_code_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("names", nargs="*", metavar="NAME")
    run.add_argument(
        "--report-dir",
        type=Path,
        default=DEFAULT_REPORT_DIR,
        metavar="DIR",
        help="where each run's <run id>/junit.xml goes (default: reports/gates in the checkout)",
    )
    args = parser.parse_args(argv)

    registry = load_registry()
    gates = registry.gates
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
        return Exit.USAGE
    started = datetime.now(UTC)
    outcomes: list[tuple[Gate, bool | None, float]] = []
    for gate in (gates[n] for n in args.names or list(gates)):
        gate_started = time.monotonic()
        try:
            outcomes.append((gate, *run_gate(gate)))
        except KeyboardInterrupt:  # the gate's own process got the Ctrl-C too; what ran is still reported
            outcomes.append((gate, None, time.monotonic() - gate_started))
            break
    print("\n== gates ==")
    for gate, passed, seconds in outcomes:
        print(f"{'ABORTED' if passed is None else 'PASS' if passed else 'FAIL'}  {gate.name:14} {seconds:7.1f} s")
    # One directory per run, as the drills have: `gates run NAME` must not erase the other gates' evidence
    # (conformance.evidence reads every run's file and keeps each gate's newest outcome).
    run_dir = args.report_dir / started.strftime("%Y%m%dT%H%M%SZ")
    junit = write_junit(run_dir / "junit.xml", started, outcomes, registry)
    print(f"junit: {junit}")
    if any(passed is False for _, passed, _ in outcomes):
        return Exit.FAILED
    return Exit.ABORTED if any(passed is None for _, passed, _ in outcomes) else Exit.OK


if __name__ == "__main__":
    sys.exit(main())
