"""RB-DB-FAILFAST, RB-DB-RECOVER, RB-DB-OVERLOAD, RB-DATA-DURABLE, RB-HEALTH-READY-DEGRADED:
the app against PostgreSQL and Redis servers these tests start and then break for real."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest
from quart.typing import TestClientProtocol as Client

from tests.helpers import API_KEY_HEADERS, event
from tests.own_servers import Servers, bounded, eventually, ready_status, serving, settings_for

pytestmark = pytest.mark.integration


async def assert_unavailable(client: Client) -> None:
    for call in (
        client.get("/api/v1/events", headers=API_KEY_HEADERS),
        client.get(f"/api/v1/events/{uuid.uuid4()}", headers=API_KEY_HEADERS),
        client.post("/api/v1/events", json=event(), headers=API_KEY_HEADERS),
    ):
        response = await bounded(call)
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "2"
        problem = await response.get_json()
        assert problem["code"] == "DEPENDENCY_UNAVAILABLE"
        assert response.content_type == "application/problem+json"


async def assert_recovers(client: Client) -> None:
    async def healthy() -> bool:
        status, _ = await ready_status(client)
        listing = await client.get("/api/v1/events", headers=API_KEY_HEADERS)
        return status == 200 and listing.status_code == 200

    await eventually(healthy)
    assert (await client.post("/api/v1/events", json=event(), headers=API_KEY_HEADERS)).status_code == 201


@pytest.mark.parametrize("fault", ["stop", "kill", "pause"])
async def test_database_fault_is_a_bounded_503_and_recovers_without_restart(
    healthy_servers: Servers, fault: str
) -> None:
    postgres, redis_server = healthy_servers
    async with serving(settings_for(postgres, redis_server)) as app:
        client = app.test_client()
        assert (await client.post("/api/v1/events", json=event(), headers=API_KEY_HEADERS)).status_code == 201
        {"stop": postgres.stop, "kill": postgres.kill, "pause": postgres.pause}[fault]()

        await assert_unavailable(client)
        status, body = await ready_status(client)
        assert status == 503
        assert body["status"] == "degraded"
        assert body["failed_checks"] == ["database"]
        assert body["checks"]["redis"]["status"] == "up"
        assert (await bounded(client.get("/health/live"))).status_code == 200

        postgres.resume() if fault == "pause" else postgres.start()
        await assert_recovers(client)


async def test_readiness_names_a_failed_redis(healthy_servers: Servers) -> None:
    postgres, redis_server = healthy_servers
    async with serving(settings_for(postgres, redis_server)) as app:
        client = app.test_client()
        redis_server.pause()
        status, body = await ready_status(client)
        assert (status, body["status"], body["failed_checks"]) == (503, "degraded", ["redis"])
        assert body["checks"]["redis"]["error"].startswith("no answer within")
        redis_server.resume()
        await eventually(lambda: _is_ready(client))


async def _is_ready(client: Client) -> bool:
    status, _ = await ready_status(client)
    return status == 200


async def _ingest_until_told(
    client: Client, stop: asyncio.Event, acknowledged: dict[str, list[str]], statuses: list[int]
) -> None:
    """Batches of 5 with client ids, each batch under its own source, until `stop` (at most 400 batches)."""
    for _ in range(400):
        if stop.is_set():
            return
        source = f"durable-{uuid.uuid4().hex[:12]}"
        ids = [str(uuid.uuid4()) for _ in range(5)]
        body = {"items": [event(source, id=event_id) for event_id in ids]}
        response = await bounded(client.post("/api/v1/events", json=body, headers=API_KEY_HEADERS))
        statuses.append(response.status_code)
        if response.status_code in (200, 201):
            acknowledged[source] = ids
        else:
            assert response.status_code == 503, await response.get_data(as_text=True)
            acknowledged.setdefault(source, [])  # unacknowledged: stored entirely or not at all
        await asyncio.sleep(0.01)


async def test_no_acknowledged_event_is_lost_when_the_database_crashes(
    healthy_servers: Servers,
) -> None:
    postgres, redis_server = healthy_servers
    acknowledged: dict[str, list[str]] = {}
    statuses: list[int] = []
    async with serving(settings_for(postgres, redis_server)) as app:
        stop = asyncio.Event()
        writers = [
            asyncio.create_task(_ingest_until_told(app.test_client(), stop, acknowledged, statuses)) for _ in range(4)
        ]
        await asyncio.sleep(0.5)
        postgres.kill()
        await asyncio.sleep(1.0)
        postgres.start()
        await asyncio.sleep(1.5)
        stop.set()
        await asyncio.gather(*writers)

    assert statuses.count(503) > 0, "the crash was noticed"
    assert sum(1 for s in statuses if s in (200, 201)) > 10
    connection = await asyncpg.connect(postgres.url("events"))
    try:
        rows = await connection.fetch(
            "SELECT source, count(*) AS n, count(DISTINCT id) AS d FROM events WHERE source = ANY($1) GROUP BY source",
            list(acknowledged),
        )
    finally:
        await connection.close()
    stored = {row["source"]: (row["n"], row["d"]) for row in rows}
    for source, ids in acknowledged.items():
        count, distinct = stored.get(source, (0, 0))
        assert count == distinct, "no event stored twice"
        if ids:
            assert count == len(ids), f"acknowledged batch {source} lost events"
        else:
            assert count in (0, 5), f"batch {source} was partly stored"


async def test_overload_is_a_fast_503_and_reads_go_on_in_read_only_mode(
    healthy_servers: Servers,
) -> None:
    postgres, redis_server = healthy_servers
    settings = settings_for(postgres, redis_server, db_max_concurrency=1, db_queue_timeout_s=0.05, db_max_queue=1)
    async with serving(settings) as app:
        client = app.test_client()
        postgres.pause()  # the one database slot is now held by a request that cannot finish
        holder = asyncio.create_task(client.get("/api/v1/events", headers=API_KEY_HEADERS))
        await asyncio.sleep(0.2)
        overloaded = [await bounded(client.get("/api/v1/events", headers=API_KEY_HEADERS)) for _ in range(3)]
        for response in overloaded:
            assert response.status_code == 503
            assert response.headers["Retry-After"] == "1"
            assert (await response.get_json())["code"] == "DB_OVERLOADED"
        postgres.resume()
        assert (await bounded(holder)).status_code in (200, 503)
        metrics = await (await client.get("/metrics")).get_data(as_text=True)
        assert "db_gate_rejected_total" in metrics

    async with serving(settings_for(postgres, redis_server, degraded_mode="read_only")) as app:
        client = app.test_client()
        refused = await client.post("/api/v1/events", json=event(), headers=API_KEY_HEADERS)
        assert refused.status_code == 503
        assert (await refused.get_json())["code"] == "WRITES_DISABLED"
        assert "Retry-After" in refused.headers
        assert (await client.get("/api/v1/events", headers=API_KEY_HEADERS)).status_code == 200
        status, body = await ready_status(client)
        assert (status, body["degraded_mode"]) == (200, "read_only")
        metrics = await (await client.get("/metrics")).get_data(as_text=True)
        assert 'degraded_mode{mode="read_only"} 1.0' in metrics
