"""Helpers for tests that break servers: each module gets its own throwaway PostgreSQL and Redis (the
`postgres`, `redis_server`, `healthy_servers` and `service_env` fixtures of tests/conftest.py), and the app is
built on them with `settings_for` and `serving`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from quart import Quart
from quart.typing import TestClientProtocol as Client

from chaos.stack.servers import PostgresServer, RedisServer
from service.app import create_app
from service.settings import Settings
from tests.helpers import TEST_API_KEY, TEST_JWT_SECRET

Servers = tuple[PostgresServer, RedisServer]

# A hang would make a test wait forever; these bounds turn it into a failure. They are far above the
# service's own bounds (2 s for database work, 1 s per readiness check), which the benchmarks measure.
HANG_GUARD_S = 6.0


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
