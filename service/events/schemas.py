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

BUCKET_SIZES: dict[str, timedelta] = {
    "minute": timedelta(minutes=1),
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
}


def _rfc3339_string(value: object) -> object:
    """Timestamps must be strings (not epoch numbers); a '+' a query string turned into ' ' is restored."""
    if not isinstance(value, str):
        raise ValueError("must be an RFC 3339 timestamp string, e.g. 2026-01-31T12:00:00Z")
    return _OFFSET_WITH_SPACE.sub(r"+\1", value)


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


class EventIn(BaseModel):
    """One event to ingest."""

    model_config = ConfigDict(extra="forbid")

    id: UUID | None = Field(default=None, description="Client-chosen id; re-sending it is idempotent.")
    source: Name = Field(description="What emitted the event, e.g. `payments-api`.")
    type: Name = Field(description="What happened, e.g. `deploy.finished`.")
    occurred_at: Timestamp = Field(description="When it happened (RFC 3339 with offset).")
    attributes: Annotated[dict[str, Any], AfterValidator(_bounded_attributes)] = Field(
        default_factory=dict,
        description=f"Free-form JSON object (≤ {MAX_ATTRIBUTE_DEPTH} levels, no NUL, finite numbers).",
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


class EventPage(BaseModel):
    """One page of events, newest first; pass `next_cursor` back as `cursor` for the next page."""

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

    since: Timestamp | None = Field(default=None, description="Inclusive lower bound of `occurred_at`.")
    until: Timestamp | None = Field(default=None, description="Exclusive upper bound of `occurred_at`.")
    cursor: str | None = Field(default=None, max_length=512, description="Opaque cursor from `next_cursor`.")
    limit: int = Field(default=DEFAULT_LIST_LIMIT, ge=1, le=MAX_LIST_LIMIT, description="Page size.")


class StatsQuery(_Query):
    """Counts of events per time bucket, grouped by type or source, over [since, until)."""

    since: Timestamp = Field(description="Inclusive start of the range.")
    until: Timestamp = Field(description="Exclusive end of the range.")
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
