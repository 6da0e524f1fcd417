"""The per-minute/hour/day rollups behind the stats endpoint (migration 0002) stay exactly equal to counting
the events themselves: under idempotent re-sends, duplicates inside a batch, concurrent batches that share ids,
deletes, updates, truncation, and a migration over events stored before the rollups existed."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from quart.typing import TestClientProtocol as Client

from chaos.stack.migrations import migrate
from service.db import _prepare_connection
from service.events import repository
from service.events.schemas import EventIn, StatsQuery
from tests.helpers import API_KEY_HEADERS, event

pytestmark = pytest.mark.integration

WIDTHS = ("minute", "hour", "day")
START = datetime(2026, 9, 1, tzinfo=UTC)


async def rollup_differences(db: asyncpg.Connection) -> dict[str, list[Any]]:
    """Rows where a rollup and a direct count over the events disagree (both directions), per width."""
    found = {}
    for width in WIDTHS:
        # width is one of three constants
        bucket = f"date_trunc('{width}', occurred_at, 'UTC')"
        direct = f"SELECT {bucket} AS bucket_start, source, type, count(*) AS count FROM events GROUP BY 1, 2, 3"  # noqa: S608
        rollup = f"SELECT bucket_start, source, type, count FROM event_counts_{width}"  # noqa: S608
        rows = await db.fetch(f"({rollup} EXCEPT ALL {direct}) UNION ALL ({direct} EXCEPT ALL {rollup})")
        found[width] = [tuple(row) for row in rows]
    return found


async def assert_rollups_exact(db: asyncpg.Connection) -> None:
    assert await rollup_differences(db) == {width: [] for width in WIDTHS}


def stats_query(**params: Any) -> StatsQuery:
    return StatsQuery.model_validate(
        {key: value.isoformat() if isinstance(value, datetime) else value for key, value in params.items()}
    )


async def assert_stats_match_direct_counts(
    db: asyncpg.Connection, rng: random.Random, *, sources: list[str], types: list[str], span: timedelta, rounds: int
) -> None:
    """Random unaligned ranges, every bucket and grouping, with and without filters: rollup == direct."""
    await _prepare_connection(db)
    for _ in range(rounds):
        bucket = rng.choice(["minute", "hour", "day"])
        longest = {"minute": timedelta(days=6), "hour": span, "day": span}[bucket]
        since = START - timedelta(hours=2) + timedelta(seconds=rng.uniform(0, span.total_seconds()))
        length = timedelta(seconds=rng.uniform(1, longest.total_seconds()))
        params: dict[str, Any] = {
            "since": since,
            "until": since + length,
            "bucket": bucket,
            "group_by": rng.choice(["type", "source"]),
        }
        choice = rng.random()
        if choice < 0.25:
            params["source"] = rng.choice(sources)
        elif choice < 0.5:
            params["type"] = rng.choice(types)
        query = stats_query(**params)
        via_rollups = await repository.count_events(db, query=query)
        direct = await repository.count_events_directly(db, query=query)
        assert via_rollups == direct, params


def spread_events(source: str, count: int, rng: random.Random, types: list[str]) -> list[dict[str, Any]]:
    return [
        event(
            source,
            id=str(uuid.uuid4()),
            type=rng.choice(types),
            occurred_at=(START + timedelta(seconds=rng.uniform(0, 3 * 86400))).isoformat(),
        )
        for _ in range(count)
    ]


async def test_api_ingest_with_resends_and_in_batch_duplicates_keeps_rollups_exact(
    client: Client, db: asyncpg.Connection
) -> None:
    rng = random.Random(1)
    types = ["a.created", "a.failed", "b.sent"]
    source = f"rollup-{uuid.uuid4().hex[:8]}"
    first = spread_events(source, 300, rng, types)
    response = await client.post("/api/v1/events", json={"items": first}, headers=API_KEY_HEADERS)
    assert (await response.get_json())["accepted"] == 300

    # Re-send half of them with new ones, and one id twice in the same batch.
    again = [*first[:150], *spread_events(source, 50, rng, types)]
    again.append(dict(again[-1]))
    response = await client.post("/api/v1/events", json={"items": again}, headers=API_KEY_HEADERS)
    body = await response.get_json()
    assert (body["accepted"], body["duplicates"]) == (50, 151)
    # Everything again: nothing new.
    response = await client.post("/api/v1/events", json={"items": again}, headers=API_KEY_HEADERS)
    assert response.status_code == 200

    await assert_rollups_exact(db)
    stats = await client.get(
        "/api/v1/events/stats",
        query_string={
            "source": source,
            "bucket": "day",
            "since": (START - timedelta(days=1)).isoformat(),
            "until": (START + timedelta(days=5)).isoformat(),
        },
        headers=API_KEY_HEADERS,
    )
    assert (await stats.get_json())["total"] == 350
    await assert_stats_match_direct_counts(db, rng, sources=[source], types=types, span=timedelta(days=3), rounds=60)


async def test_concurrent_batches_sharing_ids_count_each_event_once(database_url: str, db: asyncpg.Connection) -> None:
    """Eight writers at once, each batch sharing ids with others in a different order (same minutes, sources
    and types, so they contend for the same rollup rows): no deadlock, no error, every event counted once."""
    rng = random.Random(2)
    types = ["c.one", "c.two"]
    source = f"concurrent-{uuid.uuid4().hex[:8]}"
    pool = [EventIn.model_validate(item) for item in spread_events(source, 400, rng, types)]
    batches = [rng.sample(pool, 60) for _ in range(40)]  # the same ids, in other orders

    connections = [await asyncpg.connect(database_url) for _ in range(8)]
    try:

        async def writer(index: int) -> int:
            accepted = 0
            for batch in batches[index::8]:
                outcome = await repository.insert_events(
                    connections[index], items=batch, ids=[item.id for item in batch if item.id is not None]
                )
                accepted += outcome.accepted
            return accepted

        accepted = await asyncio.gather(*(writer(index) for index in range(8)))
    finally:
        for connection in connections:
            await connection.close()

    stored = await db.fetchval("SELECT count(*) FROM events WHERE source = $1", source)
    distinct_sent = len({item.id for batch in batches for item in batch})
    assert sum(accepted) == stored == distinct_sent
    await assert_rollups_exact(db)


async def test_concurrent_api_batches_keep_rollups_exact(client: Client, db: asyncpg.Connection) -> None:
    rng = random.Random(3)
    types = ["d.one", "d.two", "d.three"]
    source = f"api-concurrent-{uuid.uuid4().hex[:8]}"
    shared = spread_events(source, 100, rng, types)

    async def send(index: int) -> int:
        items = [*rng.sample(shared, 40), *spread_events(source, 20, rng, types)]
        rng.shuffle(items)
        response = await client.post("/api/v1/events", json={"items": items}, headers=API_KEY_HEADERS)
        assert response.status_code in (200, 201), await response.get_data(as_text=True)
        accepted: int = (await response.get_json())["accepted"]
        return accepted

    accepted = await asyncio.gather(*(send(index) for index in range(12)))
    stored = await db.fetchval("SELECT count(*) FROM events WHERE source = $1", source)
    assert sum(accepted) == stored
    await assert_rollups_exact(db)


async def _insert_plain(db: asyncpg.Connection, rows: list[tuple[uuid.UUID, str, str, datetime]]) -> None:
    await db.executemany("INSERT INTO events (id, source, type, occurred_at) VALUES ($1, $2, $3, $4)", rows)


def _rows(
    rng: random.Random, count: int, sources: list[str], types: list[str]
) -> list[tuple[uuid.UUID, str, str, datetime]]:
    return [
        (uuid.uuid4(), rng.choice(sources), rng.choice(types), START + timedelta(seconds=rng.uniform(0, 4 * 86400)))
        for _ in range(count)
    ]


async def test_deletes_updates_copy_and_truncate_keep_rollups_exact(fresh_database: Callable[[], str]) -> None:
    url = fresh_database()
    migrate(url)
    rng = random.Random(4)
    sources, types = ["s1", "s2", "s3"], ["t1", "t2", "t3", "t4"]
    db = await asyncpg.connect(url)
    try:
        await _insert_plain(db, _rows(rng, 500, sources, types))
        await db.copy_records_to_table(
            "events", records=_rows(rng, 500, sources, types), columns=["id", "source", "type", "occurred_at"]
        )
        await assert_rollups_exact(db)

        await db.execute("DELETE FROM events WHERE type = 't1'")
        await assert_rollups_exact(db)
        assert await db.fetchval("SELECT count(*) FROM event_counts_minute WHERE count <= 0") == 0

        await db.execute(
            "UPDATE events SET type = 't9', occurred_at = occurred_at + interval '17 hours' WHERE source = 's2'"
        )
        await assert_rollups_exact(db)

        transaction = db.transaction()  # a rolled-back insert leaves no count behind
        await transaction.start()
        await _insert_plain(db, _rows(rng, 50, sources, types))
        await transaction.rollback()
        await assert_rollups_exact(db)

        async def insert_with_a_duplicate_id() -> None:
            rows = _rows(rng, 10, sources, types)
            await _insert_plain(db, [*rows, rows[0]])  # executemany is one transaction: fails whole

        with pytest.raises(asyncpg.UniqueViolationError):
            await insert_with_a_duplicate_id()
        await assert_rollups_exact(db)

        await assert_stats_match_direct_counts(
            db, rng, sources=sources, types=[*types, "t9"], span=timedelta(days=4), rounds=150
        )

        await db.execute("TRUNCATE events")
        assert await db.fetchval("SELECT count(*) FROM event_counts_day") == 0
    finally:
        await db.close()


async def test_upgrading_a_database_with_events_builds_exact_rollups_and_downgrading_keeps_the_events(
    fresh_database: Callable[[], str],
) -> None:
    url = fresh_database()
    migrate(url, "0001")
    rng = random.Random(5)
    db = await asyncpg.connect(url)
    try:
        await _insert_plain(db, _rows(rng, 800, ["x", "y"], ["k1", "k2", "k3"]))
        migrate(url, "0002")
        await assert_rollups_exact(db)
        migrate(url, "0001", direction="downgrade")
        assert await db.fetchval("SELECT count(*) FROM events") == 800
        assert await db.fetchval("SELECT to_regclass('event_counts_minute')") is None
        migrate(url)
        await assert_rollups_exact(db)
    finally:
        await db.close()
