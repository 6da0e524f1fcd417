"""`/api/v1/events`: ingest (single or batch), list, get by id, and time-bucketed stats.

Decorator order on every route, outermost first, which is the order the checks run in (service/route_policy.py):
the route; `@rate_limited(scope)` (authenticates, 401, and counts, 429); `@require_scope(scope)` (403); then
documentation only (`@document_*`, `@problems`).
"""

from __future__ import annotations

from functools import partial
from typing import Any
from uuid import UUID

from pydantic import RootModel, ValidationError
from quart import Blueprint, Response, g
from quart_schema import document_querystring, document_request, document_response

from service.auth import READ, WRITE
from service.bounds import STATS_BUCKET_MAX_BYTES, page_rows_budget
from service.errors import ApiError, validation_errors
from service.events import repository
from service.events.schemas import (
    EventBatchIn,
    EventIn,
    EventOut,
    EventPage,
    IngestResult,
    ListQuery,
    StatsQuery,
    StatsResult,
)
from service.http_json import invalid, json_response, json_response_with_raw, parse_query, read_json_body
from service.ids import uuid7
from service.openapi import problems
from service.route_policy import rate_limited, require_scope
from service.state import app_state

# Every route below: @blueprint.<method>, @rate_limited(scope), @require_scope(scope), then documentation.
blueprint = Blueprint("events", __name__, url_prefix="/api/v1")
WRITES_DISABLED_RETRY_AFTER_S = 60


class IngestRequest(RootModel[EventIn | EventBatchIn]):
    """One event, or `{"items": [...]}` with up to INGEST_MAX_BATCH_ITEMS events."""


def _parse_ingest(payload: Any, max_items: int) -> tuple[list[EventIn], bool]:
    """The events of an ingest body, and whether it was a batch. The batch size is checked before any item
    is validated, so an oversized batch is refused cheaply and with the right status."""
    is_batch = isinstance(payload, dict) and "items" in payload
    items = payload.get("items") if is_batch else None
    if isinstance(items, list) and len(items) > max_items:
        raise ApiError(
            413,
            "INGEST_BATCH_TOO_LARGE",
            f"The batch has {len(items)} events; at most {max_items} are allowed (INGEST_MAX_BATCH_ITEMS).",
            extra={"limit": max_items, "received": len(items)},
        )
    try:
        if is_batch:
            return EventBatchIn.model_validate(payload).items, True
        return [EventIn.model_validate(payload)], False
    except ValidationError as error:
        raise invalid(validation_errors(error), "The events are not valid; nothing was stored.") from None


def _attributes_json(items: list[EventIn], *, is_batch: bool, max_bytes: int) -> list[str]:
    """Each event's attributes as compact JSON (what is stored and measured), or 422 naming every event whose
    attributes are over EVENT_ATTRIBUTES_MAX_BYTES."""
    texts = repository.compact_attributes(items)
    # A text of n characters has at least n bytes; only long ones need their UTF-8 length counted.
    too_large = [
        index for index, text in enumerate(texts) if len(text) * 4 > max_bytes and len(text.encode()) > max_bytes
    ]
    if too_large:
        raise invalid(
            [
                {
                    "loc": ["body", "items", index, "attributes"] if is_batch else ["body", "attributes"],
                    "msg": f"may be at most {max_bytes} bytes as compact JSON (EVENT_ATTRIBUTES_MAX_BYTES)",
                    "type": "too_large",
                }
                for index in too_large
            ],
            "The events are not valid; nothing was stored.",
        )
    return texts


