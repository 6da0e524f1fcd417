"""`python -m conformance.evidence DIR ...`: the cross-harness requirement matrix (conformance.evidence) of the
JUnit files under the report directories, printed, and written as evidence-matrix.md and evidence-matrix.json.

    python -m conformance.evidence reports                      # conformance, drills, perf gate and gates
    python -m conformance.evidence reports --json               # the rows as JSON on stdout
    python -m conformance.evidence reports --max-age-days 1     # a tighter freshness bound

The exit status says whether the evidence proves the current commit: 0 when every requirement has fresh passing
evidence, 1 when any requirement's fresh evidence failed, 4 (inconclusive) when some evidence is stale, aborted,
could not run, not applicable or missing. docs/EVIDENCE.md explains the matrix.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from chaos.invocation import program_name
from conformance.evidence import (
    EVIDENCE_MAX_AGE_DAYS,
    JSON_FILE,
    MARKDOWN_FILE,
    MAX_AGE_ENV,
    build,
    max_age_days,
    render_markdown,
    write_reports,
)
from conformance.verdicts import Exit, exit_code_epilog


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=program_name("conformance.evidence"),
        description=__doc__,
        epilog=exit_code_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("directories", nargs="+", type=Path, metavar="DIR", help="report directories to read")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON instead of the Markdown table")
    parser.add_argument(
        "--max-age-days",
        type=float,
        default=None,
        metavar="N",
        help=f"evidence older than N days is stale (default ${MAX_AGE_ENV}, else {EVIDENCE_MAX_AGE_DAYS:g})",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        metavar="DIR",
        help=f"write {MARKDOWN_FILE} and {JSON_FILE} here (default: the first DIR)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    missing = [str(directory) for directory in args.directories if not directory.exists()]
    if missing:
        parser.error(f"no such report directory: {', '.join(missing)}")
    try:
        days = max_age_days(args.max_age_days)
    except ValueError as error:
        parser.error(str(error))
    matrix = build(args.directories, max_age=days)
    output = args.output or (args.directories[0] if args.directories[0].is_dir() else args.directories[0].parent)
    write_reports(matrix, output)
    if args.json:
        print(json.dumps(matrix.as_rows(), indent=2, ensure_ascii=False))
    else:
        print(render_markdown(matrix), end="")
    for problem in matrix.problems:
        print(f"not read: {problem}", file=sys.stderr)
    code = matrix.exit_code
    verdict = {Exit.OK: "passed", Exit.FAILED: "failed"}.get(code, "inconclusive")
    print(
        f"evidence: {verdict} — {output / MARKDOWN_FILE} ({len(matrix.sources)} runs read)",
        file=sys.stderr,
    )
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
