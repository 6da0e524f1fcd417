"""Event storage and queries. One statement per request: no per-row round trips on any path.

Each function takes an asyncpg connection from `Database.run` and runs one SQL statement on it (autocommit:
a statement is atomic by itself). The statements are plain SQL so that asyncpg prepares each shape once per
connection and reuses it; the indexes they rely on are named beside each.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal
from uuid import UUID

import asyncpg
import orjson

from service.errors import ApiError
from service.events.schemas import EventIn, ListQuery, StatsQuery

_COLUMNS = "id, source, type, occurred_at, received_at, attributes"

# ON CONFLICT DO NOTHING makes a re-sent id a no-op (idempotent ingest); RETURNING says which rows were new.
# The whole batch is one statement, hence one transaction: it is stored entirely or not at all, together
# with its counts in the rollups (the statement trigger of migration 0002). Rows go in id order, so two
# concurrent batches that share ids take their locks in the same order and cannot deadlock.
_INSERT_BATCH = """
INSERT INTO events (id, source, type, occurred_at, attributes)
SELECT id, source, type, occurred_at, attributes::jsonb
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::text[])
    AS batch(id, source, type, occurred_at, attributes)
ORDER BY id
ON CONFLICT (id) DO NOTHING
RETURNING id
"""

_GET = f"SELECT {_COLUMNS} FROM events WHERE id = $1"  # noqa: S608 (constant text) -- the primary key


@dataclass(frozen=True, slots=True)
class IngestOutcome:
    ids: list[UUID]
    duplicate_ids: list[UUID]

    @property
    def accepted(self) -> int:
        return len(self.ids) - len(self.duplicate_ids)


async def insert_events(
    connection: asyncpg.Connection, *, items: Sequence[EventIn], ids: Sequence[UUID]
) -> IngestOutcome:
    """Store the batch in one statement; ids already stored (or repeated in the batch) are duplicates."""
    rows = await connection.fetch(
        _INSERT_BATCH,
        ids,
        [item.source for item in items],
        [item.type for item in items],
        [item.occurred_at for item in items],
        [orjson.dumps(item.attributes).decode() for item in items],
    )
    inserted = {row[0] for row in rows}
    duplicates: list[UUID] = []
    for event_id in ids:
        if event_id in inserted:
            inserted.discard(event_id)  # a second copy of the same id in one batch is a duplicate
        else:
            duplicates.append(event_id)
    return IngestOutcome(ids=list(ids), duplicate_ids=duplicates)


async def get_event(connection: asyncpg.Connection, *, event_id: UUID) -> dict[str, Any] | None:
    row = await connection.fetchrow(_GET, event_id)
    return dict(row.items()) if row is not None else None


def encode_cursor(occurred_at: datetime, event_id: UUID) -> str:
    raw = orjson.dumps([occurred_at.isoformat(), str(event_id)])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    """The (occurred_at, id) position a cursor stands for, or 400 INVALID_CURSOR."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        occurred_at_text, id_text = orjson.loads(raw)
        occurred_at = datetime.fromisoformat(occurred_at_text)
        if occurred_at.tzinfo is None:
            raise ValueError("naive timestamp")
        return occurred_at, UUID(id_text)
    except (binascii.Error, orjson.JSONDecodeError, ValueError, TypeError):
        raise ApiError(
            400, "INVALID_CURSOR", "The cursor is not one this API issued; start again without it."
        ) from None


class _Where:
    """WHERE conditions with numbered parameters."""

    def __init__(self) -> None:
        self.conditions: list[str] = []
        self.values: list[Any] = []

    def add(self, condition: str, *values: Any) -> None:
        """`condition` uses {} for each value, in order."""
        numbers = []
        for value in values:
            self.values.append(value)
            numbers.append(f"${len(self.values)}")
        self.conditions.append(condition.format(*numbers))

    def sql(self) -> str:
        return f"WHERE {' AND '.join(self.conditions)}" if self.conditions else ""

    def placeholder(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


def _filters(where: _Where, query: ListQuery | StatsQuery) -> None:
    if query.source is not None:
        where.add("source = {}", query.source)
    if query.type is not None:
        where.add("type = {}", query.type)


async def list_events(connection: asyncpg.Connection, *, query: ListQuery) -> tuple[list[dict[str, Any]], str | None]:
    """A page newest-first by (occurred_at, id), using keyset pagination, and the cursor of the next page.

    Index: (source|type, occurred_at, id) with a filter, else (occurred_at, id), read backwards."""
    where = _Where()
    _filters(where, query)
    if query.since is not None:
        where.add("occurred_at >= {}", query.since)
    if query.until is not None:
        where.add("occurred_at < {}", query.until)
    if query.cursor is not None:
        where.add("(occurred_at, id) < ({}, {})", *decode_cursor(query.cursor))
    limit = where.placeholder(query.limit + 1)
    # Only fixed text and $n placeholders are formatted into the SQL; every value is a bound parameter.
    sql = f"SELECT {_COLUMNS} FROM events {where.sql()} ORDER BY occurred_at DESC, id DESC LIMIT {limit}"  # noqa: S608
    rows = await connection.fetch(sql, *where.values)
    page = [dict(row.items()) for row in rows[: query.limit]]
    next_cursor = None
    if len(rows) > query.limit:
        last = page[-1]
        next_cursor = encode_cursor(last["occurred_at"], last["id"])
    return page, next_cursor


# -- stats ------------------------------------------------------------------------------------------------
Width = Literal["minute", "hour", "day"]
_WIDTHS: tuple[Width, ...] = ("minute", "hour", "day")
_STEP = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}


