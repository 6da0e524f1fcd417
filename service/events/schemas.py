"""Request and response shapes of the event API (pydantic), which also feed `/openapi.json`.

Input rules exist so that bad input is refused here with a 4xx, never discovered later by PostgreSQL as a 500:
names are short and printable, timestamps are RFC 3339 with an offset and storable in UTC, and
`attributes` is a bounded JSON object with no NUL characters (PostgreSQL's jsonb cannot store them) and no
non-finite numbers.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

MAX_ATTRIBUTE_DEPTH = 8
MAX_ATTRIBUTE_NODES = 2000
MAX_ATTRIBUTE_STRING = 8192
MAX_LIST_LIMIT = 500
DEFAULT_LIST_LIMIT = 50
MAX_STATS_BUCKETS = 10_080  # one week of minutes, 27 years of days
_OFFSET_WITH_SPACE = re.compile(r" (\d{2}:?\d{2})$")
# RFC 3339's date-time (with "t" or " " for "T", as its note allows). Without this, pydantic would also take
# a number in a string ("0.5", "1700000000") as seconds since 1970.
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:?\d{2})")

BUCKET_SIZES: dict[str, timedelta] = {
    "minute": timedelta(minutes=1),
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
}


def _rfc3339_string(value: object) -> object:
    """Timestamps must be strings (not epoch numbers); a '+' a query string turned into ' ' is restored."""
    if not isinstance(value, str):
        raise ValueError("must be an RFC 3339 timestamp string, e.g. 2026-01-31T12:00:00Z")
    value = _OFFSET_WITH_SPACE.sub(r"+\1", value)
    if not _RFC3339.fullmatch(value):
        raise ValueError("must be an RFC 3339 timestamp with an offset, e.g. 2026-01-31T12:00:00Z")
    return value


def _as_utc(value: datetime) -> datetime:
    """Normalise to UTC; a time whose UTC form falls outside years 1-9999 cannot be stored."""
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is outside the supported range (years 1 to 9999 in UTC)") from None


Timestamp = Annotated[AwareDatetime, BeforeValidator(_rfc3339_string), AfterValidator(_as_utc)]

Name = Annotated[
    str,
    StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]*$"),
]


def _check_attribute_value(value: Any, depth: int, budget: list[int]) -> None:
    budget[0] -= 1
    if budget[0] < 0:
        raise ValueError(f"has more than {MAX_ATTRIBUTE_NODES} values in all")
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("strings may not contain NUL (\\u0000)")
        if len(value) > MAX_ATTRIBUTE_STRING:
            raise ValueError(f"strings may be at most {MAX_ATTRIBUTE_STRING} characters")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("numbers must be finite")
    elif isinstance(value, dict | list):
        if depth > MAX_ATTRIBUTE_DEPTH:
            raise ValueError(f"may nest at most {MAX_ATTRIBUTE_DEPTH} levels deep")
        if isinstance(value, dict):
            for key, item in value.items():
                _check_attribute_value(key, depth + 1, budget)
                _check_attribute_value(item, depth + 1, budget)
        else:
            for item in value:
                _check_attribute_value(item, depth + 1, budget)


def _bounded_attributes(value: dict[str, Any]) -> dict[str, Any]:
    _check_attribute_value(value, 1, [MAX_ATTRIBUTE_NODES])
    return value


# -- the same rules as JSON Schema, for /openapi.json ----------------------------------------------------
# A client (or Schemathesis) that follows the document must not be refused: strings without NUL and within
# the length limit, keys likewise. A value is one recursive component: JSON Schema cannot bound nesting
# depth short of spelling out every level (which made Schemathesis' coverage phase explode), so the depth
# limit, like the total number of values and the size in bytes, is in the description.
ATTRIBUTE_VALUE_SCHEMA = "AttributeValue"
_TEXT_WITHOUT_NUL = {"type": "string", "pattern": "^[^\\u0000]*$", "maxLength": MAX_ATTRIBUTE_STRING}
_VALUE_REF = {"$ref": f"#/components/schemas/{ATTRIBUTE_VALUE_SCHEMA}"}


def _object_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "propertyNames": _TEXT_WITHOUT_NUL,
        "additionalProperties": _VALUE_REF,
        "maxProperties": MAX_ATTRIBUTE_NODES // 2,
    }


def attributes_schema() -> dict[str, Any]:
    """What /openapi.json says of `attributes` beyond pydantic's `{"type": "object"}`."""
    return _object_schema()


def attribute_value_schemas() -> dict[str, dict[str, Any]]:
    """The component the `attributes` schema refers to: any value inside it."""
    value = {
        "description": f"A JSON value; containers nest at most {MAX_ATTRIBUTE_DEPTH} levels deep in all.",
        "anyOf": [
            _TEXT_WITHOUT_NUL,
            {"type": "number"},
            {"type": "boolean"},
            {"type": "null"},
            {"type": "array", "items": _VALUE_REF, "maxItems": MAX_ATTRIBUTE_NODES},
            _object_schema(),
        ],
    }
    return {ATTRIBUTE_VALUE_SCHEMA: value}