@blueprint.post("/events")
@rate_limited(WRITE)
@require_scope(WRITE)
@document_request(IngestRequest)
@document_response(IngestResult, 201)
@document_response(IngestResult, 200)
@problems(400, 401, 403, 408, 409, 413, 415, 422, 429, 503)
async def ingest_events() -> Response:
    """Ingest one event or a batch, all-or-nothing and idempotent by id.

    201 when at least one event was newly stored, 200 when every id was already stored with the same content.
    A 2xx means the events are committed. Send your own ids to make retries after a 503 safe. An id already
    stored with different content is 409 ID_CONFLICT, and then nothing of the request is stored.
    """
    state = app_state()
    settings = state.settings
    if settings.degraded_mode == "read_only":
        raise ApiError(
            503,
            "WRITES_DISABLED",
            "Ingest is paused (DEGRADED_MODE=read_only); reads still work. Retry later.",
            headers={"Retry-After": str(WRITES_DISABLED_RETRY_AFTER_S)},
        )
    payload = await read_json_body()
    items, is_batch = _parse_ingest(payload, settings.ingest_max_batch_items)
    attributes_json = _attributes_json(items, is_batch=is_batch, max_bytes=settings.event_attributes_max_bytes)
    ids = [item.id if item.id is not None else uuid7() for item in items]
    insert = partial(
        repository.insert_events, items=items, ids=ids, written_by=g.principal.id, attributes_json=attributes_json
    )
    outcome = await state.database.run(insert)
    body = {
        "accepted": outcome.accepted,
        "duplicates": len(outcome.duplicate_ids),
        "ids": outcome.ids,
        "duplicate_ids": outcome.duplicate_ids,
    }
    return json_response(body, 201 if outcome.accepted else 200)


@blueprint.get("/events")
@rate_limited(READ)
@require_scope(READ)
@document_querystring(ListQuery)
@document_response(EventPage, 200)
@problems(400, 401, 403, 422, 429, 503)
async def list_events() -> Response:
    """List events newest first, filtered by source, type and time range, with keyset pagination.

    A page ends at `limit` events or at LIST_PAGE_MAX_BYTES of JSON, whichever comes first; `next_cursor`
    continues it. A cursor that this API did not issue is 400 INVALID_CURSOR.
    """
    query = parse_query(ListQuery)
    state = app_state()
    after = state.cursors.decode(query.cursor) if query.cursor is not None else None
    settings = state.settings
    rows_budget = page_rows_budget(settings.list_page_max_bytes, settings.event_attributes_max_bytes)
    page, next_position = await state.database.run(
        partial(repository.list_events, query=query, after=after, rows_budget=rows_budget), read_only=True
    )
    next_cursor = state.cursors.encode(next_position) if next_position is not None else None
    return json_response({"items": page, "next_cursor": next_cursor})


@blueprint.get("/events/stats")
@rate_limited(READ)
@require_scope(READ)
@document_querystring(StatsQuery)
@document_response(StatsResult, 200)
@problems(401, 403, 422, 429, 503)
async def event_stats() -> Response:
    """Count events per time bucket (minute, hour, day), grouped by type or source.

    At most LIST_PAGE_MAX_BYTES of buckets are answered; a larger answer is 422 STATS_TOO_LARGE.
    """
    query = parse_query(StatsQuery)
    state = app_state()
    max_buckets = state.settings.list_page_max_bytes // STATS_BUCKET_MAX_BYTES
    stats = partial(repository.stats_json, query=query, max_buckets=max_buckets)
    total, buckets = await state.database.run(stats, read_only=True)
    head = {"group_by": query.group_by, "bucket": query.bucket, "since": query.since, "until": query.until}
    return json_response_with_raw(head | {"total": total}, "buckets", buckets)


@blueprint.get("/events/<event_id>")
@rate_limited(READ)
@require_scope(READ)
@document_response(EventOut, 200)
@problems(401, 403, 404, 422, 429, 503)
async def get_event(event_id: str) -> Response:
    """Get one event by id."""
    try:
        parsed = UUID(event_id)
    except ValueError:
        raise invalid(
            [{"loc": ["path", "event_id"], "msg": "must be a UUID", "type": "uuid_parsing"}],
            "The event id is not a UUID.",
        ) from None
    event = await app_state().database.run(partial(repository.get_event, event_id=parsed), read_only=True)
    if event is None:
        raise ApiError(404, "EVENT_NOT_FOUND", f"No event has the id {parsed}.")
    return json_response(event)
