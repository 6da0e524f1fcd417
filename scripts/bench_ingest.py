"""Ingest throughput: events/s through `POST /api/v1/events` in batches of 500, beside raw asyncpg writes into
the same table measured in the same run.

The embedded stack (chaos.stack.local.LocalStack, the service talking to PostgreSQL directly) is seeded with a base
dataset, then:

1. HTTP: wrk posts pre-generated batches (500 events each, no client ids, so every request stores new events;
   sources, types and timestamps of the last 10 minutes as live traffic has them) for --seconds;
2. COPY: raw asyncpg `copy_records_to_table` in 500-row batches into the same `events` table, from
   --copy-connections connections, for --seconds;
3. INSERT: raw asyncpg running the service's own statement for new events (`INSERT ... SELECT unnest(...)`),
   same batches and connections.

Every path pays the same table costs (primary key, three indexes, the rollup triggers of migration 0002).
The run ends by checking that the rollups still add up to the events.

    .venv/bin/python scripts/bench_ingest.py                 # 8 HTTP connections, 2 workers, 10 s per path
    .venv/bin/python scripts/bench_ingest.py --json --fail-below 0.25

Needs wrk (`apt-get install -y wrk`). Exit 1 when requests failed, the rollups disagree, or (with --fail-below)
HTTP reaches less than that share of COPY's rate; 2 when wrk is missing.
"""

from __future__ import annotations

import argparse
import sys

from conformance.perf.ingest import run_ingest_benchmark


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2, help="service workers (default 2)")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections posting batches (default 8)")
    parser.add_argument("--copy-connections", type=int, default=2, help="raw asyncpg connections (default 2)")
    parser.add_argument("--seconds", type=float, default=10, help="seconds per path (default 10)")
    parser.add_argument("--base-events", type=int, default=200_000, help="events seeded first (default 200,000)")
    parser.add_argument("--fail-below", type=float, help="exit 1 when HTTP events/s < this share of COPY rows/s")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON on stdout")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return run_ingest_benchmark(
        workers=args.workers,
        connections=args.connections,
        copy_connections=args.copy_connections,
        seconds=args.seconds,
        base_events=args.base_events,
        fail_below=args.fail_below,
        json_output=args.json,
    )


if __name__ == "__main__":
    sys.exit(main())
