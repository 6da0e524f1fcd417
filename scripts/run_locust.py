"""A short headless Locust run (scripts/locustfile.py) against the embedded stack, exiting with Locust's status.

Starts chaos.stack.local.LocalStack (throwaway PostgreSQL, Redis and the service on 127.0.0.1, the service
talking to them directly), seeds --events events over 30 days, runs Locust headless for --seconds with at most
--users users, stops everything and exits with Locust's exit code: 0 when every entry met the gate
(BENCH_FAIL_THRESHOLD_MS / BENCH_FAIL_P95_THRESHOLD_MS, LOCUST_MAX_ERROR_RATE), 1 when one did not.

    .venv/bin/python scripts/run_locust.py                               # 20 users, 30 s
    .venv/bin/python scripts/run_locust.py --users 40 --seconds 60 --distributed 2   # master + 2 workers

With --distributed N it runs a Locust master (bound to 127.0.0.1) and N worker processes, as a distributed
load test does across machines; the master aggregates the figures and enforces the thresholds.
CSV statistics go to --csv PREFIX when given.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from conformance.perf.console import stderr
from conformance.perf.locust_run import run_locust

LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=20, help="simulated clients (default 20, at most 500)")
    parser.add_argument("--spawn-rate", type=float, default=10, help="users started per second (default 10)")
    parser.add_argument("--seconds", type=int, default=30, help="run time (default 30, at most 3600)")
    parser.add_argument("--workers", type=int, default=2, help="service workers (default 2)")
    parser.add_argument("--events", type=int, default=100_000, help="events seeded first (default 100,000)")
    parser.add_argument("--distributed", type=int, default=0, metavar="N", help="Locust master + N worker processes")
    parser.add_argument("--csv", help="write Locust's CSV statistics with this prefix")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not 1 <= args.users <= 500 or not 1 <= args.seconds <= 3600:
        stderr("error: --users must be 1..500 and --seconds 1..3600 (runs are bounded)")
        return 2
    return run_locust(
        LOCUSTFILE,
        users=args.users,
        spawn_rate=args.spawn_rate,
        seconds=args.seconds,
        workers=args.workers,
        events=args.events,
        distributed=args.distributed,
        csv=args.csv,
    )


if __name__ == "__main__":
    sys.exit(main())
