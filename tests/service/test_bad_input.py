"""Bad input: each case is a clear 4xx problem+json and writes nothing."""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg
import pytest
from quart.typing import TestClientProtocol as Client

from tests.helpers import API_KEY_HEADERS, event

pytestmark = pytest.mark.integration

SOURCE = "bad-input-suite"


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"child": value}
    return value


BAD_BODIES: list[tuple[str, bytes, int, str]] = [
    ("malformed JSON", b'{"source": "bad-input-suite", ', 400, "MALFORMED_JSON"),
    (
        "NaN literal",
        b'{"source": "bad-input-suite", "type": "t", "occurred_at": "2026-01-01T00:00:00Z", "attributes": {"x": NaN}}',
        400,
        "MALFORMED_JSON",
    ),
    (
        "lone surrogate",
        b'{"source": "bad-input-suite", "type": "t", "occurred_at": "2026-01-01T00:00:00Z", '
        b'"attributes": {"x": "\\ud800"}}',
        400,
        "MALFORMED_JSON",
    ),
    ("empty body", b"", 400, "MALFORMED_JSON"),
    ("JSON array", b"[]", 422, "VALIDATION_FAILED"),
    ("JSON string", b'"hello"', 422, "VALIDATION_FAILED"),
    ("empty batch", b'{"items": []}', 422, "VALIDATION_FAILED"),
    ("items not a list", b'{"items": {"source": "x"}}', 422, "VALIDATION_FAILED"),
]


def _event_json(**fields: Any) -> bytes:
    return json.dumps(event(SOURCE, **fields)).encode()


BAD_EVENTS: list[tuple[str, dict[str, Any]]] = [
    ("unknown field", {"colour": "blue"}),
    ("source wrong type", {"source": 12}),
    ("type missing", {"type": None}),
    ("attributes not an object", {"attributes": [1, 2]}),
    ("timestamp garbage", {"occurred_at": "yesterday"}),
    ("timestamp without offset", {"occurred_at": "2026-01-01T00:00:00"}),
    ("timestamp as epoch number", {"occurred_at": 1767225600}),
    ("timestamp overflowing when normalised", {"occurred_at": "0001-01-01T00:00:00+01:00"}),
    ("source too long", {"source": "s" * 129}),
    ("source with spaces", {"source": "has spaces"}),
    ("source with NUL", {"source": "a\u0000b"}),
    ("type empty", {"type": ""}),
    ("id not a UUID", {"id": "not-a-uuid"}),
    ("attributes too deep", {"attributes": _nested(9)}),
    ("attributes NUL in value", {"attributes": {"x": "a\u0000b"}}),
    ("attributes NUL in key", {"attributes": {"a\u0000": 1}}),
    ("attributes huge string", {"attributes": {"x": "y" * 9000}}),
    ("attributes too many values", {"attributes": {f"k{i}": i for i in range(2100)}}),
]


async def _nothing_from_suite(db: asyncpg.Connection) -> None:
    assert await db.fetchval("SELECT count(*) FROM events WHERE source = $1", SOURCE) == 0


def _assert_problem(response_json: dict[str, Any], status: int, code: str) -> None:
    assert response_json["status"] == status
    assert response_json["code"] == code
    assert response_json["type"].startswith("urn:")
    assert response_json["title"]
    assert response_json["detail"]
    assert response_json["request_id"]


@pytest.mark.parametrize(("name", "body", "status", "code"), BAD_BODIES, ids=[case[0] for case in BAD_BODIES])
async def test_bad_bodies(
    client: Client, db: asyncpg.Connection, name: str, body: bytes, status: int, code: str
) -> None:
    response = await client.post(
        "/api/v1/events", data=body, headers={**API_KEY_HEADERS, "Content-Type": "application/json"}
    )
    assert response.status_code == status, name
    assert response.content_type == "application/problem+json"
    _assert_problem(await response.get_json(), status, code)
    await _nothing_from_suite(db)


@pytest.mark.parametrize(("name", "fields"), BAD_EVENTS, ids=[case[0] for case in BAD_EVENTS])
async def test_bad_events_alone_and_in_a_batch(
    client: Client, db: asyncpg.Connection, name: str, fields: dict[str, Any]
) -> None:
    bad = {key: value for key, value in {**event(SOURCE), **fields}.items() if value is not None}
    for body in (bad, {"items": [event(SOURCE), bad]}):
        response = await client.post("/api/v1/events", json=body, headers=API_KEY_HEADERS)
        assert response.status_code == 422, name
        problem = await response.get_json()
        _assert_problem(problem, 422, "VALIDATION_FAILED")
        assert problem["errors"], "the problem names what is wrong"
        assert all("input" not in error for error in problem["errors"]), "errors do not echo the input back"
    await _nothing_from_suite(db)


async def test_wrong_content_type_is_415(client: Client, db: asyncpg.Connection) -> None:
    response = await client.post(
        "/api/v1/events", data=_event_json(), headers={**API_KEY_HEADERS, "Content-Type": "text/plain"}
    )
    assert response.status_code == 415
    _assert_problem(await response.get_json(), 415, "UNSUPPORTED_MEDIA_TYPE")
    await _nothing_from_suite(db)


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ("cursor=not-base64!!", 400, "INVALID_CURSOR"),
        ("cursor=WyJ4IiwgInkiXQ", 400, "INVALID_CURSOR"),  # base64 of ["x", "y"]
        ("cursor=" + "A" * 600, 422, "VALIDATION_FAILED"),
        ("limit=0", 422, "VALIDATION_FAILED"),
        ("limit=501", 422, "VALIDATION_FAILED"),
        ("limit=ten", 422, "VALIDATION_FAILED"),
        ("since=garbage", 422, "VALIDATION_FAILED"),
        ("since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z", 422, "VALIDATION_FAILED"),
        ("source=a&source=b", 422, "VALIDATION_FAILED"),
        ("unknown=1", 422, "VALIDATION_FAILED"),
    ],
)
async def test_bad_list_queries(client: Client, query: str, status: int, code: str) -> None:
    response = await client.get(f"/api/v1/events?{query}", headers=API_KEY_HEADERS)
    assert response.status_code == status
    _assert_problem(await response.get_json(), status, code)


@pytest.mark.parametrize("bad_id", ["not-a-uuid", "1234", "0" * 40, "%00"])
async def test_bad_event_ids_are_422(client: Client, bad_id: str) -> None:
    response = await client.get(f"/api/v1/events/{bad_id}", headers=API_KEY_HEADERS)
    assert response.status_code == 422
    _assert_problem(await response.get_json(), 422, "VALIDATION_FAILED")


async def test_unknown_route_and_method_are_problems(client: Client) -> None:
    missing = await client.get("/api/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.content_type == "application/problem+json"
    _assert_problem(await missing.get_json(), 404, "NOT_FOUND")

    wrong_method = await client.delete(f"/api/v1/events/{uuid.uuid4()}", headers=API_KEY_HEADERS)
    assert wrong_method.status_code == 405
    assert wrong_method.headers["Allow"] == "GET, HEAD, OPTIONS"
    _assert_problem(await wrong_method.get_json(), 405, "METHOD_NOT_ALLOWED")
