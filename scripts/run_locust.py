"""A short headless Locust run (scripts/locustfile.py) against the embedded stack, exiting with Locust's status.

Starts chaos.stack.LocalStack (throwaway PostgreSQL, Redis and the service on 127.0.0.1, the service talking
to them directly), seeds --events events over 30 days, runs Locust headless for --seconds with at most
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
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chaos.servers import free_port
from scripts.perf_common import DatasetSpec, seed_events, start_embedded_stack, stderr

LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"
GRACE_S = 60


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
    stack = start_embedded_stack(workers=args.workers)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        asyncio.run(seed_events(stack.database_url, DatasetSpec(events=args.events)))
        env = {**os.environ, "API_KEY": stack.api_key}
        common = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE)]
        run = [
            "--headless",
            "--users",
            str(args.users),
            "--spawn-rate",
            str(args.spawn_rate),
            "--run-time",
            f"{args.seconds}s",
            "--stop-timeout",
            "5",
            "--host",
            stack.api_url,
            "--only-summary",
            *(["--csv", args.csv] if args.csv else []),
        ]
        if args.distributed > 0:
            port = free_port()
            master = [
                *common,
                "--master",
                "--master-bind-host",
                "127.0.0.1",
                "--master-bind-port",
                str(port),
                "--expect-workers",
                str(args.distributed),
                *run,
            ]
            stderr(f"locust: master on 127.0.0.1:{port} and {args.distributed} worker(s), {args.users} users")
            processes.append(subprocess.Popen(master, env=env))
            for _ in range(args.distributed):
                worker = [*common, "--worker", "--master-host", "127.0.0.1", "--master-port", str(port)]
                processes.append(subprocess.Popen(worker, env=env))
        else:
            stderr(f"locust: {args.users} users for {args.seconds} s against {stack.api_url}")
            processes.append(subprocess.Popen([*common, *run], env=env))
        deadline = time.monotonic() + args.seconds + GRACE_S
        try:
            code = processes[0].wait(timeout=max(deadline - time.monotonic(), 1))
        except subprocess.TimeoutExpired:
            stderr("error: locust did not finish in time; stopping it")
            code = 1
        for process in processes[1:]:
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 5))
            except subprocess.TimeoutExpired:
                process.terminate()
        stderr(f"locust exited with {code}")
        return code
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
