"""Event storage and queries. One statement per request: no per-row round trips on any path.

Each function takes an asyncpg connection from `Database.run` and runs one SQL statement on it (autocommit:
a statement is atomic by itself). The statements are plain SQL so that asyncpg prepares each shape once per
connection and reuses it; the indexes they rely on are named beside each.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Literal
from uuid import UUID

import asyncpg
import orjson

from service.bounds import EVENT_OVERHEAD_BYTES
from service.errors import ApiError
from service.events.cursor import Position
from service.events.schemas import EventIn, ListQuery, StatsQuery

_COLUMNS = "id, source, type, occurred_at, received_at, attributes, written_by"

# A batch is one statement: it is stored entirely or not at all, together with its counts in the rollups (the
# statement trigger of migration 0002). Rows go in id order, so two concurrent batches that share ids take
# their locks in the same order and cannot deadlock. `attributes` arrives as the compact JSON text the service
# serialised, so its length is the size the API will send back (migration 0003).
_ROWS = """
SELECT id, source, type, occurred_at, attributes::jsonb, octet_length(attributes), $6
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::text[])
    AS batch(id, source, type, occurred_at, attributes)
ORDER BY id
"""
_COLUMNS_IN = "(id, source, type, occurred_at, attributes, attributes_size, written_by)"

# New ids (the common case, and every server-made id): one autocommit statement, which fails as a whole with
# a unique violation when any id is stored already — or is being stored by a concurrent request.
_INSERT_NEW = f"INSERT INTO events {_COLUMNS_IN} {_ROWS}"

# Re-sent ids: ON CONFLICT DO NOTHING skips what is stored; RETURNING says which rows were new.
_INSERT_BATCH = f"INSERT INTO events {_COLUMNS_IN} {_ROWS} ON CONFLICT (id) DO NOTHING RETURNING id"

# Of the re-sent events, those whose stored content differs (RB-DATA-ID-CONFLICT).
_DIFFERING = """
SELECT stored.id
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::text[])
    AS sent(id, source, type, occurred_at, attributes)
JOIN events AS stored ON stored.id = sent.id
WHERE (stored.source, stored.type, stored.occurred_at, stored.attributes)
    IS DISTINCT FROM (sent.source, sent.type, sent.occurred_at, sent.attributes::jsonb)
ORDER BY stored.id
"""

_GET = f"SELECT {_COLUMNS} FROM events WHERE id = $1"  # noqa: S608 (constant text) -- the primary key


@dataclass(frozen=True, slots=True)
class IngestOutcome:
    ids: list[UUID]
    duplicate_ids: list[UUID]

    @property
    def accepted(self) -> int:
        return len(self.ids) - len(self.duplicate_ids)


def id_conflict(conflicting: Sequence[UUID]) -> ApiError:
    shown = [str(event_id) for event_id in conflicting[:50]]
    return ApiError(
        409,
        "ID_CONFLICT",
        f"{len(conflicting)} event id(s) are already stored with different content; nothing from this request "
        "was stored. Re-send the stored content to retry, or use new ids for new events.",
        extra={"conflicting_ids": shown},
    )


def compact_attributes(items: Sequence[EventIn]) -> list[str]:
    """Each event's attributes as the compact JSON text that is stored and measured."""
    return [orjson.dumps(item.attributes).decode() for item in items]


async def insert_events(
    connection: asyncpg.Connection,
    *,
    items: Sequence[EventIn],
    ids: Sequence[UUID],
    written_by: str | None = None,
    attributes_json: Sequence[str] | None = None,
) -> IngestOutcome:
    """Store the batch; ids already stored (or repeated in the batch) with the same content are duplicates.

    A re-sent id whose content differs is 409 ID_CONFLICT, and then nothing of the batch is stored."""
    attributes = list(attributes_json) if attributes_json is not None else compact_attributes(items)
    _refuse_repeats_that_differ(items, ids)
    columns = (
        ids,
        [item.source for item in items],
        [item.type for item in items],
        [item.occurred_at for item in items],
        attributes,
    )
    if len(set(ids)) == len(ids):
        try:
            await connection.execute(_INSERT_NEW, *columns, written_by)
            return IngestOutcome(ids=list(ids), duplicate_ids=[])
        except asyncpg.UniqueViolationError:
            pass  # some ids are stored already: the careful path below decides duplicate or conflict
    # In one transaction, so that a conflict found after the insert undoes it. The conflict check is a second
    # statement: under READ COMMITTED it sees what a concurrent writer of the same id committed while the insert
    # waited for it, so a race cannot turn a conflict into a silent duplicate. (The fast path above holds no
    # transaction open across a round trip: batches share rollup rows, and they would wait on each other.)
    async with connection.transaction():
        rows = await connection.fetch(_INSERT_BATCH, *columns, written_by)
        new = {row[0] for row in rows}
        if len(rows) < len(ids):  # some ids were stored already, or repeat within the batch
            seen: set[UUID] = set()
            resent: list[int] = []
            for index, event_id in enumerate(ids):
                if event_id not in new or event_id in seen:
                    resent.append(index)
                seen.add(event_id)
            differing = await connection.fetch(_DIFFERING, *([column[i] for i in resent] for column in columns))
            if differing:
                raise id_conflict([row[0] for row in differing])  # leaving the block rolls the insert back
    duplicates: list[UUID] = []
    for event_id in ids:
        if event_id in new:
            new.discard(event_id)  # a second copy of the same id in one batch is a duplicate
        else:
            duplicates.append(event_id)
    return IngestOutcome(ids=list(ids), duplicate_ids=duplicates)


