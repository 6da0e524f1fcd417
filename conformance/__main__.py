"""`python -m conformance`: prove a deployment conforms to the runbook, requirement by requirement.

    python -m conformance                                   # start the embedded stack and check it
    python -m conformance --base-url https://staging.example --report-dir reports/staging
    python -m conformance --requirement RB-GUARD-BODY-413   # only the checks of one requirement

A remote target takes its credentials from the environment: API_KEY, and JWT_SECRET for the JWT checks.
Checks that must break or restart a dependency run only on the embedded stack; on a remote target they are
reported as "not applicable to a remote target", never as passed. Writes requirements.md, requirements.json
and junit.xml (requirement IDs as properties) to the report directory; exits non-zero on any failure.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest

CHECKS = Path(__file__).resolve().parent / "checks"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m conformance", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--base-url", help="a running deployment (default: start the embedded stack)")
    parser.add_argument(
        "--report-dir", default="reports/conformance", help="where reports go (default: reports/conformance)"
    )
    parser.add_argument(
        "--requirement", action="append", default=[], metavar="ID", help="only checks of this requirement (repeatable)"
    )
    parser.add_argument("-x", "--exitfirst", action="store_true", help="stop at the first failure")
    parser.add_argument("-q", "--quiet", action="store_true", help="less pytest output")
    args, pytest_extra = parser.parse_known_args(argv)

    report_dir = Path(args.report_dir)
    pytest_args = [
        str(CHECKS),
        "-p",
        "no:cacheprovider",
        "--report-dir",
        str(report_dir),
        f"--junitxml={report_dir / 'junit.xml'}",
        "-o",
        "junit_family=xunit2",
        "-o",
        "junit_suite_name=runbook-conformance",
        "-rfEs",
        "-q" if args.quiet else "-v",
    ]
    if args.base_url:
        pytest_args += ["--base-url", args.base_url]
    for requirement_id in args.requirement:
        pytest_args += ["--only-requirement", requirement_id]
    if args.exitfirst:
        pytest_args.append("-x")
    return int(pytest.main([*pytest_args, *pytest_extra]))


if __name__ == "__main__":
    sys.exit(main())
