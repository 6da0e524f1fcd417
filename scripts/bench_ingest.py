"""Ingest throughput: events/s through `POST /api/v1/events` in batches of 500, beside raw asyncpg writes into
the same table measured in the same run.

The embedded stack (chaos.stack.LocalStack, the service talking to PostgreSQL directly) is seeded with a base
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
import asyncio
import json
import random
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.perf_common import (
    SOURCES,
    TYPES,
    DatasetSpec,
    machine_description,
    run_wrk,
    seed_events,
    start_embedded_stack,
    stderr,
    wrk_path,
)
from service.events.repository import _INSERT_NEW

BATCH = 500


def _events(rng: random.Random, count: int, now: datetime) -> list[dict[str, Any]]:
    items = []
    for _ in range(count):
        source_index = min(int(rng.random() ** 1.7 * len(SOURCES)), len(SOURCES) - 1)
        items.append(
            {
                "source": SOURCES[source_index],
                "type": TYPES[(source_index * 7 + rng.randrange(10)) % len(TYPES)],
                "occurred_at": (now - timedelta(seconds=rng.uniform(0, 600))).isoformat(),
                "attributes": {"amount": rng.randrange(1000), "region": rng.choice(["eu-west-1", "us-east-1"])},
            }
        )
    return items


def _bodies(count: int, now: datetime) -> list[bytes]:
    rng = random.Random(11)  # noqa: S311 (test data)
    return [orjson.dumps({"items": _events(rng, BATCH, now)}) for _ in range(count)]


def _records(rng: random.Random, now: datetime) -> list[tuple[Any, ...]]:
    return [
        (
            uuid.uuid4(),
            item["source"],
            item["type"],
            datetime.fromisoformat(item["occurred_at"]),
            json.dumps(item["attributes"]),
        )
        for item in _events(rng, BATCH, now)
    ]


async def _raw_writes(database_url: str, *, mode: str, connections: int, seconds: float) -> dict[str, Any]:
    """Rows/s written by `connections` connections, each writing 500-row batches for `seconds`."""
    rng = random.Random(5)  # noqa: S311 (test data)
    now = datetime.now(UTC)
    prepared = [_records(rng, now) for _ in range(16)]
    stop_at = time.monotonic() + seconds
    written = [0]

    async def writer(index: int) -> None:
        connection = await asyncpg.connect(database_url)
        try:
            round_number = index
            while time.monotonic() < stop_at:
                template = prepared[round_number % len(prepared)]
                round_number += 1
                rows = [(uuid.uuid4(), *row[1:]) for row in template]  # fresh ids: every row is new
                if mode == "copy":
                    await connection.copy_records_to_table(
                        "events", records=rows, columns=["id", "source", "type", "occurred_at", "attributes"]
                    )
                else:
                    columns = (list(column) for column in zip(*rows, strict=True))
                    await connection.execute(_INSERT_NEW, *columns, "bench-ingest")  # the service's statement
                written[0] += len(rows)
        finally:
            await connection.close()

    started = time.monotonic()
    await asyncio.gather(*(writer(index) for index in range(connections)))
    elapsed = time.monotonic() - started
    return {"rows": written[0], "seconds": round(elapsed, 3), "rows_per_s": round(written[0] / elapsed, 1)}


async def _rollups_add_up(database_url: str) -> tuple[int, int]:
    connection = await asyncpg.connect(database_url)
    try:
        events = int(await connection.fetchval("SELECT count(*) FROM events"))
        counted = int(await connection.fetchval("SELECT coalesce(sum(count), 0) FROM event_counts_day"))
    finally:
        await connection.close()
    return events, counted


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
    wrk_path()
    stderr(f"machine: {machine_description()}")
    with tempfile.TemporaryDirectory(prefix="rb-bench-ingest-") as work:
        stack = start_embedded_stack(workers=args.workers)
        try:
            asyncio.run(seed_events(stack.database_url, DatasetSpec(events=args.base_events)))
            bodies = _bodies(32, datetime.now(UTC))
            stderr(f"HTTP: {args.connections} connections posting {BATCH}-event batches for {args.seconds:g} s")
            run_wrk(  # warm-up: connections, prepared statements, caches
                stack.api_url,
                paths=["/api/v1/events"],
                work_dir=Path(work),
                seconds=2,
                connections=args.connections,
                api_key=stack.api_key,
                bodies=bodies,
                timeout_s=10,
            )
            http = run_wrk(
                stack.api_url,
                paths=["/api/v1/events"],
                work_dir=Path(work),
                seconds=args.seconds,
                connections=args.connections,
                api_key=stack.api_key,
                bodies=bodies,
                timeout_s=10,
            )
            http_events = (http.requests - http.errors) * BATCH / http.seconds
            stderr(f"  {http_events:,.0f} events/s ({http.per_second:,.1f} requests/s, {http.errors} errors)")
            raw = {}
            for mode in ("copy", "insert"):
                stderr(f"{mode.upper()}: {args.copy_connections} raw asyncpg connection(s), {BATCH}-row batches")
                raw[mode] = asyncio.run(
                    _raw_writes(stack.database_url, mode=mode, connections=args.copy_connections, seconds=args.seconds)
                )
                stderr(f"  {raw[mode]['rows_per_s']:,.0f} rows/s")
            events, counted = asyncio.run(_rollups_add_up(stack.database_url))
        finally:
            stack.stop()

    ratio = http_events / raw["copy"]["rows_per_s"]
    report = {
        "machine": machine_description(),
        "batch": BATCH,
        "http": {
            "connections": args.connections,
            "workers": args.workers,
            "events_per_s": round(http_events, 1),
            "requests_per_s": round(http.per_second, 2),
            "p50_ms": http.latency_p50_ms,
            "p99_ms": http.latency_p99_ms,
            "errors": http.errors,
        },
        "copy": raw["copy"],
        "insert_unnest": raw["insert"],
        "ratio_http_to_copy": round(ratio, 3),
        "rollups": {"events": events, "counted": counted},
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"\n{'path':44} {'rows/s':>10}")
        print(f"{'HTTP POST /api/v1/events, 500 per request':44} {http_events:10,.0f}")
        print(f"{'raw asyncpg COPY, 500-row batches':44} {raw['copy']['rows_per_s']:10,.0f}")
        print(f"{'raw asyncpg INSERT ... unnest, 500 per batch':44} {raw['insert']['rows_per_s']:10,.0f}")
        print(f"\nHTTP / COPY: {ratio:.1%}   (HTTP p50 {http.latency_p50_ms:.1f} ms, p99 {http.latency_p99_ms:.1f} ms)")
    status = 0
    if http.errors:
        stderr(f"FAIL: {http.errors} ingest requests failed")
        status = 1
    if events != counted:
        stderr(f"FAIL: the rollups count {counted:,} events, the table has {events:,}")
        status = 1
    if args.fail_below is not None and ratio < args.fail_below:
        stderr(f"FAIL: HTTP ingest reaches {ratio:.1%} of COPY, below {args.fail_below:.0%}")
        status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
