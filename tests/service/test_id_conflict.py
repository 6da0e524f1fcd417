"""RB-DATA-ID-CONFLICT: a re-sent id is a duplicate only when its content is the same; with different content
it is 409 ID_CONFLICT and nothing of the request is stored. Each event records who wrote it."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import asyncpg
import pytest
from quart.typing import TestClientProtocol as Client

from service.errors import ApiError
from service.events import repository
from service.events.schemas import EventIn
from tests.helpers import API_KEY_HEADERS, event, make_token

pytestmark = pytest.mark.integration


async def _post(client: Client, payload: Any, headers: dict[str, str] = API_KEY_HEADERS) -> tuple[int, Any]:
    response = await client.post("/api/v1/events", json=payload, headers=headers)
    return response.status_code, await response.get_json()


async def _stored(db: asyncpg.Connection, event_id: str) -> asyncpg.Record | None:
    return await db.fetchrow(
        "SELECT source, type, attributes, written_by FROM events WHERE id = $1", uuid.UUID(event_id)
    )


async def test_identical_resend_is_a_duplicate_and_different_content_is_409(
    client: Client, db: asyncpg.Connection
) -> None:
    event_id = str(uuid.uuid4())
    original = event(id=event_id, attributes={"amount": 42})
    assert (await _post(client, original))[0] == 201
    status, body = await _post(client, original)
    assert (status, body["duplicate_ids"]) == (200, [event_id])

    status, body = await _post(client, {**original, "attributes": {"amount": 43}})
    assert status == 409
    assert (body["code"], body["conflicting_ids"]) == ("ID_CONFLICT", [event_id])
    stored = await _stored(db, event_id)
    assert stored is not None
    assert json.loads(stored["attributes"]) == {"amount": 42}, "the stored event is unchanged"

    for changed in ({"type": "other.type"}, {"source": "someone-else"}, {"occurred_at": "2026-11-20T10:00:01Z"}):
        assert (await _post(client, {**original, **changed}))[0] == 409, changed


async def test_a_batch_with_one_conflicting_id_stores_nothing(client: Client, db: asyncpg.Connection) -> None:
    taken = str(uuid.uuid4())
    assert (await _post(client, event(id=taken)))[0] == 201
    fresh = [str(uuid.uuid4()) for _ in range(3)]
    batch = {"items": [event(id=i) for i in fresh] + [event(id=taken, attributes={"squatted": True})]}
    status, body = await _post(client, batch)
    assert (status, body["conflicting_ids"]) == (409, [taken])
    assert [await _stored(db, i) for i in fresh] == [None, None, None]


async def test_one_id_twice_in_a_batch_with_different_content_is_409(client: Client, db: asyncpg.Connection) -> None:
    event_id = str(uuid.uuid4())
    status, body = await _post(client, {"items": [event(id=event_id), event(id=event_id, type="changed")]})
    assert (status, body["conflicting_ids"]) == (409, [event_id])
    assert await _stored(db, event_id) is None
    same = event(id=event_id)
    status, body = await _post(client, {"items": [same, same]})
    assert (status, body["accepted"], body["duplicate_ids"]) == (201, 1, [event_id])


async def test_the_writer_is_recorded_and_a_resend_by_another_principal_does_not_change_it(
    client: Client, db: asyncpg.Connection
) -> None:
    event_id = str(uuid.uuid4())
    payload = event(id=event_id)
    assert (await _post(client, payload))[0] == 201
    other = {"Authorization": f"Bearer {make_token(sub='second-writer')}"}
    assert (await _post(client, payload, other))[0] == 200
    stored = await _stored(db, event_id)
    assert stored is not None
    assert stored["written_by"] == "api-key"
    fetched = await (await client.get(f"/api/v1/events/{event_id}", headers=API_KEY_HEADERS)).get_json()
    assert fetched["written_by"] == "api-key"
    assert (await _post(client, event(), other))[0] == 201
    _, body = await _post(client, event(), other)
    stored = await _stored(db, body["ids"][0])
    assert stored is not None
    assert stored["written_by"] == "jwt:second-writer"


async def test_two_writers_racing_on_one_new_id_never_both_succeed(database_url: str) -> None:
    """Both inserts start before either commits: the loser waits for the winner's row, and then must see that
    its content differs (a snapshot taken before the wait would call it a duplicate)."""
    first, second = await asyncpg.connect(database_url), await asyncpg.connect(database_url)
    try:
        for _ in range(20):
            event_id = uuid.uuid4()
            items = [EventIn.model_validate(event("race", id=str(event_id), attributes={"writer": n})) for n in (1, 2)]
            outcomes = await asyncio.gather(
                repository.insert_events(first, items=[items[0]], ids=[event_id], written_by="one"),
                repository.insert_events(second, items=[items[1]], ids=[event_id], written_by="two"),
                return_exceptions=True,
            )
            succeeded = [outcome for outcome in outcomes if isinstance(outcome, repository.IngestOutcome)]
            refused = [outcome for outcome in outcomes if isinstance(outcome, ApiError)]
            assert len(succeeded) == 1, outcomes
            assert succeeded[0].accepted == 1
            assert [error.code for error in refused] == ["ID_CONFLICT"], outcomes
    finally:
        await first.close()
        await second.close()
