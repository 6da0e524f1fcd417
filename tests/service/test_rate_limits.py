"""RB-RL-REDIS and RB-RL-DEGRADED: limits per principal kept in Redis, and the memory fallback when
Redis fails, against a Redis server these tests start, stop and pause."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.helpers import API_KEY_HEADERS, event, make_token
from tests.own_servers import Servers, bounded, eventually, ready_status, serving, settings_for

pytestmark = pytest.mark.integration


@contextmanager
def captured_logs() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(name)s|%(message)s"))
    logger = logging.getLogger("service.ratelimit")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


def bearer(sub: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_token(sub=sub)}"}


async def test_each_policy_counts_in_its_own_bucket(healthy_servers: Servers) -> None:
    """Reads and writes with the same rate must not share a count (`limits` keys on the rate and identity)."""
    postgres, redis_server = healthy_servers
    settings = settings_for(postgres, redis_server, rate_limit_read="5/minute", rate_limit_write="5/minute")
    principal = bearer(f"mixed-{uuid.uuid4().hex[:8]}")
    async with serving(settings) as app:
        client = app.test_client()
        reads = [(await client.get("/api/v1/events", headers=principal)).status_code for _ in range(5)]
        write = await client.post("/api/v1/events", json=event(), headers=principal)
        assert reads == [200] * 5
        assert write.status_code == 201, await write.get_data(as_text=True)
        assert (await client.get("/api/v1/events", headers=principal)).status_code == 429


async def test_limits_are_per_principal_shared_through_redis_and_answered_with_429(healthy_servers: Servers) -> None:
    postgres, redis_server = healthy_servers
    settings = settings_for(postgres, redis_server, rate_limit_read="3/minute")
    principal = bearer(f"reader-{uuid.uuid4().hex[:8]}")
    # Two app instances stand for two workers (or two replicas): the count is shared in Redis.
    async with serving(settings) as first, serving(settings) as second:
        statuses = []
        for app in (first, second, first, second):
            statuses.append((await app.test_client().get("/api/v1/events", headers=principal)).status_code)
        assert statuses == [200, 200, 200, 429]

        refused = await second.test_client().get("/api/v1/events", headers=principal)
        assert refused.status_code == 429
        assert refused.content_type == "application/problem+json"
        problem = await refused.get_json()
        assert (problem["code"], problem["policy"]) == ("RATE_LIMITED", "events-read")
        retry_after = int(refused.headers["Retry-After"])
        assert 1 <= retry_after <= 60
        assert refused.headers["RateLimit-Policy"] == '"events-read";q=3;w=60'
        assert refused.headers["RateLimit"].startswith('"events-read";r=0;t=')

        other = bearer(f"reader-{uuid.uuid4().hex[:8]}")
        assert (await first.test_client().get("/api/v1/events", headers=other)).status_code == 200
        health = await first.test_client().get("/health/live", headers=principal)
        assert health.status_code == 200  # health is never rate limited


async def test_failed_authentication_is_limited_per_client_address(healthy_servers: Servers) -> None:
    postgres, redis_server = healthy_servers
    async with serving(settings_for(postgres, redis_server, rate_limit_anonymous="2/minute")) as app:
        client = app.test_client()
        bad = {"X-API-Key": f"guess-{uuid.uuid4().hex}"}
        statuses = [(await client.get("/api/v1/events", headers=bad)).status_code for _ in range(3)]
        assert statuses == [401, 401, 429]
        assert (await client.get("/api/v1/events", headers=API_KEY_HEADERS)).status_code == 200


async def test_memory_backend_needs_no_redis(healthy_servers: Servers) -> None:
    postgres, redis_server = healthy_servers
    redis_server.stop()
    settings = settings_for(postgres, redis_server, rate_limit_backend="memory", rate_limit_read="2/minute")
    async with serving(settings) as app:
        client = app.test_client()
        statuses = [(await client.get("/api/v1/events", headers=API_KEY_HEADERS)).status_code for _ in range(3)]
        assert statuses == [200, 200, 429]
        status, body = await ready_status(client)
        assert status == 200  # Redis is not a dependency when nothing uses it
        assert "redis" not in body["checks"]
        assert body["rate_limit_backend"] == "memory"


@pytest.mark.parametrize("fault", ["stop", "pause"])
async def test_redis_failure_falls_back_to_local_limits_and_returns_by_itself(
    healthy_servers: Servers, fault: str
) -> None:
    postgres, redis_server = healthy_servers
    settings = settings_for(postgres, redis_server, rate_limit_read="1000/minute")
    principal = bearer(f"fallback-{uuid.uuid4().hex[:8]}")
    with captured_logs() as logs:
        async with serving(settings) as app:
            client = app.test_client()
            assert (await client.get("/api/v1/events", headers=principal)).status_code == 200
            redis_server.stop() if fault == "stop" else redis_server.pause()

            for _ in range(5):
                response = await bounded(client.get("/api/v1/events", headers=principal))
                assert response.status_code == 200  # served under the in-process fallback, never a 500
            status, body = await ready_status(client)
            assert (status, body["status"], body["failed_checks"]) == (503, "degraded", ["redis"])
            assert body["rate_limit_backend"] == "memory"
            metrics = await (await client.get("/metrics")).get_data(as_text=True)
            assert 'rate_limit_backend{backend="memory"} 1.0' in metrics
            assert 'rate_limit_backend_changes_total{to="memory"}' in metrics

            redis_server.start() if fault == "stop" else redis_server.resume()

            async def back_on_redis() -> bool:
                await client.get("/api/v1/events", headers=principal)
                status, body = await ready_status(client)
                return status == 200 and body["rate_limit_backend"] == "redis"

            await eventually(back_on_redis)

    lines = [line for line in logs.getvalue().splitlines() if line.startswith("service.ratelimit|")]
    assert lines == [
        "service.ratelimit|rate limiting switched to the in-process fallback: Redis failed",
        "service.ratelimit|rate limiting is back on Redis",
    ], "one log line per state change"


async def test_rate_limit_headers_are_documented(healthy_servers: Servers) -> None:
    postgres, redis_server = healthy_servers
    async with serving(settings_for(postgres, redis_server)) as app:
        document = json.loads(await (await app.test_client().get("/openapi.json")).get_data(as_text=True))
    too_many = document["paths"]["/api/v1/events"]["get"]["responses"]["429"]
    assert {"Retry-After", "RateLimit", "RateLimit-Policy"} <= set(too_many["headers"])


async def test_a_redis_restart_between_requests_is_not_mistaken_for_a_redis_failure(healthy_servers: Servers) -> None:
    """After Redis restarts, every connection the service pooled is dead though Redis is up again. The first
    readiness round and the first limited request must reconnect, not report Redis down (CI caught one
    worker saying `redis down (ConnectionError)` right after a restart)."""
    postgres, redis_server = healthy_servers
    settings = settings_for(postgres, redis_server, health_cache_s=0, rate_limit_read="1000/minute")
    principal = bearer(f"restart-{uuid.uuid4().hex[:8]}")
    with captured_logs() as logs:
        async with serving(settings) as app:
            client = app.test_client()
            assert (await client.get("/api/v1/events", headers=principal)).status_code == 200
            assert (await ready_status(client))[0] == 200  # both Redis clients now hold a pooled connection
            redis_server.restart()

            status, body = await ready_status(client)
            assert (status, body["failed_checks"], body["rate_limit_backend"]) == (200, [], "redis"), body
            response = await bounded(client.get("/api/v1/events", headers=principal))
            assert response.status_code == 200
            assert (await ready_status(client))[1]["rate_limit_backend"] == "redis"
    assert "switched to the in-process fallback" not in logs.getvalue()
