"""RB-OBS-REQUEST-ID, RB-OBS-LOGS, RB-TRIAGE-VERSION, RB-HEALTH-LIVE/READY/OPEN, /metrics basics."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from quart.typing import TestClientProtocol as Client

from chaos.stack.migrations import head_revision
from service.logs import JsonFormatter, SecretRedactor
from service.settings import Settings
from tests.helpers import API_KEY_HEADERS, TEST_API_KEY, event, make_token

pytestmark = pytest.mark.integration

# Collection ends before any fixture runs, so the session's app starts after this.
COLLECTED_AT = datetime.now(UTC)


@pytest.fixture
def read_logs(settings: Settings) -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """Reads back every log line written so far in the test, as the service's JSON handler formats it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter(SecretRedactor(settings.secret_values())))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


async def test_valid_request_id_is_kept_everywhere(client: Client) -> None:
    for method, path, headers, status in [
        ("GET", "/health/live", {}, 200),
        ("GET", "/api/v1/events", {}, 401),
        ("GET", "/nope", {}, 404),
        ("POST", "/api/v1/events", API_KEY_HEADERS, 422),
    ]:
        response = await client.open(
            path,
            method=method,
            headers={**headers, "X-Request-Id": "trace-42.a:b_c-d"},
            json={} if method == "POST" else None,
        )
        assert response.status_code == status
        assert response.headers["X-Request-Id"] == "trace-42.a:b_c-d"
        if status >= 400:
            assert (await response.get_json())["request_id"] == "trace-42.a:b_c-d"


@pytest.mark.parametrize("bad", ["has space", "x" * 129, "semi;colon", "üñí"])
async def test_invalid_request_id_is_replaced(client: Client, bad: str) -> None:
    response = await client.get("/health/live", headers={"X-Request-Id": bad})
    generated = response.headers["X-Request-Id"]
    assert generated != bad
    assert len(generated) == 32


async def test_every_response_carries_the_release(client: Client, settings: Settings) -> None:
    for path in ("/health/live", "/api/v1/events", "/missing"):
        response = await client.get(path)
        assert response.headers["X-App-Version"] == settings.app_version


async def test_live_reports_version_start_time_and_limits(client: Client, settings: Settings) -> None:
    asked_at = datetime.now(UTC)
    body = await (await client.get("/health/live")).get_json()
    answered_at = datetime.now(UTC)
    assert body["status"] == "alive"
    assert body["version"] == settings.app_version
    assert body["started_at"].endswith("Z")
    started_at = datetime.fromisoformat(body["started_at"])
    assert COLLECTED_AT <= started_at <= asked_at  # the app was created for this session, before the request
    # Uptime is the time since started_at when the request was answered (rounded to the millisecond).
    assert (asked_at - started_at).total_seconds() - 0.001 <= body["uptime_s"]
    assert body["uptime_s"] <= (answered_at - started_at).total_seconds() + 0.001
    await asyncio.sleep(0.05)
    again = await (await client.get("/health/live")).get_json()
    assert again["started_at"] == body["started_at"]
    assert again["uptime_s"] >= body["uptime_s"] + 0.04  # slept 0.05 s; 0.01 s for rounding and timers
    assert body["limits"] == {
        "max_request_body_bytes": settings.max_request_body_bytes,
        "ingest_max_batch_items": settings.ingest_max_batch_items,
    }


async def test_ready_reports_each_dependency_and_the_schema_revision(client: Client, settings: Settings) -> None:
    response = await client.get("/health/ready")
    assert response.status_code == 200
    body = await response.get_json()
    assert body["status"] == "ready"
    assert body["schema_revision"] == head_revision()
    assert set(body["checks"]) == {"database", "redis", "schema"}
    for check in body["checks"].values():
        assert check["status"] == "up"
        # A real round trip takes time, and every check is bounded by the health check timeout.
        assert 0 < check["latency_ms"] < settings.health_check_timeout_s * 1000
    # The schema check reads the database check's answer: no round trip of its own.
    assert body["checks"]["schema"]["latency_ms"] == body["checks"]["database"]["latency_ms"]


async def test_access_log_has_one_structured_line_per_request(
    client: Client, read_logs: Callable[[], list[dict[str, Any]]]
) -> None:
    await client.get("/api/v1/events", headers={**API_KEY_HEADERS, "X-Request-Id": "log-trace-1"})
    await client.get(
        "/api/v1/events/not-a-uuid",
        headers={"Authorization": f"Bearer {make_token(sub='ops')}", "X-Request-Id": "log-trace-2"},
    )
    access = [line for line in read_logs() if line["logger"] == "access"]
    first, second = (
        next(line for line in access if line["request_id"] == rid) for rid in ("log-trace-1", "log-trace-2")
    )
    assert first["method"] == "GET"
    assert first["route"] == "/api/v1/events"
    assert first["status"] == 200
    assert first["principal"] == "api-key"
    assert isinstance(first["duration_ms"], float)
    assert second["route"] == "/api/v1/events/<event_id>"  # the template, not the raw path
    assert second["status"] == 422
    assert second["principal"] == "jwt:ops"
    assert len([line for line in access if line["request_id"] == "log-trace-1"]) == 1


async def test_credentials_never_reach_the_logs(
    client: Client, read_logs: Callable[[], list[dict[str, Any]]], settings: Settings
) -> None:
    token = make_token()
    logging.getLogger("service.test").warning(
        "a careless line with every secret in it: %s %s %s",
        TEST_API_KEY,
        token,
        settings.database_url.get_secret_value(),
    )
    await client.post("/api/v1/events", json=event(), headers=API_KEY_HEADERS)
    await client.get("/api/v1/events", headers={"Authorization": f"Bearer {token}"})
    await client.get("/api/v1/events", headers={"X-API-Key": TEST_API_KEY + "-wrong"})
    log_lines = read_logs()
    text = json.dumps(log_lines)
    assert len(log_lines) >= 4
    for secret in (TEST_API_KEY, token, settings.jwt_secret.get_secret_value(), settings.database_password):
        assert secret not in text
    assert "[REDACTED]" in text


async def test_metrics_use_route_templates(client: Client) -> None:
    await client.get("/api/v1/events/7d1b7b8e-0c0a-4bd5-9d1e-000000000000", headers=API_KEY_HEADERS)
    text = await (await client.get("/metrics")).get_data(as_text=True)
    assert 'http_requests_total{method="GET",route="/api/v1/events/<event_id>",status="404"}' in text
    assert "7d1b7b8e" not in text
    assert "http_request_duration_seconds_bucket" in text
    assert "http_requests_in_flight" in text
    assert 'config_limit{name="max_request_body_bytes"}' in text
