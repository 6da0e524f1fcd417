"""Fixtures for tests that break servers: each module gets its own throwaway PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from quart import Quart
from quart.typing import TestClientProtocol as Client

from chaos.servers import PostgresServer, RedisServer
from chaos.service_process import migrate
from service.app import create_app
from service.settings import Settings
from tests.helpers import TEST_API_KEY, TEST_JWT_SECRET

Servers = tuple[PostgresServer, RedisServer]

# A hang would make a test wait forever; these bounds turn it into a failure. They are far above the
# service's own bounds (2 s for database work, 1 s per readiness check), which the benchmarks measure.
HANG_GUARD_S = 6.0


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with PostgresServer() as server:
        url = server.create_database("events")
        migrate(url)
        yield server


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture
def healthy_servers(postgres: PostgresServer, redis_server: RedisServer) -> Iterator[Servers]:
    """The servers, guaranteed running again after the test whatever it did to them."""
    yield postgres, redis_server
    for server in (postgres, redis_server):
        if server._paused:
            server.resume()
        if not server.running:
            server.start()


@pytest.fixture
def service_env(healthy_servers: Servers) -> dict[str, str]:
    """The environment of a `python -m service` subprocess on the module's servers, with the test secrets."""
    postgres, redis_server = healthy_servers
    return {
        "DATABASE_URL": postgres.url("events"),
        "REDIS_URL": redis_server.url(),
        "API_KEY": TEST_API_KEY,
        "JWT_SECRET": TEST_JWT_SECRET,
    }


def settings_for(postgres: PostgresServer, redis_server: RedisServer, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": postgres.url("events"),
        "redis_url": redis_server.url(),
        "api_key": TEST_API_KEY,
        "jwt_secret": TEST_JWT_SECRET,
        "rate_limit_probe_interval_s": 0.2,
    }
    values.update(overrides)
    return Settings(**values)


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[Quart]:
    app = create_app(settings)
    async with app.test_app():
        yield app


async def bounded(call: Awaitable[Any]) -> Any:
    return await asyncio.wait_for(call, HANG_GUARD_S)


async def eventually(check: Callable[[], Awaitable[bool]], within_s: float = 15.0) -> None:
    deadline = time.monotonic() + within_s
    while not await check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)


async def ready_status(client: Client) -> tuple[int, dict[str, Any]]:
    response = await bounded(client.get("/health/ready"))
    return response.status_code, await response.get_json()
