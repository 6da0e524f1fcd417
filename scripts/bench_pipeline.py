"""Request-pipeline tax: the service's authenticated `GET /api/v1/events/{id}` against a bare Quart route that
does the same primary-key read with raw asyncpg and no middleware (scripts/bench_bare_app.py).

Both are served the same way (`python -m service`, hypercorn.toml, the same worker count and uvloop), against
the same embedded PostgreSQL (chaos.stack.local.LocalStack, services talking to it directly), and loaded by wrk on
this machine with the same connections and the same ids, in alternating rounds so that drift hits both alike.
The service's pipeline is all of it: request id, body guard, API-key authentication, the Redis rate limit,
the overload gate and fail-fast bound, metrics and the JSON access log.

    .venv/bin/python scripts/bench_pipeline.py                       # 2 workers, 32 connections, 2 x 10 s each
    .venv/bin/python scripts/bench_pipeline.py --json --fail-below 0.6

Needs wrk (`apt-get install -y wrk`). Prints requests/s, latency, the ratio service/bare and the CPU per
request by process (the app's workers, PostgreSQL, Redis, wrk); exits 1 when
a round had errors or, with --fail-below, when the ratio is lower; 2 when wrk is missing. --json: the figures
with the machine description and the build's commit. Each run appends a record to the perf results history
(reports/perf/history.jsonl; --history FILE or $BENCH_HISTORY elsewhere, --no-history: none) and prints the
previous record beside it (another run, not a paired comparison).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from conformance.perf.history import history_path
from conformance.perf.pipeline import run_pipeline_benchmark

BARE_APP = "scripts/bench_bare_app.py:app"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2, help="hypercorn workers for both apps (default 2)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (default 1)")
    parser.add_argument("--seconds", type=float, default=10, help="length of one measured round (default 10)")
    parser.add_argument("--rounds", type=int, default=2, help="measured rounds per app, alternating (default 2)")
    parser.add_argument("--warmup", type=float, default=3, help="warm-up seconds per app (default 3)")
    parser.add_argument("--events", type=int, default=100_000, help="events seeded (default 100,000)")
    parser.add_argument("--fail-below", type=float, help="exit 1 when service/bare throughput is below this")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON on stdout")
    parser.add_argument("--history", type=Path, metavar="FILE", help="results history (default: reports/perf/...)")
    parser.add_argument("--no-history", action="store_true", help="neither read nor append the results history")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    command = shlex.join(["bench_pipeline.py", *(sys.argv[1:] if argv is None else argv)])
    return run_pipeline_benchmark(
        BARE_APP,
        workers=args.workers,
        connections=args.connections,
        threads=args.threads,
        seconds=args.seconds,
        rounds=args.rounds,
        warmup=args.warmup,
        events=args.events,
        fail_below=args.fail_below,
        json_output=args.json,
        history_file=history_path(args.history, disabled=args.no_history),
        command=command,
    )


if __name__ == "__main__":
    sys.exit(main())
