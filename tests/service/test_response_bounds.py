"""RB-SEC-RESPONSE-BOUND: no answer is larger than its documented budget. A list page ends early, with a
cursor to continue, at LIST_PAGE_MAX_BYTES; one event's attributes are at most EVENT_ATTRIBUTES_MAX_BYTES; a
stats answer beyond the budget is 422 rather than megabytes built in a worker's memory."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable

import pytest
from quart import Quart
from quart.typing import TestClientProtocol as Client

from service.app import create_app
from service.settings import Settings
from tests.helpers import API_KEY_HEADERS, event

pytestmark = pytest.mark.integration

PAGE_MAX_BYTES = 65536
ATTRIBUTES_MAX_BYTES = 16384


@pytest.fixture(scope="module")
async def bounded_app(make_settings: Callable[..., Settings]) -> AsyncIterator[Quart]:
    settings = make_settings(list_page_max_bytes=PAGE_MAX_BYTES, event_attributes_max_bytes=ATTRIBUTES_MAX_BYTES)
    application = create_app(settings)
    async with application.test_app():
        yield application


@pytest.fixture
def client(bounded_app: Quart) -> Client:
    return bounded_app.test_client()


def _attributes(size: int) -> dict[str, str]:
    """Attributes whose compact JSON is close to `size` bytes, in strings under the per-string limit."""
    parts = {f"part{index}": "y" * 4000 for index in range(size // 4020)}
    return parts


async def test_a_list_page_ends_at_its_byte_budget_and_continues(client: Client) -> None:
    source = f"big-{uuid.uuid4().hex[:8]}"
    items = [event(source, attributes=_attributes(ATTRIBUTES_MAX_BYTES)) for _ in range(30)]
    response = await client.post("/api/v1/events", json={"items": items}, headers=API_KEY_HEADERS)
    assert response.status_code == 201
    ids = set((await response.get_json())["ids"])

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"source": source, "limit": "500", **({"cursor": cursor} if cursor else {})}
        page = await client.get("/api/v1/events", query_string=params, headers=API_KEY_HEADERS)
        raw = await page.get_data()
        assert len(raw) <= PAGE_MAX_BYTES, f"a page of {len(raw)} bytes"
        body = await page.get_json()
        seen += [item["id"] for item in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages > 1, "the budget never ended a page"
    assert sorted(seen) == sorted(ids), "every event once, none lost at a page end"


async def test_attributes_over_the_limit_are_422_naming_the_event(client: Client) -> None:
    source = f"too-big-{uuid.uuid4().hex[:8]}"
    batch = {"items": [event(source), event(source, attributes=_attributes(ATTRIBUTES_MAX_BYTES + 8100))]}
    response = await client.post("/api/v1/events", json=batch, headers=API_KEY_HEADERS)
    assert response.status_code == 422
    body = await response.get_json()
    assert [error["loc"] for error in body["errors"]] == [["body", "items", 1, "attributes"]]
    listed = await client.get("/api/v1/events", query_string={"source": source}, headers=API_KEY_HEADERS)
    assert (await listed.get_json())["items"] == [], "nothing of the batch was stored"


async def test_a_stats_answer_beyond_the_budget_is_422(client: Client) -> None:
    source = f"many-types-{uuid.uuid4().hex[:8]}"
    most = PAGE_MAX_BYTES // 256  # the buckets that fit in the budget (service/bounds.py)
    items = [event(source, type=f"type.{index}", occurred_at="2026-11-20T10:00:00Z") for index in range(most + 1)]
    assert (await client.post("/api/v1/events", json={"items": items}, headers=API_KEY_HEADERS)).status_code == 201
    params = {"since": "2026-11-20T10:00:00Z", "until": "2026-11-20T10:01:00Z", "bucket": "minute", "source": source}
    response = await client.get("/api/v1/events/stats", query_string=params, headers=API_KEY_HEADERS)
    assert response.status_code == 422
    assert (await response.get_json())["code"] == "STATS_TOO_LARGE"
    fewer = {**params, "until": "2026-11-20T10:01:00Z"}
    items = [event(source + "-few", type=f"type.{index}") for index in range(3)]
    assert (await client.post("/api/v1/events", json={"items": items}, headers=API_KEY_HEADERS)).status_code == 201
    fine = await client.get(
        "/api/v1/events/stats",
        query_string={**fewer, "source": source + "-few", "since": "2026-11-20T10:00:00Z"},
        headers=API_KEY_HEADERS,
    )
    assert fine.status_code == 200
    assert (await fine.get_json())["total"] == 3