def _refuse_repeats_that_differ(items: Sequence[EventIn], ids: Sequence[UUID]) -> None:
    """An id that occurs twice in one batch must carry the same content both times."""
    first: dict[UUID, EventIn] = {}
    differing: list[UUID] = []
    for item, event_id in zip(items, ids, strict=True):
        earlier = first.setdefault(event_id, item)
        if earlier is not item and _content(earlier) != _content(item) and event_id not in differing:
            differing.append(event_id)
    if differing:
        raise id_conflict(differing)


def _content(item: EventIn) -> tuple[object, ...]:
    return (item.source, item.type, item.occurred_at, item.attributes)


async def get_event(connection: asyncpg.Connection, *, event_id: UUID) -> dict[str, Any] | None:
    row = await connection.fetchrow(_GET, event_id)
    return dict(row.items()) if row is not None else None


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


# The page as one statement: the candidates (at most `limit` + 1, through the index), each with the bytes
# of the rows before it. A row "fits" while those stay under the budget; only fitting rows bring their
# attributes, and the first row that does not fit comes back without them, to say the page ended early.
_PAGE = """
SELECT id, source, type, occurred_at, received_at, written_by,
       CASE WHEN fits THEN attributes END AS attributes, fits
FROM (
    SELECT *,
           coalesce(sum(size) OVER (newest ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) < {budget} AS fits,
           coalesce(sum(size) OVER (newest ROWS BETWEEN UNBOUNDED PRECEDING AND 2 PRECEDING), 0) < {budget} AS shown
    FROM (
        SELECT id, source, type, occurred_at, received_at, written_by, attributes,
               coalesce(attributes_size, octet_length(attributes::text)) + {overhead} AS size
        FROM events {where}
        ORDER BY occurred_at DESC, id DESC
        LIMIT {limit}
    ) AS candidates
    WINDOW newest AS (ORDER BY occurred_at DESC, id DESC)
) AS measured
WHERE shown
ORDER BY occurred_at DESC, id DESC
"""


async def list_events(
    connection: asyncpg.Connection, *, query: ListQuery, after: Position | None, rows_budget: int
) -> tuple[list[dict[str, Any]], Position | None]:
    """A page newest-first by (occurred_at, id), using keyset pagination, and the position to continue from.

    The page holds at most `query.limit` events and ends early once the events before the last one exceed
    `rows_budget` bytes (`service.bounds.page_rows_budget`). Index: (source|type, occurred_at, id) with a filter, else
    (occurred_at, id), read backwards."""
    where = _Where()
    _filters(where, query)
    if query.since is not None:
        where.add("occurred_at >= {}", query.since)
    if query.until is not None:
        where.add("occurred_at < {}", query.until)
    if after is not None:
        where.add("(occurred_at, id) < ({}, {})", *after)
    limit = where.placeholder(query.limit + 1)
    budget = where.placeholder(rows_budget)
    # Only fixed text and $n placeholders are formatted into the SQL; every value is a bound parameter.
    sql = _PAGE.format(where=where.sql(), limit=limit, budget=budget, overhead=EVENT_OVERHEAD_BYTES)
    rows = await connection.fetch(sql, *where.values)
    page = [dict(row.items()) for row in rows if row["fits"]][: query.limit]
    for event in page:
        del event["fits"]
    if len(rows) > len(page):
        last = page[-1]
        return page, (last["occurred_at"], last["id"])
    return page, None


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
SELECT count(*) AS rows,
       coalesce(sum(count), 0)::bigint AS total,
       coalesce(json_agg(json_build_object(
           'start', to_char(start AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
           'key', key,
           'count', count) ORDER BY start, key), '[]'::json)::text AS buckets
FROM (SELECT start, key, count FROM ({counts}) AS all_counts ORDER BY start, key LIMIT {rows}) AS counts
"""

MAX_STATS_ANSWER_BUCKETS: Final = 1_000_000  # for callers inside the service (tests), not for clients


def stats_too_large(max_buckets: int) -> ApiError:
    return ApiError(
        422,
        "STATS_TOO_LARGE",
        f"The answer would have more than {max_buckets} buckets (LIST_PAGE_MAX_BYTES); use a shorter range, a "
        "wider bucket, or filter by source or type.",
        extra={"max_buckets": max_buckets},
    )


async def stats_json(connection: asyncpg.Connection, *, query: StatsQuery, max_buckets: int) -> tuple[int, str]:
    """(total, the buckets as a JSON array ordered by start then key) over the query's range, or 422
    STATS_TOO_LARGE when there would be more than `max_buckets` buckets.

    Reads the rollups for the aligned parts of the range (see `plan_stats_pieces`), so a count over 30 days
    reads about one row per (day, source, type) instead of every event; the counts are exactly those of
    `count_events_directly`."""
    counts, values = _stats_sql(query)
    rows = f"${len(values) + 1}"
    row = await connection.fetchrow(_BUCKETS_AS_JSON.format(counts=counts, rows=rows), *values, max_buckets + 1)
    if row["rows"] > max_buckets:
        raise stats_too_large(max_buckets)
    return int(row["total"]), str(row["buckets"])


async def count_events(connection: asyncpg.Connection, *, query: StatsQuery) -> list[dict[str, Any]]:
    """`stats_json`'s buckets as Python values: {start, key, count}, ordered by start then key."""
    _, buckets = await stats_json(connection, query=query, max_buckets=MAX_STATS_ANSWER_BUCKETS)
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