def _floor(moment: datetime, width: Width) -> datetime:
    if width == "minute":
        return moment.replace(second=0, microsecond=0)
    if width == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def _ceil(moment: datetime, width: Width) -> datetime | None:
    floor = _floor(moment, width)
    if floor == moment:
        return moment
    try:
        return floor + _STEP[width]
    except OverflowError:  # past year 9999: no whole bucket starts there
        return None


Piece = tuple[Width | Literal["events"], datetime, datetime]


def plan_stats_pieces(since: datetime, until: datetime, bucket: Width) -> list[Piece]:
    """Split [since, until) into pieces each read from one source: the widest rollup (no wider than the
    bucket) whose buckets fit entirely inside, and `events` itself for the unaligned edges (< 1 minute)."""

    def split(start: datetime, end: datetime, widths: tuple[Width, ...]) -> list[Piece]:
        if start >= end:
            return []
        if not widths:
            return [("events", start, end)]
        width = widths[-1]
        first, last = _ceil(start, width), _floor(end, width)
        if first is None or first >= last:
            return split(start, end, widths[:-1])
        return [*split(start, first, widths[:-1]), (width, first, last), *split(last, end, widths[:-1])]

    return split(since, until, _WIDTHS[: _WIDTHS.index(bucket) + 1])


def _stats_sql(query: StatsQuery) -> tuple[str, list[Any]]:
    """The counts per (start, key) as SQL over the planned pieces, and its parameters."""
    where_values: list[Any] = []
    key = "type" if query.group_by == "type" else "source"
    selects = []
    for source, start, end in plan_stats_pieces(query.since, query.until, query.bucket):
        where = _Where()
        where.values = where_values  # one numbering across the whole statement
        if source == "events":
            time_column, count, table = "occurred_at", "count(*)", "events"
        else:
            time_column, count, table = "bucket_start", "sum(count)::bigint", f"event_counts_{source}"
        where.add(f"{time_column} >= {{}}", start)
        where.add(f"{time_column} < {{}}", end)
        _filters(where, query)
        bucket_start = time_column if source == query.bucket else f"date_trunc('{query.bucket}', {time_column}, 'UTC')"
        # Fixed text, names from validated literals, $n placeholders; every value is a bound parameter.
        selects.append(
            f"SELECT {bucket_start} AS start, {key} AS key, {count} AS n FROM {table} {where.sql()} GROUP BY 1, 2"  # noqa: S608
        )
    union = " UNION ALL ".join(selects)
    sql = f"SELECT start, key, sum(n)::bigint AS count FROM ({union}) AS pieces GROUP BY start, key HAVING sum(n) > 0"  # noqa: S608
    return sql, where_values


# PostgreSQL renders the buckets as the response's JSON array itself (one value, whatever the number of
# buckets), in the format the API's own encoder uses (RFC 3339, UTC as Z): a count over 30 days has a couple of
# thousand buckets, and building a Python object per bucket and encoding it was most of that request's CPU.
_BUCKETS_AS_JSON = """
SELECT coalesce(sum(count), 0)::bigint AS total,
       coalesce(json_agg(json_build_object(
           'start', to_char(start AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
           'key', key,
           'count', count) ORDER BY start, key), '[]'::json)::text AS buckets
FROM ({counts}) AS counts
"""


async def stats_json(connection: asyncpg.Connection, *, query: StatsQuery) -> tuple[int, str]:
    """(total, the buckets as a JSON array ordered by start then key) over the query's range.

    Reads the rollups for the aligned parts of the range (see `plan_stats_pieces`), so a count over 30 days
    reads about one row per (day, source, type) instead of every event; the counts are exactly those of
    `count_events_directly`."""
    counts, values = _stats_sql(query)
    row = await connection.fetchrow(_BUCKETS_AS_JSON.format(counts=counts), *values)
    return int(row["total"]), str(row["buckets"])


async def count_events(connection: asyncpg.Connection, *, query: StatsQuery) -> list[dict[str, Any]]:
    """`stats_json`'s buckets as Python values: {start, key, count}, ordered by start then key."""
    _, buckets = await stats_json(connection, query=query)
    return [
        {"start": datetime.fromisoformat(bucket["start"]), "key": bucket["key"], "count": bucket["count"]}
        for bucket in orjson.loads(buckets)
    ]


async def count_events_directly(connection: asyncpg.Connection, *, query: StatsQuery) -> list[dict[str, Any]]:
    """The same counts taken from the events themselves (a scan of the range): the reference the rollups are
    tested against."""
    where = _Where()
    where.add("occurred_at >= {}", query.since)
    where.add("occurred_at < {}", query.until)
    _filters(where, query)
    key = "type" if query.group_by == "type" else "source"
    sql = (
        f"SELECT date_trunc('{query.bucket}', occurred_at, 'UTC') AS start, {key} AS key, count(*) AS count "  # noqa: S608
        f"FROM events {where.sql()} GROUP BY 1, 2 ORDER BY 1, 2"
    )
    rows = await connection.fetch(sql, *where.values)
    return [{"start": row[0], "key": row[1], "count": row[2]} for row in rows]
