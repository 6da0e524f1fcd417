"""ingest 급증 시 상한 하향, oversized payload 가드 — RB-GUARD-*."""

from __future__ import annotations

import json
import uuid

import pytest

from conformance.assertions import event_body, problem
from conformance.suite_events import check_source
from conformance.target import Target
from conformance.wire import chunk, raw_post

requirement = pytest.mark.requirement
needs_control = pytest.mark.needs_control


def _limits(target: Target) -> dict[str, int]:
    with target.client() as client:
        limits: dict[str, int] = client.get("/health/live").json()["limits"]
    return limits


def _stored(target: Target, event_ids: list[str]) -> list[str]:
    with target.client() as client:
        return [i for i in event_ids if client.get(f"/api/v1/events/{i}", headers=target.auth).status_code == 200]


def _headers(target: Target, extra: dict[str, str]) -> dict[str, str]:
    return {**target.auth, "Content-Type": "application/json", "X-Request-Id": "conformance-413", **extra}


@requirement("RB-GUARD-BODY-413")
def test_declared_oversize_is_413_before_the_body_is_sent(target: Target) -> None:
    limit = _limits(target)["max_request_body_bytes"]
    # Headers only: a server that waited for the body would never answer.
    response = raw_post(
        target.base_url, "/api/v1/events", _headers(target, {"Content-Length": str(limit + 1)}), [], timeout=5
    )
    assert response.status == 413
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert (body["code"], body["request_id"]) == ("PAYLOAD_TOO_LARGE", "conformance-413")
    assert response.headers["x-request-id"] == "conformance-413"


@requirement("RB-GUARD-BODY-413")
def test_streamed_oversize_is_413_and_nothing_is_written(target: Target) -> None:
    limit = _limits(target)["max_request_body_bytes"]
    ids = [str(uuid.uuid4()) for _ in range(3)]
    start = json.dumps({"items": [event_body(check_source("guard"), id=i) for i in ids]}).encode()
    padding = b" " * 65536
    parts = [chunk(start[:-2]), *[chunk(padding)] * (limit // len(padding) + 2), chunk(b"]}"), b"0\r\n\r\n"]
    response = raw_post(
        target.base_url,
        "/api/v1/events",
        _headers(target, {"Transfer-Encoding": "chunked"}),
        parts,
        stop_when_answered=True,
    )
    assert response.status == 413
    assert response.json()["code"] == "PAYLOAD_TOO_LARGE"
    assert _stored(target, ids) == []


@requirement("RB-GUARD-BATCH")
def test_over_limit_batch_is_413_with_the_limit_and_nothing_is_written(target: Target) -> None:
    limit = _limits(target)["ingest_max_batch_items"]
    ids = [str(uuid.uuid4()) for _ in range(limit + 1)]
    with target.client() as client:
        response = client.post(
            "/api/v1/events",
            json={"items": [event_body(check_source("batch"), id=i) for i in ids]},
            headers=target.auth,
        )
    body = problem(response, 413, "INGEST_BATCH_TOO_LARGE")
    assert body["limit"] == limit
    assert _stored(target, ids[:3] + ids[-3:]) == []


@requirement("RB-GUARD-ROLLOUT")
@needs_control
def test_lowered_limits_take_effect_after_a_rollout_and_are_visible(target: Target) -> None:
    with target.service_env({"MAX_REQUEST_BODY_BYTES": "2048", "INGEST_MAX_BATCH_ITEMS": "3"}):
        assert _limits(target) == {"max_request_body_bytes": 2048, "ingest_max_batch_items": 3}
        with target.client() as client:
            metrics = client.get("/metrics").text
            assert 'config_limit{name="ingest_max_batch_items"} 3.0' in metrics
            four = client.post(
                "/api/v1/events", json={"items": [event_body(check_source("rollout"))] * 4}, headers=target.auth
            )
            problem(four, 413, "INGEST_BATCH_TOO_LARGE")
            big = client.post(
                "/api/v1/events",
                json=event_body(check_source("rollout"), attributes={"x": "y" * 2100}),
                headers=target.auth,
            )
            problem(big, 413, "PAYLOAD_TOO_LARGE")
    assert _limits(target)["ingest_max_batch_items"] == 1000, "rolled back"
