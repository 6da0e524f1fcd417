"""The event API against a real PostgreSQL: ingest, idempotency, queries, pagination, stats."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from quart.typing import TestClientProtocol as Client

from tests.helpers import API_KEY_HEADERS, event

pytestmark = pytest.mark.integration


async def stored(db: asyncpg.Connection, source: str) -> int:
    return int(await db.fetchval("SELECT count(*) FROM events WHERE source = $1", source))


async def test_single_event_is_stored_and_readable(client: Client, db: asyncpg.Connection) -> None:
    payload = event(attributes={"amount": 42, "tags": ["a", "b"], "nested": {"ok": True}})
    response = await client.post("/api/v1/events", json=payload, headers=API_KEY_HEADERS)
    assert response.status_code == 201
    body = await response.get_json()
    assert body["accepted"] == 1
    assert body["duplicates"] == 0
    assert body["duplicate_ids"] == []
    (event_id,) = body["ids"]
    assert uuid.UUID(event_id).version == 7  # server-generated ids are time-ordered

    fetched = await client.get(f"/api/v1/events/{event_id}", headers=API_KEY_HEADERS)
    assert fetched.status_code == 200
    stored_event = await fetched.get_json()
    assert stored_event["source"] == payload["source"]
    assert stored_event["type"] == payload["type"]
    assert stored_event["occurred_at"] == "2026-11-20T10:00:00Z"
    assert stored_event["attributes"] == payload["attributes"]
    assert stored_event["received_at"].endswith("Z")
    assert await stored(db, payload["source"]) == 1


@pytest.mark.parametrize(
    ("sent", "stored_as"),
    [
        ("2026-11-20T19:00:00+09:00", "2026-11-20T10:00:00Z"),
        ("2026-11-20T10:00:00.123456Z", "2026-11-20T10:00:00.123456Z"),
        ("1378-11-27T00:49:41.66Z", "1378-11-27T00:49:41.660000Z"),
        ("9999-12-31T23:59:59Z", "9999-12-31T23:59:59Z"),
    ],
)
async def test_occurred_at_is_stored_in_utc(client: Client, sent: str, stored_as: str) -> None:
    response = await client.post("/api/v1/events", json=event(occurred_at=sent), headers=API_KEY_HEADERS)
    assert response.status_code == 201
    (event_id,) = (await response.get_json())["ids"]
    fetched = await (await client.get(f"/api/v1/events/{event_id}", headers=API_KEY_HEADERS)).get_json()
    assert fetched["occurred_at"] == stored_as


async def test_batch_is_stored_in_request_order(client: Client, db: asyncpg.Connection) -> None:
    source = f"batch-{uuid.uuid4().hex[:8]}"
    ids = [str(uuid.uuid4()) for _ in range(5)]
    items = [event(source, id=event_id, type=f"t{i}") for i, event_id in enumerate(ids)]
    response = await client.post("/api/v1/events", json={"items": items}, headers=API_KEY_HEADERS)
    assert response.status_code == 201
    body = await response.get_json()
    assert body["ids"] == ids
    assert body["accepted"] == 5
    assert await stored(db, source) == 5


async def test_resending_ids_is_idempotent(client: Client, db: asyncpg.Connection) -> None:
    source = f"idem-{uuid.uuid4().hex[:8]}"
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    await client.post("/api/v1/events", json={"items": [event(source, id=first)]}, headers=API_KEY_HEADERS)

    again = await client.post(
        "/api/v1/events",
        json={"items": [event(source, id=first), event(source, id=second)]},
        headers=API_KEY_HEADERS,
    )
    assert again.status_code == 201
    body = await again.get_json()
    assert (body["accepted"], body["duplicates"], body["duplicate_ids"]) == (1, 1, [first])

    all_again = await client.post("/api/v1/events", json=event(source, id=second), headers=API_KEY_HEADERS)
    assert all_again.status_code == 200  # nothing new stored
    assert (await all_again.get_json())["duplicate_ids"] == [second]
    assert await stored(db, source) == 2


async def test_the_same_id_twice_in_one_batch_is_stored_once(client: Client, db: asyncpg.Connection) -> None:
    source = f"twice-{uuid.uuid4().hex[:8]}"
    event_id = str(uuid.uuid4())
    response = await client.post(
        "/api/v1/events",
        json={"items": [event(source, id=event_id), event(source, id=event_id)]},
        headers=API_KEY_HEADERS,
    )
    body = await response.get_json()
    assert (body["accepted"], body["duplicates"]) == (1, 1)
    assert await stored(db, source) == 1


async def test_a_batch_with_one_bad_item_writes_nothing(client: Client, db: asyncpg.Connection) -> None:
    source = f"allornothing-{uuid.uuid4().hex[:8]}"
    items = [event(source), event(source), event(source, occurred_at="not a time")]
    response = await client.post("/api/v1/events", json={"items": items}, headers=API_KEY_HEADERS)
    assert response.status_code == 422
    problem = await response.get_json()
    assert problem["code"] == "VALIDATION_FAILED"
    assert ["items", 2, "occurred_at"] in [error["loc"] for error in problem["errors"]]
    assert await stored(db, source) == 0


async def test_get_unknown_event_is_404(client: Client) -> None:
    response = await client.get(f"/api/v1/events/{uuid.uuid4()}", headers=API_KEY_HEADERS)
    assert response.status_code == 404
    assert (await response.get_json())["code"] == "EVENT_NOT_FOUND"


async def _ingest_series(client: Client, source: str, count: int, start: datetime) -> list[str]:
    items = [
        event(
            source,
            type="even" if i % 2 == 0 else "odd",
            occurred_at=(start + timedelta(seconds=30 * i)).isoformat(),
        )
        for i in range(count)
    ]
    response = await client.post("/api/v1/events", json={"items": items}, headers=API_KEY_HEADERS)
    assert response.status_code == 201
    ids: list[str] = (await response.get_json())["ids"]
    return ids


async def test_list_filters_and_pages_through_everything_once(client: Client) -> None:
    source = f"page-{uuid.uuid4().hex[:8]}"
    start = datetime(2026, 11, 1, tzinfo=UTC)
    ids = await _ingest_series(client, source, 23, start)
    # Two events at the same instant must still be ordered and paged without loss (id breaks the tie).
    tie = await client.post(
        "/api/v1/events",
        json=event(source, type="even", occurred_at=start.isoformat()),
        headers=API_KEY_HEADERS,
    )
    ids += (await tie.get_json())["ids"]

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"source": source, "limit": "5"} | ({"cursor": cursor} if cursor else {})
        response = await client.get("/api/v1/events", query_string=params, headers=API_KEY_HEADERS)
        assert response.status_code == 200
        page = await response.get_json()
        seen += [item["id"] for item in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 5
    assert sorted(seen) == sorted(ids)
    assert len(seen) == len(set(seen))

    newest = await (
        await client.get("/api/v1/events", query_string={"source": source, "limit": "3"}, headers=API_KEY_HEADERS)
    ).get_json()
    occurred = [item["occurred_at"] for item in newest["items"]]
    assert occurred == sorted(occurred, reverse=True)

    odd = await (
        await client.get(
            "/api/v1/events",
            query_string={
                "source": source,
                "type": "odd",
                "since": (start + timedelta(minutes=2)).isoformat(),
                "until": (start + timedelta(minutes=5)).isoformat(),
            },
            headers=API_KEY_HEADERS,
        )
    ).get_json()
    # Odd indexes i with 120 s <= 30 i < 300 s: 5, 7, 9.
    assert len(odd["items"]) == 3
    assert {item["type"] for item in odd["items"]} == {"odd"}


async def test_time_filters_accept_an_unencoded_plus_offset(client: Client) -> None:
    # '+09:00' sent unencoded arrives as ' 09:00'; the API restores the sign instead of refusing.
    response = await client.get(
        "/api/v1/events?since=2026-11-01T09:00:00+09:00&source=nothing-here", headers=API_KEY_HEADERS
    )
    assert response.status_code == 200


async def test_stats_counts_per_bucket(client: Client) -> None:
    source = f"stats-{uuid.uuid4().hex[:8]}"
    start = datetime(2026, 10, 5, 12, 0, tzinfo=UTC)
    await _ingest_series(client, source, 10, start)  # 10 events, 30 s apart: minutes 0..4, 2 per minute
    params = {
        "source": source,
        "group_by": "type",
        "bucket": "minute",
        "since": start.isoformat(),
        "until": (start + timedelta(hours=1)).isoformat(),
    }
    response = await client.get("/api/v1/events/stats", query_string=params, headers=API_KEY_HEADERS)
    assert response.status_code == 200
    stats = await response.get_json()
    assert stats["total"] == 10
    assert len(stats["buckets"]) == 10  # 5 minutes x {even, odd}
    assert all(bucket["count"] == 1 for bucket in stats["buckets"])
    assert stats["buckets"][0] == {"start": "2026-10-05T12:00:00Z", "key": "even", "count": 1}

    hourly = await (
        await client.get(
            "/api/v1/events/stats",
            query_string={**params, "bucket": "hour", "group_by": "source"},
            headers=API_KEY_HEADERS,
        )
    ).get_json()
    assert hourly["buckets"] == [{"start": "2026-10-05T12:00:00Z", "key": source, "count": 10}]


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"bucket": "minute", "since": "2026-01-01T00:00:00Z", "until": "2026-03-01T00:00:00Z"}, "buckets"),
        ({"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "earlier"),
        ({"until": "2026-01-01T00:00:00Z"}, "since"),
        ({"since": "2026-01-01T00:00:00Z", "until": "2026-01-02T00:00:00Z", "bucket": "week"}, "bucket"),
    ],
)
async def test_stats_refuses_bad_ranges(client: Client, params: dict[str, str], fragment: str) -> None:
    response = await client.get("/api/v1/events/stats", query_string=params, headers=API_KEY_HEADERS)
    assert response.status_code == 422
    problem = await response.get_json()
    assert problem["code"] == "VALIDATION_FAILED"
    assert fragment in str(problem["errors"])
