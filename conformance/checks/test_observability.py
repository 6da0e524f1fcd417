"""메트릭 확인, X-Request-Id 기반 로그 추적 — RB-OBS-REQUEST-ID, RB-OBS-LOGS, RB-OBS-METRICS."""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from conformance.assertions import eventually
from conformance.target import Target, answers_of_every_kind

requirement = pytest.mark.requirement
needs_control = pytest.mark.needs_control


@requirement("RB-OBS-REQUEST-ID")
def test_a_valid_request_id_is_kept_on_every_response(target: Target) -> None:
    with target.client() as client:
        for method, path, headers, body in answers_of_every_kind(target):
            request_id = f"conf.{uuid.uuid4().hex[:10]}:x-1_2"
            response = client.request(method, path, headers={**headers, "X-Request-Id": request_id}, json=body)
            assert response.headers["x-request-id"] == request_id, path
            if response.status_code >= 400:
                assert response.json()["request_id"] == request_id


@requirement("RB-OBS-REQUEST-ID")
def test_an_invalid_request_id_is_replaced(target: Target) -> None:
    with target.client() as client:
        for bad in ("has space", "x" * 129, "semi;colon"):
            response = client.get("/health/live", headers={"X-Request-Id": bad})
            assert response.headers["x-request-id"] not in ("", bad)
            assert re.fullmatch(r"[A-Za-z0-9._:-]{1,128}", response.headers["x-request-id"])


def _log_lines(target: Target) -> list[dict[str, Any]]:
    log_path = target.controlled.endpoints.service_log
    assert log_path is not None
    lines = []
    for line in Path(log_path).read_text(errors="replace").splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def _wait_for_lines(target: Target, request_id: str, count: int = 1) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 5
    while True:
        found = [line for line in _log_lines(target) if line.get("request_id") == request_id]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


@requirement("RB-OBS-REQUEST-ID", "RB-OBS-LOGS")
@needs_control
def test_one_json_access_line_per_request_carrying_its_request_id(target: Target) -> None:
    request_id = f"conformance-log-{uuid.uuid4().hex[:8]}"
    with target.client() as client:
        client.get("/api/v1/events", params={"limit": 1}, headers={**target.auth, "X-Request-Id": request_id})
    lines = _wait_for_lines(target, request_id)
    access = [line for line in lines if line.get("logger") == "access"]
    assert len(access) == 1, lines
    line = access[0]
    assert line["method"] == "GET"
    assert line["route"] == "/api/v1/events"
    assert line["status"] == 200
    assert isinstance(line["duration_ms"], int | float)
    assert line["principal"] == "api-key"


@requirement("RB-OBS-LOGS")
@needs_control
def test_credentials_never_appear_in_the_logs(target: Target) -> None:
    token = target.token()
    marker = f"conformance-secrets-{uuid.uuid4().hex[:8]}"
    with target.client() as client:
        client.get("/api/v1/events", headers={**target.auth, "X-Request-Id": marker})
        client.get("/api/v1/events", headers={"Authorization": f"Bearer {token}", "X-Request-Id": marker + "-b"})
        client.get(
            "/api/v1/events", headers={"X-API-Key": "guess-" + (target.api_key or ""), "X-Request-Id": marker + "-c"}
        )
    _wait_for_lines(target, marker + "-c")
    env = target.controlled.service_env
    text = Path(target.controlled.endpoints.service_log or "").read_text(errors="replace")
    password = env["DATABASE_URL"].split("://", 1)[1].split("@", 1)[0].partition(":")[2]
    for secret in (env["API_KEY"], env["JWT_SECRET"], token, password):
        assert secret
        assert secret not in text


def _sample(text: str, name: str, labels: dict[str, str]) -> float:
    total = 0.0
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}\{{(.*)\}} (\S+)", line)
        if match:
            found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1)))
            if all(found.get(key) == value for key, value in labels.items()):
                total += float(match.group(2))
    return total


@requirement("RB-OBS-METRICS")
def test_metrics_count_requests_by_route_template_with_latency(target: Target) -> None:
    labels = {"route": "/api/v1/events/<event_id>", "method": "GET", "status": "404"}
    with target.client() as client:
        before = client.get("/metrics").text
        for _ in range(20):
            client.get(f"/api/v1/events/{uuid.uuid4()}", headers=target.auth)
        after = client.get("/metrics").text
    assert _sample(after, "http_requests_total", labels) - _sample(before, "http_requests_total", labels) == 20
    assert "/api/v1/events/<event_id>" in after, "labelled by the route template, not the raw path"
    histogram = {"route": "/api/v1/events/<event_id>", "method": "GET"}
    assert _sample(after, "http_request_duration_seconds_count", histogram) >= 20
    assert 'le="0.4"' in after, "a bucket edge at the runbook's p95 gate"
    for family in ("http_requests_in_flight", "dependency_up", "rate_limit_backend", "degraded_mode"):
        assert re.search(rf"^{family}(\{{| )", after, re.MULTILINE), family


@requirement("RB-OBS-METRICS")
@needs_control
def test_dependency_state_shows_in_metrics(target: Target) -> None:
    stack = target.controlled
    stack.stop_dependency("redis")
    scraped: list[str] = []

    def redis_shown_down() -> bool:
        with target.client() as client:
            scraped.append(client.get("/metrics").text)
        return _sample(scraped[-1], "dependency_up", {"dependency": "redis"}) == 0

    try:
        eventually(redis_shown_down, within_s=3, interval_s=0.05)  # each scrape refreshes the state
    finally:
        stack.start_dependency("redis")
    assert _sample(scraped[-1], "dependency_up", {"dependency": "database"}) >= 1
