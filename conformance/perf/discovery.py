"""What the query suite needs to know about a target's data, found through its API with reads only: the span,
sources, types, sample ids and cursors of later pages; and which queries the data cannot support."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from conformance.perf.errors import TargetError
from conformance.perf.suite import Dataset, utc_iso


async def _get_json(client: httpx.AsyncClient, path: str, params: dict[str, str]) -> Any:
    try:
        response = await client.get(path, params=params)
    except httpx.HTTPError as error:
        raise TargetError(f"GET {path}: {type(error).__name__}: {error}") from None
    if response.status_code in (401, 403):
        raise TargetError(f"GET {path}: {response.status_code}; check the API key ({response.text[:200]})")
    if response.status_code != 200:
        raise TargetError(f"GET {path}: {response.status_code} {response.text[:300]}")
    return response.json()


# Events the conformance suite wrote (conformance/suite_events.py): marked by this source prefix and dated in
# 2001, so that they stay out of the span; their sources are not benchmarked as if they were traffic.
CONFORMANCE_SOURCE_PREFIX = "rb-conformance-"
# An event dated further ahead than this is not traffic (a clock gone wrong, a fuzzer's year 8690): the span
# ends at the newest event before now + this.
FUTURE_SLACK = timedelta(days=1)
# Page sizes tried, largest first, until some source's listing has a second page to take a cursor from.
CURSOR_PAGE_SIZES = ("50", "10", "2", "1")
NO_SECOND_PAGE = "skipped: no source has a second page even at limit=1 (seed more events: scripts/seed_events.py)"


async def discover(client: httpx.AsyncClient, span_days: int, rng: random.Random) -> Dataset:
    """Ranges, sources, types, ids and cursors from the target's own data (reads only)."""
    not_future = utc_iso(datetime.now(UTC) + FUTURE_SLACK)
    latest = await _get_json(client, "/api/v1/events", {"limit": "1", "until": not_future})
    if not latest["items"]:
        raise TargetError("the target has no events; a remote profile never seeds (see scripts/seed_events.py)")
    newest = datetime.fromisoformat(latest["items"][0]["occurred_at"])
    wide_since = utc_iso(newest - timedelta(days=span_days))
    until = utc_iso(newest + timedelta(seconds=1))
    keys: dict[str, list[str]] = {}
    first_day = newest
    for group_by in ("source", "type"):
        stats = await _get_json(
            client,
            "/api/v1/events/stats",
            {"group_by": group_by, "bucket": "day", "since": wide_since, "until": until},
        )
        totals: dict[str, int] = {}
        for bucket in stats["buckets"]:
            totals[bucket["key"]] = totals.get(bucket["key"], 0) + bucket["count"]
            first_day = min(first_day, datetime.fromisoformat(bucket["start"]))
        ours = [key for key in totals if group_by == "source" and key.startswith(CONFORMANCE_SOURCE_PREFIX)]
        if len(ours) < len(totals):  # the suite's own events count only where nothing else is stored
            for key in ours:
                del totals[key]
        keys[group_by] = sorted(totals, key=lambda key: -totals[key])
    start = max(first_day, newest - timedelta(days=span_days))
    ids: list[str] = []
    for _ in range(8):
        moment = start + (newest - start) * rng.random()
        page = await _get_json(client, "/api/v1/events", {"until": utc_iso(moment), "limit": "250"})
        ids += [item["id"] for item in page["items"]]
    if len(ids) < 10:
        raise TargetError(f"the target has too few events to benchmark ({len(ids)} found)")
    cursors = await _discover_cursors(client, keys["source"][:6])
    return Dataset(newest=newest, start=start, sources=keys["source"], types=keys["type"], ids=ids, cursors=cursors)


async def _discover_cursors(client: httpx.AsyncClient, sources: list[str]) -> list[tuple[str, str]]:
    """Cursors of later pages of the busiest sources' listings. A cursor is a position, valid whatever the
    limit of the page it continues, so when no source has more than 50 events a smaller page size finds
    one; none at all (every source has a single event) leaves the list empty, and the query is skipped."""
    for page_size in CURSOR_PAGE_SIZES:
        cursors: list[tuple[str, str]] = []
        for source in sources:
            cursor: str | None = None
            for _ in range(5):
                params = {"source": source, "limit": page_size} | ({"cursor": cursor} if cursor else {})
                page = await _get_json(client, "/api/v1/events", params)
                cursor = page["next_cursor"]
                if not cursor:
                    break
                cursors.append((source, cursor))
        if cursors:
            return cursors
    return []


def skipped_queries(data: Dataset) -> dict[str, str]:
    """Queries the target's data cannot support, with the reason (never sent with a made-up parameter)."""
    return {} if data.cursors else {"list next page (cursor)": NO_SECOND_PAGE}
