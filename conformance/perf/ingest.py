"""Ingest throughput: events/s through `POST /api/v1/events` in batches of 500 (wrk), beside raw asyncpg COPY and
the service's own INSERT into the same table in the same run, then a check that the rollups add up."""

from __future__ import annotations

import asyncio
import json
import random
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import orjson

from conformance.perf.console import stderr
from conformance.perf.embedded import start_embedded_stack
from conformance.perf.machine import machine_description
from conformance.perf.seeding import SOURCES, TYPES, DatasetSpec, seed_events
from conformance.perf.wrk import run_wrk, wrk_path
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


def run_ingest_benchmark(
    *,
    workers: int,
    connections: int,
    copy_connections: int,
    seconds: float,
    base_events: int,
    fail_below: float | None,
    json_output: bool,
) -> int:
    """Print the figures (a table, or JSON); 1 when requests failed, the rollups disagree or HTTP reaches less
    than `fail_below` of COPY's rate, else 0."""
    wrk_path()
    stderr(f"machine: {machine_description()}")
    with tempfile.TemporaryDirectory(prefix="rb-bench-ingest-") as work:
        stack = start_embedded_stack(workers=workers)
        try:
            asyncio.run(seed_events(stack.database_url, DatasetSpec(events=base_events)))
            bodies = _bodies(32, datetime.now(UTC))
            stderr(f"HTTP: {connections} connections posting {BATCH}-event batches for {seconds:g} s")
            run_wrk(  # warm-up: connections, prepared statements, caches
                stack.api_url,
                paths=["/api/v1/events"],
                work_dir=Path(work),
                seconds=2,
                connections=connections,
                api_key=stack.api_key,
                bodies=bodies,
                timeout_s=10,
            )
            http = run_wrk(
                stack.api_url,
                paths=["/api/v1/events"],
                work_dir=Path(work),
                seconds=seconds,
                connections=connections,
                api_key=stack.api_key,
                bodies=bodies,
                timeout_s=10,
            )
            http_events = (http.requests - http.errors) * BATCH / http.seconds
            stderr(f"  {http_events:,.0f} events/s ({http.per_second:,.1f} requests/s, {http.errors} errors)")
            raw = {}
            for mode in ("copy", "insert"):
                stderr(f"{mode.upper()}: {copy_connections} raw asyncpg connection(s), {BATCH}-row batches")
                raw[mode] = asyncio.run(
                    _raw_writes(stack.database_url, mode=mode, connections=copy_connections, seconds=seconds)
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
            "connections": connections,
            "workers": workers,
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
    if json_output:
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
    if fail_below is not None and ratio < fail_below:
        stderr(f"FAIL: HTTP ingest reaches {ratio:.1%} of COPY, below {fail_below:.0%}")
        status = 1
    return status