class EventIn(BaseModel):
    """One event to ingest."""

    model_config = ConfigDict(extra="forbid")

    id: UUID | None = Field(default=None, description="Client-chosen id; re-sending it is idempotent.")
    source: Name = Field(description="What emitted the event, e.g. `payments-api`.")
    type: Name = Field(description="What happened, e.g. `deploy.finished`.")
    occurred_at: Timestamp = Field(description="When it happened (RFC 3339 with offset).")
    attributes: Annotated[dict[str, Any], AfterValidator(_bounded_attributes)] = Field(
        default_factory=dict,
        description=f"Free-form JSON object: ≤ {MAX_ATTRIBUTE_DEPTH} levels, strings of ≤ {MAX_ATTRIBUTE_STRING} "
        f"characters without NUL, finite numbers, ≤ {MAX_ATTRIBUTE_NODES} keys and values in all, and at most "
        "EVENT_ATTRIBUTES_MAX_BYTES (default 65536) as compact JSON.",
    )


class EventBatchIn(BaseModel):
    """Several events ingested all-or-nothing (at most INGEST_MAX_BATCH_ITEMS)."""

    model_config = ConfigDict(extra="forbid")

    items: list[EventIn] = Field(min_length=1)


class IngestResult(BaseModel):
    """Outcome of an ingest: every id in request order, and which were already stored."""

    accepted: int = Field(description="Events newly stored by this request.")
    duplicates: int = Field(description="Events whose id was already stored (not stored again).")
    ids: list[UUID]
    duplicate_ids: list[UUID]


class EventOut(BaseModel):
    """A stored event."""

    id: UUID
    source: str
    type: str
    occurred_at: datetime
    received_at: datetime
    attributes: dict[str, Any]
    written_by: str | None = Field(
        description="The principal whose request stored the event (`api-key`, `jwt:<sub>`); null for events "
        "stored before this was recorded."
    )


class EventPage(BaseModel):
    """One page of events, newest first; pass `next_cursor` back as `cursor` for the next page.

    A page holds at most `limit` events and at most LIST_PAGE_MAX_BYTES of JSON: it can end early, with a
    `next_cursor`, before `limit` events. `next_cursor` is null on the last page."""

    items: list[EventOut]
    next_cursor: str | None


class _Query(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: Name | None = Field(default=None, description="Only events from this source.")
    type: Name | None = Field(default=None, description="Only events of this type.")

    @model_validator(mode="after")
    def _range_is_ordered(self) -> _Query:
        since, until = getattr(self, "since", None), getattr(self, "until", None)
        if since is not None and until is not None and since >= until:
            raise ValueError("`since` must be earlier than `until`")
        return self


class ListQuery(_Query):
    """Filters and paging for listing events."""

    since: Timestamp | None = Field(
        default=None, description="Inclusive lower bound of `occurred_at`; earlier than `until` when both are given."
    )
    until: Timestamp | None = Field(
        default=None, description="Exclusive upper bound of `occurred_at`; later than `since` when both are given."
    )
    cursor: str | None = Field(
        default=None,
        min_length=1,
        max_length=512,
        description="Opaque cursor from a previous page's `next_cursor`; any other value → 400 INVALID_CURSOR.",
    )
    limit: int = Field(default=DEFAULT_LIST_LIMIT, ge=1, le=MAX_LIST_LIMIT, description="Page size.")


class StatsQuery(_Query):
    """Counts of events per time bucket, grouped by type or source, over [since, until)."""

    since: Timestamp = Field(description="Inclusive start of the range; earlier than `until`.")
    until: Timestamp = Field(
        description="Exclusive end of the range; later than `since`, and at most MAX_STATS_BUCKETS (10,080) buckets "
        "after it."
    )
    group_by: Literal["type", "source"] = Field(default="type", description="Count per type or per source.")
    bucket: Literal["minute", "hour", "day"] = Field(default="hour", description="Bucket width.")

    @model_validator(mode="after")
    def _bounded_bucket_count(self) -> StatsQuery:
        buckets = (self.until - self.since) / BUCKET_SIZES[self.bucket]
        if buckets > MAX_STATS_BUCKETS:
            raise ValueError(
                f"the range spans {math.ceil(buckets)} {self.bucket} buckets; at most {MAX_STATS_BUCKETS} "
                "are allowed (use a wider bucket or a shorter range)"
            )
        return self


class StatsBucket(BaseModel):
    """Events of one type or source in one bucket."""

    start: datetime
    key: str
    count: int


class StatsResult(BaseModel):
    """Time-bucketed counts; buckets with no events are omitted."""

    group_by: Literal["type", "source"]
    bucket: Literal["minute", "hour", "day"]
    since: datetime
    until: datetime
    total: int
    buckets: list[StatsBucket]
