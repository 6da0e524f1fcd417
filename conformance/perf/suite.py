"""The query suite of the performance gate: the queries clients run (listing with filters and time ranges, the
next page of a keyset listing, get by id, stats per minute/hour/day bucket), each a maker of one request with
random, unaligned parameters drawn from what is known about the target's data."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


@dataclass
class Dataset:
    """What the suite knows about the target's data, found through the API."""

    newest: datetime
    start: datetime  # the suite's span: at most `span_days` before the newest event
    sources: list[str]
    types: list[str]
    ids: list[str]
    cursors: list[tuple[str, str]]  # (source, cursor of a later page of that source's listing)


def utc_iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


Request = tuple[str, dict[str, str]]
QueryMaker = Callable[[Dataset, random.Random], Request]


def _window(data: Dataset, rng: random.Random, length: timedelta) -> tuple[str, str]:
    """A window of `length` at a random (unaligned) place in the span."""
    room = max((data.newest - data.start - length).total_seconds(), 0.0)
    since = data.start + timedelta(seconds=rng.uniform(0, room))
    return utc_iso(since), utc_iso(since + length)


def _whole_span(data: Dataset, rng: random.Random) -> tuple[str, str]:
    """The whole span, its start moved by up to a minute so that edges are never aligned the same way."""
    return utc_iso(data.start + timedelta(seconds=rng.uniform(0, 60))), utc_iso(data.newest + timedelta(seconds=1))


def _list_latest(data: Dataset, rng: random.Random) -> Request:
    return "/api/v1/events", {"limit": "50"}


def _list_source_hour(data: Dataset, rng: random.Random) -> Request:
    since, until = _window(data, rng, timedelta(hours=1))
    return "/api/v1/events", {"source": rng.choice(data.sources), "since": since, "until": until, "limit": "50"}


def _list_type_day(data: Dataset, rng: random.Random) -> Request:
    since, until = _window(data, rng, timedelta(days=1))
    return "/api/v1/events", {"type": rng.choice(data.types), "since": since, "until": until, "limit": "100"}


def _list_next_page(data: Dataset, rng: random.Random) -> Request:
    source, cursor = rng.choice(data.cursors)
    return "/api/v1/events", {"source": source, "cursor": cursor, "limit": "50"}


def _get_by_id(data: Dataset, rng: random.Random) -> Request:
    return f"/api/v1/events/{rng.choice(data.ids)}", {}


def _stats(group_by: str, bucket: str, length: timedelta | None, filters: str = "") -> QueryMaker:
    def make(data: Dataset, rng: random.Random) -> Request:
        since, until = _whole_span(data, rng) if length is None else _window(data, rng, length)
        params = {"group_by": group_by, "bucket": bucket, "since": since, "until": until}
        if filters == "source":
            params["source"] = rng.choice(data.sources)
        elif filters == "type":
            params["type"] = rng.choice(data.types)
        return "/api/v1/events/stats", params

    return make


SUITE: dict[str, QueryMaker] = {
    "list latest 50": _list_latest,
    "list by source, 1 h": _list_source_hour,
    "list by type, 1 day": _list_type_day,
    "list next page (cursor)": _list_next_page,
    "get by id": _get_by_id,
    "stats type/minute, 1 h": _stats("type", "minute", timedelta(hours=1)),
    "stats source/hour, 1 day": _stats("source", "hour", timedelta(days=1)),
    "stats type/hour, 7 days, 1 source": _stats("type", "hour", timedelta(days=7), "source"),
    "stats type/day, all 30 days": _stats("type", "day", None),
    "stats source/day, all 30 days, 1 type": _stats("source", "day", None, "type"),
}
