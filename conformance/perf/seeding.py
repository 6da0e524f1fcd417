"""The benchmark dataset: events of skewed sources and their types over the last days, as real traffic has
them, generated inside PostgreSQL (never through the API) by `seed_events`."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from conformance.perf.console import Progress, stderr

SOURCES: tuple[str, ...] = (
    "checkout",
    "payments-api",
    "orders",
    "inventory",
    "shipping",
    "auth",
    "search",
    "catalog",
    "cart",
    "notifications",
    "billing",
    "recommendations",
    "reviews",
    "pricing",
    "fraud",
    "loyalty",
    "gateway",
    "scheduler",
    "reports",
    "ledger",
    "webhooks",
    "exports",
    "identity",
    "deploy-bot",
)
TYPES: tuple[str, ...] = tuple(
    f"{noun}.{verb}"
    for noun in ("order", "payment", "user", "item", "deploy", "job")
    for verb in (
        "created",
        "updated",
        "failed",
        "retried",
        "completed",
        "cancelled",
        "queued",
        "viewed",
        "paid",
        "sent",
    )
)


@dataclass(frozen=True)
class DatasetSpec:
    """`events` events over the `days` before `end`: each source emits `types_per_source` of the types, and
    sources are skewed (the busiest emits several times more than the quietest), as real traffic is."""

    events: int
    days: int = 30
    end: datetime = field(default_factory=lambda: datetime.now(UTC).replace(microsecond=0))
    types_per_source: int = 10
    seed: float = 0.42

    @property
    def start(self) -> datetime:
        return self.end - timedelta(days=self.days)


# Generated inside PostgreSQL: no rows cross the network, and the events table's triggers (the rollups)
# run exactly as they do for the API's own inserts.
_SEED_CHUNK = """
INSERT INTO events (id, source, type, occurred_at, received_at, attributes)
SELECT gen_random_uuid(),
       ($1::text[])[picked.source_index],
       ($2::text[])[1 + ((picked.source_index * 7 + picked.type_offset) % cardinality($2::text[]))],
       picked.occurred_at,
       picked.occurred_at + (random() * interval '2 seconds'),
       jsonb_build_object(
           'amount', (random() * 1000)::int,
           'region', (ARRAY['eu-west-1', 'us-east-1', 'ap-northeast-2'])[1 + picked.n % 3],
           'attempt', 1 + (random() * random() * 3)::int,
           'seq', picked.n)
FROM (
    SELECT n,
           1 + floor(power(random(), 1.7) * cardinality($1::text[]))::int AS source_index,
           floor(random() * $3::int)::int AS type_offset,
           $4::timestamptz - random() * $5::interval AS occurred_at
    FROM generate_series(1, $6::int) AS n
) AS picked
"""


async def seed_events(
    database_url: str, spec: DatasetSpec, *, progress: Progress = stderr, chunk: int = 100_000
) -> dict[str, Any]:
    """Bulk-insert the dataset straight into PostgreSQL (never through the API), then VACUUM ANALYZE."""
    import asyncpg  # here, not at the top: the locustfile takes SOURCES and TYPES from this module under gevent

    connection = await asyncpg.connect(database_url, timeout=10)
    started = time.monotonic()
    try:
        await connection.execute(f"SELECT setseed({spec.seed})")
        done = 0
        while done < spec.events:
            size = min(chunk, spec.events - done)
            await connection.execute(
                _SEED_CHUNK,
                list(SOURCES),
                list(TYPES),
                spec.types_per_source,
                spec.end,
                timedelta(days=spec.days),
                size,
            )
            done += size
            elapsed = time.monotonic() - started
            progress(f"  seeded {done:,}/{spec.events:,} events ({done / max(elapsed, 1e-9):,.0f}/s)")
        await connection.execute("VACUUM (ANALYZE) events")
        for table in ("event_counts_minute", "event_counts_hour", "event_counts_day"):
            if await connection.fetchval("SELECT to_regclass($1) IS NOT NULL", table):
                await connection.execute(f"VACUUM (ANALYZE) {table}")
    finally:
        await connection.close()
    seconds = time.monotonic() - started
    progress(f"  dataset ready: {spec.events:,} events over {spec.days} days in {seconds:.1f} s")
    return {"events": spec.events, "days": spec.days, "seconds": round(seconds, 2)}
