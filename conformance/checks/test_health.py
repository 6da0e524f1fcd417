"""진단: 헬스 엔드포인트 확인 — RB-HEALTH-*."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid

import asyncpg
import httpx
import pytest

from chaos.stack.migrations import alembic_scripts
from conformance.assertions import event_body, eventually
from conformance.suite_events import check_source
from conformance.target import Target

requirement = pytest.mark.requirement
needs_control = pytest.mark.needs_control

# The runbook's bound for readiness: it answers within the check timeout (default ≤ 1 s). A client that
# waits longer than this has seen a hang.
READY_ANSWER_BOUND_S = 1.5


def _ready(target: Target) -> httpx.Response:
    with target.client(timeout=READY_ANSWER_BOUND_S) as client:
        return client.get("/health/ready")


@requirement("RB-HEALTH-LIVE")
def test_live_reports_alive_version_and_start_time(target: Target) -> None:
    with target.client() as client:
        response = client.get("/health/live")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["status"] == "alive"
    assert body["version"]
    assert body["started_at"]


@requirement("RB-HEALTH-LIVE")
@needs_control
def test_live_stays_200_with_postgres_and_redis_down(target: Target) -> None:
    stack = target.controlled
    stack.stop_dependency("postgres")
    stack.stop_dependency("redis")
    try:
        # First the service must have noticed (readiness 503), then liveness must still be 200.
        eventually(lambda: _ready(target).status_code == 503, within_s=3, interval_s=0.05)
        # Ask for longer than any readiness cache, on new connections (every worker), so a liveness that
        # consulted the dependencies would have to show it.
        for _ in range(15):
            with target.client(timeout=2) as client:
                assert client.get("/health/live").status_code == 200
            time.sleep(0.1)
    finally:
        stack.start_dependency("postgres")
        stack.start_dependency("redis")


@requirement("RB-HEALTH-READY")
def test_ready_lists_each_dependency_with_status_and_latency(target: Target) -> None:
    response = _ready(target)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ready"
    assert "database" in body["checks"]
    if body.get("rate_limit_backend") != "memory":
        assert "redis" in body["checks"]
    for name, check in body["checks"].items():
        assert check["status"] == "up", name
        assert isinstance(check["latency_ms"], int | float), name


def _degraded_naming(target: Target, dependency: str) -> None:
    """Readiness turns 503 `degraded` naming the dependency (results may be cached for a moment), and every
    answer on the way comes within the bound: a hang raises ReadTimeout."""
    seen: list[httpx.Response] = []

    def degraded() -> bool:
        seen.append(_ready(target))
        return seen[-1].status_code == 503

    eventually(degraded, within_s=3, interval_s=0.05)
    body = seen[-1].json()
    assert body["status"] == "degraded"
    assert dependency in body["failed_checks"]
    assert body["checks"][dependency]["status"] == "down"


@requirement("RB-HEALTH-READY-DEGRADED")
@needs_control
@pytest.mark.parametrize("fault", ["stop", "pause"])
@pytest.mark.parametrize("dependency", ["postgres", "redis"])
def test_ready_is_503_degraded_naming_a_down_or_hung_dependency(target: Target, dependency: str, fault: str) -> None:
    stack = target.controlled
    check_name = "database" if dependency == "postgres" else "redis"
    getattr(stack, f"{fault}_dependency")(dependency)
    try:
        _degraded_naming(target, check_name)
    finally:
        getattr(stack, "resume_dependency" if fault == "pause" else "start_dependency")(dependency)
    eventually(lambda: _ready(target).status_code == 200, within_s=10)


@requirement("RB-HEALTH-READY-DEGRADED")
@needs_control
def test_ready_is_503_when_the_database_answers_slower_than_the_check_timeout(target: Target) -> None:
    with target.controlled.proxy("postgres").toxic(type="latency", attributes={"latency": 1500}):
        _degraded_naming(target, "database")
    eventually(lambda: _ready(target).status_code == 200, within_s=10)


# A revision no release of this service has: as if a newer release, or another application, had migrated it.
UNKNOWN_REVISION = "rb_conformance_unknown_revision"


@requirement("RB-HEALTH-SCHEMA")
def test_ready_reports_the_expected_revision_and_a_schema_check(target: Target) -> None:
    response = _ready(target)
    body = response.json()
    assert body["expected_schema_revision"], "readiness names the revision this release expects"
    if body["checks"].get("database", {}).get("status") == "up":
        assert "schema" in body["checks"], "a database that answered has its revision judged"
    if response.status_code == 200:
        assert body["checks"]["schema"]["status"] == "up"


def _swap_schema_revision(database_url: str, revision: str) -> str:
    """Write `revision` into alembic_version (committed, so the service sees it); return the one it replaced."""

    async def swap() -> str:
        connection = await asyncpg.connect(database_url)
        try:
            async with connection.transaction():
                previous = await connection.fetchval("SELECT version_num FROM alembic_version FOR UPDATE")
                await connection.execute("UPDATE alembic_version SET version_num = $1", revision)
            return str(previous)
        finally:
            await connection.close()

    return asyncio.run(swap())


@requirement("RB-HEALTH-SCHEMA")
@needs_control
@pytest.mark.parametrize("moved", ["behind", "unknown"])
def test_ready_is_503_degraded_naming_both_revisions_when_the_schema_is_not_the_releases(
    target: Target, moved: str
) -> None:
    stack = target.controlled
    expected = _ready(target).json()["expected_schema_revision"]
    if moved == "behind":
        script = alembic_scripts().get_revision(expected)
        if script is None or not isinstance(script.down_revision, str):
            pytest.skip(f"{expected} has no single earlier revision to be behind at")
        revision = script.down_revision
    else:
        revision = UNKNOWN_REVISION
    # Only the version row moves (the tables stay at head): readiness must judge the revision it reads.
    original = _swap_schema_revision(stack.database_url, revision)
    try:
        seen: list[httpx.Response] = []

        def schema_fails() -> bool:
            seen.append(_ready(target))
            return seen[-1].status_code == 503 and "schema" in seen[-1].json()["failed_checks"]

        try:
            eventually(schema_fails, within_s=3, interval_s=0.05)
        except AssertionError:
            last = seen[-1].text if seen else "no answer"
            raise AssertionError(f"readiness with the database at {revision}: {last}") from None
        body = seen[-1].json()
        assert body["status"] == "degraded"
        assert (body["schema_revision"], body["expected_schema_revision"]) == (revision, expected)
        check = body["checks"]["schema"]
        assert check["status"] == "down"
        assert revision in check["error"], "the error names the database's revision"
        assert expected in check["error"], "and the one this release expects"
        with target.client(timeout=2) as client:
            assert client.get("/health/live").status_code == 200, "liveness never looks at the schema"
    finally:
        _swap_schema_revision(stack.database_url, original)
    eventually(lambda: _ready(target).status_code == 200, within_s=10)


async def _waiting_on_locks(connection: asyncpg.Connection, *, expected: int, within_s: float) -> int:
    """How many other sessions wait on a lock, once `expected` do (or when `within_s` has passed). pg_locks is
    read live (pg_stat_activity would repeat the snapshot taken first in this session's open transaction)."""
    deadline = time.monotonic() + within_s
    while True:
        waiting = int(
            await connection.fetchval(
                "SELECT count(DISTINCT pid) FROM pg_locks WHERE NOT granted AND pid <> pg_backend_pid()"
            )
        )
        if waiting >= expected or time.monotonic() > deadline:
            return waiting
        await asyncio.sleep(0.02)


@requirement("RB-HEALTH-DRAIN")
@needs_control
def test_sigterm_makes_ready_draining_while_in_flight_requests_finish(target: Target) -> None:
    stack = target.controlled
    blocked_id = str(uuid.uuid4())
    blocked = event_body(check_source("drain"), id=blocked_id)  # one event, sent by four clients at once
    results: list[int | str] = []

    async def hold_row_lock() -> asyncpg.Connection:
        connection = await asyncpg.connect(stack.database_url)
        await connection.execute("BEGIN")
        await connection.execute(
            "INSERT INTO events (id, source, type, occurred_at) VALUES ($1, 'lock', 'lock', now())",
            uuid.UUID(blocked_id),
        )
        return connection

    def in_flight() -> None:
        try:
            with target.client(timeout=15) as client:
                response = client.post("/api/v1/events", json=blocked, headers=target.auth)
            results.append(response.status_code)
        except httpx.HTTPError as error:
            results.append(type(error).__name__)

    loop = asyncio.new_event_loop()
    holder = loop.run_until_complete(hold_row_lock())
    with target.service_env({"DRAIN_DELAY_S": "2", "DB_REQUEST_TIMEOUT_S": "8", "DB_STATEMENT_TIMEOUT_S": "7"}):
        threads = [threading.Thread(target=in_flight) for _ in range(4)]
        try:
            for thread in threads:
                thread.start()
            # The requests are in flight once all four wait on the row lock (bounded: a service that never
            # reaches the database fails on the results below).
            waiting = loop.run_until_complete(_waiting_on_locks(holder, expected=len(threads), within_s=5))
            assert waiting == len(threads), f"{waiting} of {len(threads)} requests reached the database"
            service = stack.service  # type: ignore[attr-defined]
            service.terminate()
            seen: list[httpx.Response] = []

            def draining() -> bool:
                seen.append(_ready(target))
                return seen[-1].status_code == 503 and seen[-1].json().get("status") == "draining"

            # Within the drain delay (2 s), while the listener is still open; a readiness that never says
            # `draining` fails here.
            try:
                eventually(draining, within_s=1.5, interval_s=0.05)
            except AssertionError:
                last = f"{seen[-1].status_code} {seen[-1].text[:200]}" if seen else "no answer"
                raise AssertionError(f"readiness after SIGTERM, with requests in flight: {last}") from None
        finally:
            loop.run_until_complete(holder.execute("ROLLBACK"))
            loop.run_until_complete(holder.close())
            loop.close()
            for thread in threads:
                thread.join(20)
        assert sorted(map(str, results)) == ["200", "200", "200", "201"], "every accepted request finished"
        assert service.wait(20) == 0


@requirement("RB-HEALTH-OPEN")
def test_health_needs_no_credentials_and_is_never_rate_limited(target: Target) -> None:
    with target.client() as client:
        for path in ("/health/live", "/health/ready"):
            for headers in ({}, {"X-API-Key": "not-a-valid-key"}):
                statuses = {client.get(path, headers=headers).status_code for _ in range(75)}
                assert statuses <= {200, 503}, f"{path} with {headers or 'no credentials'}: {statuses}"
