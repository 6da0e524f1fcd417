"""Request-pipeline tax: the service's authenticated `GET /api/v1/events/{id}` against a bare Quart route that
does the same primary-key read with raw asyncpg and no middleware (scripts/bench_bare_app.py).

Both are served the same way (`python -m service`, hypercorn.toml, the same worker count and uvloop), against
the same embedded PostgreSQL (chaos.stack.LocalStack, services talking to it directly), and loaded by wrk on
this machine with the same connections and the same ids, in alternating rounds so that drift hits both alike.
The service's pipeline is all of it: request id, body guard, API-key authentication, the Redis rate limit,
the overload gate and fail-fast bound, metrics and the JSON access log.

    .venv/bin/python scripts/bench_pipeline.py                       # 2 workers, 32 connections, 2 x 10 s each
    .venv/bin/python scripts/bench_pipeline.py --json --fail-below 0.6

Needs wrk (`apt-get install -y wrk`). Prints requests/s, latency and the ratio service/bare; exits 1 when
a round had errors or, with --fail-below, when the ratio is lower; 2 when wrk is missing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chaos.service_process import ServiceProcess
from scripts.perf_common import (
    DatasetSpec,
    WrkResult,
    machine_description,
    run_wrk,
    seed_events,
    start_embedded_stack,
    stderr,
    wrk_path,
)

BARE_APP = "scripts/bench_bare_app.py:app"


async def _sample_ids(database_url: str, count: int) -> list[str]:
    import asyncpg

    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch("SELECT id FROM events TABLESAMPLE SYSTEM (10) LIMIT $1", count)
        if len(rows) < count:
            rows = await connection.fetch("SELECT id FROM events LIMIT $1", count)
    finally:
        await connection.close()
    return [str(row["id"]) for row in rows]


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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    wrk_path()  # fail loudly before starting anything
    stderr(f"machine: {machine_description()}")
    results: dict[str, list[WrkResult]] = {"bare": [], "service": []}
    with tempfile.TemporaryDirectory(prefix="rb-bench-pipeline-") as work:
        stack = start_embedded_stack(workers=args.workers)
        try:
            asyncio.run(seed_events(stack.database_url, DatasetSpec(events=args.events)))
            ids = asyncio.run(_sample_ids(stack.database_url, 2000))
            stderr(f"bare app: starting {BARE_APP} with {args.workers} worker(s)")
            with ServiceProcess(stack.service_env, workers=args.workers, application=BARE_APP) as bare:
                targets = {
                    "bare": (bare.base_url, [f"/bare/events/{i}" for i in ids], None),
                    "service": (stack.api_url, [f"/api/v1/events/{i}" for i in ids], stack.api_key),
                }
                for name, (url, paths, key) in targets.items():
                    stderr(f"warm-up: {name} for {args.warmup:.0f} s")
                    run_wrk(
                        url,
                        paths=paths,
                        work_dir=Path(work) / name,
                        seconds=args.warmup,
                        connections=args.connections,
                        threads=args.threads,
                        api_key=key,
                    )
                for round_number in range(args.rounds):
                    for name, (url, paths, key) in targets.items():
                        result = run_wrk(
                            url,
                            paths=paths,
                            work_dir=Path(work) / name,
                            seconds=args.seconds,
                            connections=args.connections,
                            threads=args.threads,
                            api_key=key,
                        )
                        results[name].append(result)
                        stderr(
                            f"round {round_number + 1} {name:8} {result.per_second:8,.0f} req/s  "
                            f"p50 {result.latency_p50_ms:6.2f} ms  p99 {result.latency_p99_ms:6.2f} ms  "
                            f"errors {result.errors}"
                        )
        finally:
            stack.stop()

    summary = {
        name: {
            "requests_per_s": round(statistics.median(r.per_second for r in runs), 1),
            "p50_ms": round(statistics.median(r.latency_p50_ms for r in runs), 3),
            "p99_ms": round(statistics.median(r.latency_p99_ms for r in runs), 3),
            "errors": sum(r.errors for r in runs),
        }
        for name, runs in results.items()
    }
    ratio = summary["service"]["requests_per_s"] / summary["bare"]["requests_per_s"]
    report = {
        "machine": machine_description(),
        "workers": args.workers,
        "connections": args.connections,
        "seconds_per_round": args.seconds,
        "rounds": args.rounds,
        "results": summary,
        "ratio_service_to_bare": round(ratio, 3),
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"\n{'app':28} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
        labels = {"bare": "bare Quart + asyncpg", "service": "GET /api/v1/events/{id}"}
        for name, figures in summary.items():
            print(
                f"{labels[name]:28} {figures['requests_per_s']:9,.0f} {figures['p50_ms']:8.2f} "
                f"{figures['p99_ms']:8.2f} {figures['errors']:7}"
            )
        print(f"\nservice / bare throughput: {ratio:.1%}")
    if any(figures["errors"] for figures in summary.values()):
        stderr("FAIL: some requests failed")
        return 1
    if args.fail_below is not None and ratio < args.fail_below:
        stderr(f"FAIL: the service reaches {ratio:.1%} of the bare route, below {args.fail_below:.0%}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
