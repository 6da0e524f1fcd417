"""RB-DB-RECOVER without a pre-ping round trip: after a database restart, the pooled connections it closed are
replaced when taken from the pool, so a restarted database costs no failed request; and a read whose
connection is lost under it is retried once on a fresh connection (a write is not: its client retries)."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from service.db import Database
from service.errors import ApiError
from tests.helpers import API_KEY_HEADERS, event
from tests.own_servers import Servers, bounded, serving, settings_for

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("restart", ["fast shutdown", "crash"])
async def test_a_restarted_database_costs_no_failed_request(healthy_servers: Servers, restart: str) -> None:
    postgres, redis_server = healthy_servers
    async with serving(settings_for(postgres, redis_server, db_pool_size=4)) as app:
        client = app.test_client()
        # Fill the pool with several connections.
        warm = await asyncio.gather(*(client.get("/api/v1/events", headers=API_KEY_HEADERS) for _ in range(8)))
        assert {response.status_code for response in warm} == {200}

        if restart == "crash":
            postgres.kill()
            postgres.start()
        else:
            postgres.restart()
        reads = [await bounded(client.get("/api/v1/events", headers=API_KEY_HEADERS)) for _ in range(6)]
        assert [response.status_code for response in reads] == [200] * 6

        await asyncio.sleep(0.2)  # a real restart takes longer than this: closed connections are noticed
        written = await bounded(client.post("/api/v1/events", json=event(), headers=API_KEY_HEADERS))
        assert written.status_code == 201, await written.get_data(as_text=True)


async def test_a_read_is_retried_once_on_a_lost_connection_and_a_write_is_not(healthy_servers: Servers) -> None:
    postgres, redis_server = healthy_servers
    database = Database(settings_for(postgres, redis_server))
    await database.open()
    calls: list[int] = []

    async def lost_once(connection: asyncpg.Connection) -> int:
        """Loses its connection the first time, as a statement on a connection the server dropped does."""
        calls.append(id(connection))
        if len(calls) == 1:
            connection.terminate()
            raise asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation")
        return int(await connection.fetchval("SELECT 1"))

    try:
        assert await database.run(lost_once, read_only=True) == 1
        assert len(calls) == 2

        calls.clear()
        with pytest.raises(ApiError) as refused:
            await database.run(lost_once)
        assert (refused.value.status, refused.value.code) == (503, "DEPENDENCY_UNAVAILABLE")
        assert len(calls) == 1
    finally:
        await database.dispose()
