"""The hot paths, measured (RB-PERF-MICRO): ingest validation and insert of a 500-event batch, the stats query
over the rollups, and the request pipeline (edge, authentication, Redis rate limit, gate, database, access log)
in process. Real PostgreSQL and Redis; a database seeded with 100,000 events over 30 days."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from quart import Quart

from chaos.stack.migrations import migrate
from conformance.perf.seeding import SOURCES, TYPES, DatasetSpec, seed_events
from service.app import create_app
from service.db import _prepare_connection
from service.events import repository
from service.events.routes import _parse_ingest
from service.events.schemas import EventIn, StatsQuery
from service.ids import uuid7
from service.settings import Settings
from tests.helpers import TEST_API_KEY, TEST_JWT_SECRET

DATASET = DatasetSpec(events=100_000, end=datetime(2026, 11, 1, tzinfo=UTC))
Run = Callable[..., Any]


def batch_payload(count: int = 500) -> dict[str, Any]:
    return {
        "items": [
            {
                "source": SOURCES[i % len(SOURCES)],
                "type": TYPES[i % len(TYPES)],
                "occurred_at": (DATASET.end - timedelta(seconds=i)).isoformat(),
                "attributes": {"amount": i, "region": "eu-west-1", "tags": ["a", "b"]},
            }
            for i in range(count)
        ]
    }


@pytest.fixture(scope="module")
def seeded_url(fresh_database: Callable[[], str], run: Run) -> str:
    url = fresh_database()
    migrate(url)
    run(seed_events(url, DATASET, progress=lambda _: None))
    return url


@pytest.fixture(scope="module")
def connection(seeded_url: str, run: Run) -> Iterator[asyncpg.Connection]:
    connection = run(asyncpg.connect(seeded_url))
    run(_prepare_connection(connection))
    yield connection
    run(connection.close())


@pytest.fixture(scope="module")
def served_app(seeded_url: str, redis_url: str, run: Run) -> Iterator[Quart]:
    settings = Settings(
        database_url=seeded_url,
        redis_url=redis_url,
        api_key=TEST_API_KEY,
        jwt_secret=TEST_JWT_SECRET,
        rate_limit_read="100000000/minute",
    )
    app = create_app(settings)
    context = app.test_app()
    run(context.__aenter__())
    yield app
    run(context.__aexit__(None, None, None))  # type: ignore[arg-type]


async def asgi_get(app: Quart, path: str) -> int:
    """One GET through the whole ASGI app (the edge middleware first), as hypercorn would call it."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"localhost"), (b"x-api-key", TEST_API_KEY.encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "extensions": {},
    }
    answered = asyncio.Event()
    requested = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await answered.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)  # type: ignore[arg-type]
    answered.set()
    return status


def test_ingest_validation_of_a_500_event_batch(benchmark: Any) -> None:
    payload = batch_payload()
    items, is_batch = benchmark(_parse_ingest, payload, 1000)
    assert (len(items), is_batch) == (500, True)


def test_insert_of_a_500_event_batch(benchmark: Any, connection: asyncpg.Connection, run: Run) -> None:
    items = [EventIn.model_validate(item) for item in batch_payload()["items"]]

    def insert() -> repository.IngestOutcome:
        outcome: repository.IngestOutcome = run(
            repository.insert_events(connection, items=items, ids=[uuid7() for _ in items])
        )
        return outcome

    outcome = benchmark.pedantic(insert, rounds=40, warmup_rounds=2)
    assert outcome.accepted == 500


@pytest.mark.parametrize(
    ("name", "bucket", "group_by", "length"),
    [
        ("30 days per day by type", "day", "type", None),
        ("1 day per hour by source", "hour", "source", timedelta(days=1)),
        ("1 hour per minute by type", "minute", "type", timedelta(hours=1)),
    ],
)
def test_stats_query(
    benchmark: Any,
    connection: asyncpg.Connection,
    run: Run,
    name: str,
    bucket: str,
    group_by: str,
    length: timedelta | None,
) -> None:
    since = DATASET.start + timedelta(seconds=17) if length is None else DATASET.end - timedelta(days=3, seconds=17)
    until = DATASET.end if length is None else since + length
    query = StatsQuery.model_validate(
        {"since": since.isoformat(), "until": until.isoformat(), "bucket": bucket, "group_by": group_by}
    )
    total, _ = benchmark(lambda: run(repository.stats_json(connection, query=query, max_buckets=1_000_000)))
    assert total > 0


def test_request_pipeline_get_by_id(
    benchmark: Any, served_app: Quart, connection: asyncpg.Connection, run: Run
) -> None:
    ids = [str(row["id"]) for row in run(connection.fetch("SELECT id FROM events LIMIT 500"))]
    counter = iter(range(10**9))

    def get() -> int:
        status: int = run(asgi_get(served_app, f"/api/v1/events/{ids[next(counter) % len(ids)]}"))
        return status

    assert benchmark(get) == 200


def test_request_pipeline_liveness(benchmark: Any, served_app: Quart, run: Run) -> None:
    """The pipeline without the database or the rate limit: what every request pays."""
    assert benchmark(lambda: run(asgi_get(served_app, "/health/live"))) == 200


def test_request_pipeline_unknown_event(benchmark: Any, served_app: Quart, run: Run) -> None:
    """A 404 problem: authentication, rate limit, one primary-key miss, problem+json."""
    path = f"/api/v1/events/{uuid.uuid4()}"
    assert benchmark(lambda: run(asgi_get(served_app, path))) == 404
