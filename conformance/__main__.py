"""`python -m conformance`: prove a deployment conforms to the runbook, requirement by requirement.

    python -m conformance                                   # start the embedded stack and check it
    API_KEY=… python -m conformance --base-url https://staging.example --report-dir reports/staging
    python -m conformance --requirement RB-GUARD-BODY-413   # only the checks of one requirement
    python -m conformance --backend docker -k test_         # the embedded stack as containers
    python -m conformance -- --lf                           # anything after `--` goes to pytest as it is
    python -m conformance --evidence-from reports           # with the latest drill and gate outcomes
    python -m conformance --jobs 1                          # one process and one stack (the default is 3)

A remote target (--base-url) takes its API key from $API_KEY or --api-key-file PATH (required), and the JWT
checks its secret from $JWT_SECRET or --jwt-secret-file PATH (without it they are "not applicable"). Before
any check the target must answer and accept the key (and tokens signed with the secret); otherwise one line
says why and the exit status is 3. Checks that must break or restart a dependency run only on the embedded
stack; on a remote target they are reported as "not applicable to a remote target", never as passed. Writes
requirements.md, requirements.json and junit.xml (requirement IDs as properties) to the report directory.

A full run on the embedded local stack is split into three shards (pytest-xdist processes), each starting an
embedded stack of its own, so that one shard's waits (drains, timeouts the checks prove, restarts) overlap the
others'; the controller merges their outcomes into one matrix. `--jobs N` sets the number. By default a remote
target, the Docker backend and a selection (--requirement, -k) run as one process; a remote target always does.

What a run writes into the target: events, through the API, only ever with a `source` that begins with
`rb-conformance-` and an `occurred_at` on 2001-01-01 (UTC) — the checks' own and Schemathesis' generated
ones alike (Schemathesis' schema-valid ingest cases are rewritten to source `rb-conformance-schemathesis`;
schema-invalid ones are refused by a conforming service). The API has no delete: they stay, marked, and
outside any recent time range. The checks of a remote target otherwise only read. Requests without valid
credentials count against the target's per-address anonymous limit (a few dozen per run): when another
client has spent it, the run waits as its Retry-After asks (at most about two minutes), and says so.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from chaos.invocation import program_name
from chaos.stack import BACKEND_CHOICES, STACK_BACKEND_ENV, requested_backend
from conformance.secret_options import add_secret_option, parse_without_echo, secret_epilog, secret_from
from conformance.target import CouldNotRun, precheck
from conformance.verdicts import Exit, base_url, exit_code_epilog

CHECKS = Path(__file__).resolve().parent / "checks"

# pytest plugins of this environment that no check uses: loading them (Schemathesis and Hypothesis above all;
# RB-API-CONTRACT runs Schemathesis as its own process) cost about 1.5 s of every run's start (docs/BENCHMARKS.md).
# (pytest-alembic stays: pyproject.toml sets its option, which pytest would warn of as unknown without it.)
UNUSED_PYTEST_PLUGINS = ("schemathesis", "hypothesispytest", "locust", "benchmark")

EXIT_MEANING = {
    Exit.OK: "every selected check passed (or is not applicable)",
    Exit.FAILED: "a check failed: the requirement matrix names the failed requirements",
    Exit.USAGE: "bad arguments: an unknown option, a URL without a scheme, no API key for --base-url, an "
    "unknown requirement ID, incomplete requirement coverage",
    Exit.COULD_NOT_RUN: "nothing was checked: the target is unreachable or refused the credentials (one line "
    "says which), or the suite itself could not start (a stack that did not come up)",
}


def _parser() -> argparse.ArgumentParser:
    epilog = "\n\n".join(
        [
            secret_epilog("For --base-url, the API key", option="api-key", env="API_KEY"),
            secret_epilog("The JWT secret (optional)", option="jwt-secret", env="JWT_SECRET"),
            exit_code_epilog(),
        ]
    )
    parser = argparse.ArgumentParser(
        prog=program_name("conformance"),
        description=__doc__,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,  # an abbreviation error would echo `--opt=VALUE`, and VALUE may be a secret
    )
    parser.add_argument("--base-url", help="a running deployment (default: start the embedded stack)")
    add_secret_option(parser, "the API key", option="api-key", env="API_KEY")
    add_secret_option(parser, "the JWT secret", option="jwt-secret", env="JWT_SECRET")
    parser.add_argument(
        "--report-dir", default="reports/conformance", help="where reports go (default: reports/conformance)"
    )
    parser.add_argument(
        "--requirement", action="append", default=[], metavar="ID", help="only checks of this requirement (repeatable)"
    )
    parser.add_argument(
        "--backend",
        choices=BACKEND_CHOICES,
        help=f"where the embedded stack runs: local processes, docker containers, or auto (docker when an engine "
        f"answers and the images are present); default ${STACK_BACKEND_ENV}, else local",
    )
    parser.add_argument(
        "--stack-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="start the embedded stack's service with this setting (repeatable)",
    )
    parser.add_argument("--stack-app", metavar="MODULE:ATTR", help="serve this ASGI app in the embedded stack")
    parser.add_argument(
        "--service-command",
        metavar="COMMAND",
        help="how to run the service for start-up checks (default: python -m service)",
    )
    parser.add_argument(
        "--evidence-from",
        action="append",
        default=[],
        metavar="DIR",
        help="for requirements verified by drills or gates, show their latest outcome found in this report "
        "directory's JUnit files (e.g. reports: drills/*/junit.xml, perf/junit.xml, gates/junit.xml), with date, "
        "commit and whether it is stale (repeatable; docs/EVIDENCE.md); without it they read 'not checked by "
        "this run'",
    )
    parser.add_argument(
        "--jobs",
        type=_jobs,
        default=None,
        metavar="N",
        help="shards of the embedded stack's run, each a process with a stack of its own (default: "
        f"{DEFAULT_SHARDS} for a full run on the local backend with 2 or more CPUs, else 1; a remote target is "
        "checked by one process: its anonymous rate limit counts per client address)",
    )
    parser.add_argument("-k", dest="keyword", metavar="EXPRESSION", help="only checks whose names match (pytest -k)")
    parser.add_argument("-x", "--exitfirst", action="store_true", help="stop at the first failure")
    parser.add_argument("-q", "--quiet", action="store_true", help="less pytest output")
    return parser


MAX_JOBS = 8  # each shard is a PostgreSQL, a Redis, a fault proxy and a 2-worker service
# A full local run's shards on 2 or more CPUs: a run is mostly bounded waits, so a third shard still overlaps
# them on 2 cores; a fourth adds a stack's start and CPU without saving time (docs/BENCHMARKS.md).
DEFAULT_SHARDS = 3


def _jobs(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= MAX_JOBS:
        raise argparse.ArgumentTypeError(f"want a whole number from 1 to {MAX_JOBS}, got {text!r}")
    return int(text)


def _shards(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """How many shards: --jobs, else DEFAULT_SHARDS for a full run on the local backend (where they overlap
    the checks' waits: 55 s in one process, 33–35 s in two, 29–32 s in three on 2 cores; docs/BENCHMARKS.md),
    else 1."""
    if args.jobs is not None:
        if args.jobs > 1 and args.base_url:
            parser.error("--jobs above 1 needs the embedded stack: a remote target is checked by one process")
        return int(args.jobs)
    backend = requested_backend(args.backend)
    selected = args.requirement or args.keyword
    full_local_run = not args.base_url and backend == "local" and not selected
    return DEFAULT_SHARDS if full_local_run and (os.cpu_count() or 1) >= 2 else 1


def _exit_code(pytest_status: int) -> Exit:
    """pytest's status in the shared table: 0 passed, 1 failed, 2 usage, 3 could not run."""
    if pytest_status == pytest.ExitCode.OK:
        return Exit.OK
    if pytest_status == pytest.ExitCode.TESTS_FAILED:
        return Exit.FAILED
    if pytest_status == pytest.ExitCode.USAGE_ERROR:
        return Exit.USAGE
    return Exit.COULD_NOT_RUN  # interrupted, an internal error, nothing collected, a failed precheck (3)


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    pytest_extra: list[str] = []
    if "--" in arguments:
        cut = arguments.index("--")
        arguments, pytest_extra = arguments[:cut], arguments[cut + 1 :]
    parser = _parser()
    args = parse_without_echo(parser, arguments)
    shards = _shards(args, parser)
    report_dir = Path(args.report_dir)
    pytest_args = [
        str(CHECKS),
        "-p",
        "no:cacheprovider",
        *(f"-pno:{plugin}" for plugin in UNUSED_PYTEST_PLUGINS),
        "--report-dir",
        str(report_dir),
        f"--junitxml={report_dir / 'junit.xml'}",
        "-o",
        "junit_family=xunit2",
        "-o",
        "junit_suite_name=runbook-conformance",
        # Outside a checkout (an installed package, the harness image) no pyproject.toml sets it, and
        # pytest-asyncio warns on every run without it.
        "-o",
        "asyncio_default_fixture_loop_scope=session",
        "-rfEs",
        "-q" if args.quiet else "-v",
        # The precheck has imported httpx, and so anyio, whose pytest plugin pytest can then not rewrite: no
        # check asserts inside anyio, so the warning says nothing.
        "-W",
        "ignore:Module already imported so cannot be rewritten:pytest.PytestAssertRewriteWarning",
    ]
    if args.base_url:
        url = base_url(parser, args.base_url)
        api_key = secret_from(parser, args, option="api-key", env="API_KEY")
        jwt_secret = secret_from(parser, args, option="jwt-secret", env="JWT_SECRET")
        if not api_key:
            parser.error(f"--base-url {url} needs the target's API key: set API_KEY or use --api-key-file PATH")
        try:
            precheck(url, api_key=api_key, jwt_secret=jwt_secret, progress=_progress)
        except CouldNotRun as error:
            print(error, file=sys.stderr)
            return Exit.COULD_NOT_RUN
        # The checks read the credentials where a remote target's always come from: this process's
        # environment (never argv, where `ps` shows them).
        os.environ["API_KEY"] = api_key
        if jwt_secret:
            os.environ["JWT_SECRET"] = jwt_secret
        pytest_args += ["--base-url", url, "--prechecked"]
    for requirement_id in args.requirement:
        pytest_args += ["--only-requirement", requirement_id]
    for directory in args.evidence_from:
        if not Path(directory).is_dir():
            parser.error(f"--evidence-from {directory}: no such report directory")
        pytest_args += ["--evidence-from", directory]
    if args.backend:
        pytest_args += ["--backend", args.backend]
    for setting in args.stack_env:
        pytest_args += ["--stack-env", setting]
    if args.stack_app:
        pytest_args += ["--stack-app", args.stack_app]
    if args.service_command:
        pytest_args += ["--service-command", args.service_command]
    if args.keyword:
        pytest_args += ["-k", args.keyword]
    if args.exitfirst:
        pytest_args.append("-x")
    if shards > 1:
        pytest_args += ["-n", str(shards), "--dist", "load"]
    return _exit_code(int(pytest.main([*pytest_args, *pytest_extra])))


if __name__ == "__main__":
    sys.exit(main())
