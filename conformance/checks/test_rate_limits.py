"""Redis/rate_limit_backend — RB-RL-REDIS, RB-RL-DEGRADED."""

from __future__ import annotations

import re
import uuid

import pytest
import redis

from conformance.assertions import eventually, problem
from conformance.target import Target

requirement = pytest.mark.requirement
needs_control = pytest.mark.needs_control


@requirement("RB-RL-REDIS")
@needs_control
def test_per_principal_limit_is_shared_by_all_workers_and_answered_with_429(target: Target) -> None:
    subject = f"rb-conformance-shared-{uuid.uuid4().hex[:8]}"
    with target.service_env({"RATE_LIMIT_READ": "5/minute"}):
        reader = {"Authorization": f"Bearer {target.token(scopes='events:read', sub=subject)}"}
        statuses = []
        for _ in range(7):
            with target.client() as client:  # a new connection each time, so either worker may answer
                statuses.append(client.get("/api/v1/events", params={"limit": 1}, headers=reader).status_code)
        assert statuses == [200] * 5 + [429] * 2, "five allowed in total, whichever worker answered"
        # Which worker took each connection is the kernel's choice, so all seven may have reached one worker,
        # where process-local counters would pass too. The counters themselves must be in the stack's Redis.
        assert _redis_keys_naming(target.controlled.redis_url, subject), (
            f"no rate-limit counter for {subject!r} in Redis: limits are not kept where all workers share them"
        )
        with target.client() as client:
            refused = client.get("/api/v1/events", headers=reader)
            other = client.get("/api/v1/events", headers={"Authorization": f"Bearer {target.token()}"})
        body = problem(refused, 429, "RATE_LIMITED")
        assert body["policy"] == "events-read"
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert refused.headers["ratelimit-policy"] == '"events-read";q=5;w=60'
        assert re.fullmatch(r'"events-read";r=0;t=\d+', refused.headers["ratelimit"])
        assert other.status_code == 200, "another principal has its own budget"


def _redis_keys_naming(redis_url: str, text: str) -> list[bytes]:
    with redis.Redis.from_url(redis_url, socket_timeout=2) as client:
        return list(client.scan_iter(match=f"*{text}*", count=1000))


def _ready_body(target: Target) -> tuple[int, dict[str, object]]:
    with target.client(timeout=2) as client:
        response = client.get("/health/ready")
    return response.status_code, response.json()


# Over two batches of a worker (SYNC_EVERY = 16), whichever worker the connection reaches.
REQUESTS_THAT_REACH_REDIS = 40


@requirement("RB-RL-DEGRADED")
@needs_control
@pytest.mark.parametrize("fault", ["stop", "pause"])
def test_redis_failure_keeps_serving_under_local_limits_and_recovers(target: Target, fault: str) -> None:
    stack = target.controlled
    getattr(stack, f"{fault}_dependency")("redis")
    try:
        with target.client(timeout=3) as client:
            # Enough requests that a worker must ask Redis: the service counts in batches and admits up to
            # 15 requests without asking within a second of its last count (service/rate_counts.py), so 10 could
            # all pass without one Redis call, and a service that waits 30 s on a hung Redis would pass unnoticed.
            statuses = [
                client.get("/api/v1/events", params={"limit": 1}, headers=target.auth).status_code
                for _ in range(REQUESTS_THAT_REACH_REDIS)
            ]
            assert statuses == [200] * REQUESTS_THAT_REACH_REDIS, "served, never a 500"

            def degraded_on_memory() -> bool:
                status, body = _ready_body(target)  # readiness may answer from its short cache at first
                return status == 503 and body["failed_checks"] == ["redis"] and body["rate_limit_backend"] == "memory"

            eventually(degraded_on_memory, within_s=3, interval_s=0.05)

            def metrics_show_memory() -> bool:  # the worker that answers the scrape may switch a moment later
                metrics = client.get("/metrics").text
                return re.search(r'rate_limit_backend\{backend="memory"[^}]*\} 1\.0', metrics) is not None

            eventually(metrics_show_memory, within_s=3, interval_s=0.05)
    finally:
        getattr(stack, "resume_dependency" if fault == "pause" else "start_dependency")("redis")

    def back_on_redis() -> bool:
        with target.client() as client:
            for _ in range(4):  # give every worker a request, so each one notices
                client.get("/api/v1/events", params={"limit": 1}, headers=target.auth)
        status, body = _ready_body(target)
        return status == 200 and body["rate_limit_backend"] == "redis"

    eventually(back_on_redis, within_s=15)
