"""Shared fixtures: real PostgreSQL and Redis, the app, and test credentials; and the Docker gate.

Tests live by role (service, stack, proxy, drills, conformance, perf); markers say what they need:
`integration` (real PostgreSQL/Redis servers) and `docker` (a Docker engine and the stack's images).

Fast tests use the machine's own PostgreSQL (a fresh database per run, dropped at the end) and Redis (a
database index of its own); when those are not reachable, throwaway servers are started instead. Tests that
break a server always start their own (`postgres`, `redis_server`: one pair per module; see
`chaos.stack.servers` and tests/own_servers.py). Unit tests build the app without serving it (`offline_app`).

Docker tests run only when RB_DOCKER_TESTS=1 (`make docker-test`, which CI runs after `make test`); then a
missing engine or image is a failure, not a skip. Without it they are deselected, so `make test` never needs
Docker and reports no skipped stand-ins.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import asyncpg
import pytest
from quart import Quart
from quart.typing import TestClientProtocol as Client

from chaos.stack.migrations import migrate
from chaos.stack.servers import PostgresServer, RedisServer
from service.app import create_app
from service.settings import Settings
from tests.helpers import TEST_API_KEY, TEST_JWT_SECRET
from tests.own_servers import Servers

LOCAL_POSTGRES = ("127.0.0.1", 5432)
LOCAL_REDIS = ("127.0.0.1", 6379)
TEST_REDIS_DB = 13
DOCKER_TESTS = os.environ.get("RB_DOCKER_TESTS") == "1"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if DOCKER_TESTS:
        return
    needs_docker = [item for item in items if item.get_closest_marker("docker")]
    if needs_docker:
        config.hook.pytest_deselected(items=needs_docker)
        items[:] = [item for item in items if not item.get_closest_marker("docker")]


@pytest.fixture(scope="session")
def docker_backend() -> None:
    """With RB_DOCKER_TESTS=1, fail at once and say why when the Docker backend cannot run."""
    from chaos.stack.docker import docker_status

    usable, reason = docker_status()
    if not usable:
        pytest.fail(f"RB_DOCKER_TESTS=1 but the Docker backend cannot run: {reason}", pytrace=False)


@pytest.fixture(autouse=True)
def _docker_ready(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("docker"):
        request.getfixturevalue("docker_backend")


@pytest.fixture(scope="session", autouse=True)
def _perf_history_of_the_tests(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The perf commands append every run to reports/perf/history.jsonl, where a release's figures sit beside the
    previous ones: the tests' tiny profiles must not land there. Subprocesses inherit the variable."""
    previous = os.environ.get("BENCH_HISTORY")
    os.environ["BENCH_HISTORY"] = str(tmp_path_factory.mktemp("perf-history") / "history.jsonl")
    yield
    if previous is None:
        os.environ.pop("BENCH_HISTORY", None)
    else:
        os.environ["BENCH_HISTORY"] = previous


def _reachable(address: tuple[str, int]) -> bool:
    try:
        with socket.create_connection(address, timeout=0.5):
            return True
    except OSError:
        return False


def _run(coro: Any) -> Any:
    """Run a coroutine to completion from sync code, even when called inside a running event loop."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    """A PostgreSQL server we may create databases on: the machine's own, else a throwaway one."""
    override = os.environ.get("TEST_POSTGRES_ADMIN_URL")
    if override:
        yield override
    elif _reachable(LOCAL_POSTGRES):
        # Trust authentication on the machine's server ignores the password, but the service requires one.
        yield "postgresql://postgres:unused@127.0.0.1:5432/postgres"
    else:
        with PostgresServer() as server:
            yield server.url()


def _database_url(admin_url: str, name: str) -> str:
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


async def _admin(admin_url: str, sql: str) -> None:
    connection = await asyncpg.connect(admin_url)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def fresh_database(postgres_admin_url: str) -> Iterator[Callable[[], str]]:
    """Makes empty databases (not migrated) that are dropped when the session ends."""
    created: list[str] = []

    def make() -> str:
        name = f"rb_test_{uuid.uuid4().hex[:12]}"
        _run(_admin(postgres_admin_url, f'CREATE DATABASE "{name}"'))
        created.append(name)
        return _database_url(postgres_admin_url, name)

    yield make
    for name in created:
        _run(_admin(postgres_admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def database_url(fresh_database: Callable[[], str]) -> str:
    """A database for this test session, migrated with `python -m alembic upgrade head`."""
    url = fresh_database()
    migrate(url)
    return url


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    override = os.environ.get("TEST_REDIS_URL")
    if override:
        yield override
    elif _reachable(LOCAL_REDIS):
        yield f"redis://127.0.0.1:6379/{TEST_REDIS_DB}"
    else:
        with RedisServer() as server:
            yield server.url()


@pytest.fixture(scope="session")
def make_settings(database_url: str, redis_url: str) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": database_url,
            "redis_url": redis_url,
            "api_key": TEST_API_KEY,
            "jwt_secret": TEST_JWT_SECRET,
            "app_version": "9.9.9-test",
        }
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture(scope="session")
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[Quart]:
    application = create_app(settings)
    async with application.test_app():
        yield application


@pytest.fixture
def client(app: Quart) -> Client:
    return app.test_client()


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A direct connection for checking what was (or was not) written."""
    connection = await asyncpg.connect(database_url)
    try:
        yield connection
    finally:
        await connection.close()


@pytest.fixture
def offline_app() -> Quart:
    return create_app(
        Settings(
            database_url="postgresql://u:p@127.0.0.1:1/never-connected",
            api_key=TEST_API_KEY,
            jwt_secret=TEST_JWT_SECRET,
        )
    )


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
