"""Throwaway servers: start on loopback, break on purpose, come back, and leave nothing behind."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as redis_asyncio

from chaos.stack.servers import PostgresServer, RedisServer
from tests.stack.probes import holds_within

pytestmark = pytest.mark.integration


def _listening_on_loopback_only(port: int) -> bool:
    with open("/proc/net/tcp") as table:
        rows = [line.split() for line in table.readlines()[1:]]
    local = [row[1] for row in rows if row[3] == "0A"]  # LISTEN
    matching = [address for address in local if int(address.split(":")[1], 16) == port]
    return bool(matching) and all(address.startswith("0100007F") for address in matching)


async def test_postgres_lifecycle_with_pause_kill_and_restart() -> None:
    with PostgresServer() as server:
        directory = server.directory
        assert _listening_on_loopback_only(server.port)
        connection = await asyncpg.connect(server.url())
        await connection.execute("CREATE TABLE kept (n int); INSERT INTO kept VALUES (1)")
        with pytest.raises(asyncpg.InvalidPasswordError):
            await asyncpg.connect(server.url().replace(server.password, "wrong"))

        server.pause()
        assert len(server.pids()) >= 5  # postmaster, its helpers, and our connection's backend
        assert holds_within(lambda: all(_state(pid) == "T" for pid in server.pids()), within_s=2.0, interval_s=0.01)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(connection.fetchval("SELECT 1"), 0.5)  # an open connection hangs too
        server.resume()
        await connection.close(timeout=2)

        server.kill()
        assert server.pids() == []
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", server.port), timeout=0.5)
        server.start()
        again = await asyncpg.connect(server.url())
        assert await again.fetchval("SELECT n FROM kept") == 1  # committed data survives a crash
        await again.close()

        server.stop_immediate()
        server.start()
        assert server.psql("SELECT count(*) FROM kept") == "1"
    assert not directory.exists()
    assert server.pids() == []


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0]


async def test_redis_lifecycle_with_password() -> None:
    with RedisServer(password="redis-test-password") as server:
        client = redis_asyncio.Redis.from_url(server.url(), socket_timeout=0.5)
        assert await client.ping()
        server.pause()
        with pytest.raises(redis_asyncio.TimeoutError):
            await client.ping()
        server.resume()
        assert await client.ping()
        server.stop()
        with pytest.raises(redis_asyncio.ConnectionError):
            await client.ping()
        server.start()
        assert await client.ping()
        await client.aclose()
        pid = server.pid
    assert pid is not None
    assert not Path(f"/proc/{pid}").exists()  # noqa: ASYNC240 - a one-off check, not I/O that blocks


def test_a_failing_block_still_cleans_up() -> None:
    server = PostgresServer()
    with pytest.raises(RuntimeError, match="boom"), server:
        raise RuntimeError("boom")
    assert server.pids() == []
    assert not server.directory.exists()
