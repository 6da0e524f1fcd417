"""Event storage and queries. One statement per request: no per-row round trips on any path."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
from sqlalchemy import Select, bindparam, func, select, text, tuple_
from sqlalchemy.dialects.postgresql import ARRAY, TIMESTAMP
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.types import Text

from service.db import events
from service.errors import ApiError
from service.events.schemas import EventIn, ListQuery, StatsQuery

# ON CONFLICT DO NOTHING makes a re-sent id a no-op (idempotent ingest); RETURNING says which rows were new.
# The whole batch is one statement, hence one transaction: it is stored entirely or not at all.
_INSERT_BATCH = text(
    """
    INSERT INTO events (id, source, type, occurred_at, attributes)
    SELECT id, source, type, occurred_at, attributes::jsonb
    FROM unnest(:ids, :sources, :types, :occurred_ats, :attributes)
        AS batch(id, source, type, occurred_at, attributes)
    ON CONFLICT (id) DO NOTHING
    RETURNING id
    """
).bindparams(
    bindparam("ids", type_=ARRAY(PG_UUID(as_uuid=True))),
    bindparam("sources", type_=ARRAY(Text)),
    bindparam("types", type_=ARRAY(Text)),
    bindparam("occurred_ats", type_=ARRAY(TIMESTAMP(timezone=True))),
    bindparam("attributes", type_=ARRAY(Text)),
)

_EVENT_COLUMNS = (
    events.c.id,
    events.c.source,
    events.c.type,
    events.c.occurred_at,
    events.c.received_at,
    events.c.attributes,
)


@dataclass(frozen=True, slots=True)
class IngestOutcome:
    ids: list[UUID]
    duplicate_ids: list[UUID]

    @property
    def accepted(self) -> int:
        return len(self.ids) - len(self.duplicate_ids)


async def insert_events(engine: AsyncEngine, *, items: Sequence[EventIn], ids: Sequence[UUID]) -> IngestOutcome:
    """Store the batch in one statement; ids already stored (or repeated in the batch) are duplicates."""
    async with engine.begin() as connection:
        result = await connection.execute(
            _INSERT_BATCH,
            {
                "ids": list(ids),
                "sources": [item.source for item in items],
                "types": [item.type for item in items],
                "occurred_ats": [item.occurred_at for item in items],
                "attributes": [orjson.dumps(item.attributes).decode() for item in items],
            },
        )
        inserted = {row[0] for row in result}
    duplicates: list[UUID] = []
    for event_id in ids:
        if event_id in inserted:
            inserted.discard(event_id)  # a second copy of the same id in one batch is a duplicate
        else:
            duplicates.append(event_id)
    return IngestOutcome(ids=list(ids), duplicate_ids=duplicates)


def _row_to_event(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "source": row.source,
        "type": row.type,
        "occurred_at": row.occurred_at,
        "received_at": row.received_at,
        "attributes": row.attributes,
    }


async def get_event(engine: AsyncEngine, *, event_id: UUID) -> dict[str, Any] | None:
    async with engine.connect() as connection:
        result = await connection.execute(select(*_EVENT_COLUMNS).where(events.c.id == event_id))
        row = result.first()
    return _row_to_event(row) if row is not None else None


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


def _filtered(statement: Select[Any], query: ListQuery | StatsQuery) -> Select[Any]:
    if query.source is not None:
        statement = statement.where(events.c.source == query.source)
    if query.type is not None:
        statement = statement.where(events.c.type == query.type)
    if query.since is not None:
        statement = statement.where(events.c.occurred_at >= query.since)
    if query.until is not None:
        statement = statement.where(events.c.occurred_at < query.until)
    return statement


async def list_events(engine: AsyncEngine, *, query: ListQuery) -> tuple[list[dict[str, Any]], str | None]:
    """A page newest-first by (occurred_at, id), using keyset pagination, and the cursor of the next page."""
    statement = _filtered(select(*_EVENT_COLUMNS), query)
    if query.cursor is not None:
        position = decode_cursor(query.cursor)
        statement = statement.where(tuple_(events.c.occurred_at, events.c.id) < tuple_(*position))
    statement = statement.order_by(events.c.occurred_at.desc(), events.c.id.desc()).limit(query.limit + 1)
    async with engine.connect() as connection:
        rows = (await connection.execute(statement)).all()
    page = [_row_to_event(row) for row in rows[: query.limit]]
    next_cursor = None
    if len(rows) > query.limit:
        last = page[-1]
        next_cursor = encode_cursor(last["occurred_at"], last["id"])
    return page, next_cursor


async def count_events(engine: AsyncEngine, *, query: StatsQuery) -> list[dict[str, Any]]:
    """Counts per (bucket start, type-or-source) over the query's range, ordered by bucket then key."""
    bucket_start = func.date_trunc(query.bucket, events.c.occurred_at, "UTC").label("start")
    key = (events.c.type if query.group_by == "type" else events.c.source).label("key")
    statement = (
        _filtered(select(bucket_start, key, func.count().label("count")), query)
        .group_by(bucket_start, key)
        .order_by(bucket_start, key)
    )
    async with engine.connect() as connection:
        rows = (await connection.execute(statement)).all()
    return [{"start": row.start, "key": row.key, "count": row.count} for row in rows]
