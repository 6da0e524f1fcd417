"""W3C trace context end to end: `python -m service` (hypercorn, as in production) on PostgreSQL and Redis servers
of this module's own, spoken to over the wire. A valid `traceparent` keeps its trace and gets this server's
span back on every response, errors and the balancer-facing 503s included; anything else starts a new trace;
every log line of the request carries `trace_id` and `span_id` beside `request_id`, and the runbook's
X-Request-Id behaves as before (RB-OBS-REQUEST-ID)."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from chaos.stack.servers import PostgresServer, RedisServer
from chaos.stack.service import ServiceProcess
from tests.helpers import API_KEY_HEADERS, TEST_API_KEY, TEST_JWT_SECRET

pytestmark = pytest.mark.integration

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"
TRACESTATE = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"
ANSWER = re.compile(r"00-(?P<trace_id>[0-9a-f]{32})-(?P<span_id>[0-9a-f]{16})-(?P<flags>0[01])")
BODY_LIMIT = 1024
WAIT_GUARD_S = 10.0  # a bounded wait for a log line or a state; far above what either takes


@pytest.fixture(scope="module")
def service(postgres: PostgresServer, redis_server: RedisServer) -> Iterator[ServiceProcess]:
    env = {
        "DATABASE_URL": postgres.url("events"),
        "REDIS_URL": redis_server.url(),
        "API_KEY": TEST_API_KEY,
        "JWT_SECRET": TEST_JWT_SECRET,
        "MAX_REQUEST_BODY_BYTES": str(BODY_LIMIT),
        "RATE_LIMIT_ANONYMOUS": "100000/minute",
        "HEALTH_CACHE_S": "0",
    }
    with ServiceProcess(env, workers=1) as running:
        yield running


@pytest.fixture
def client(service: ServiceProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=service.base_url, timeout=WAIT_GUARD_S) as http:
        yield http


def _request_id() -> str:
    return f"trace-test-{uuid.uuid4().hex[:12]}"


def _lines_of(service: ServiceProcess, request_id: str) -> list[dict[str, Any]]:
    """Every log line of the request, once its access line (the last one) is written."""
    deadline = time.monotonic() + WAIT_GUARD_S
    while True:
        lines = [
            entry
            for text in service.log_path.read_text(errors="replace").splitlines()
            if request_id in text and text.startswith("{")
            for entry in [json.loads(text)]
            if entry.get("request_id") == request_id
        ]
        if any(line["logger"] == "access" for line in lines):
            return lines
        assert time.monotonic() < deadline, f"no access line for {request_id}:\n{service.log_tail()}"
        time.sleep(0.05)


def _answer(response: httpx.Response) -> re.Match[str]:
    match = ANSWER.fullmatch(response.headers.get("traceparent", ""))
    assert match is not None, f"no valid traceparent on the {response.status_code}: {response.headers}"
    return match


def test_a_valid_traceparent_keeps_its_trace_and_gets_this_servers_span(
    client: httpx.Client, service: ServiceProcess
) -> None:
    request_id = _request_id()
    response = client.get(
        "/api/v1/events",
        params={"limit": 1},
        headers={**API_KEY_HEADERS, "X-Request-Id": request_id, "traceparent": TRACEPARENT, "tracestate": TRACESTATE},
    )
    assert response.status_code == 200
    answer = _answer(response)
    assert answer["trace_id"] == TRACE_ID
    assert answer["span_id"] != PARENT_ID, "the answer names this server's span, not the caller's"
    assert answer["flags"] == "01"  # the caller's sampling decision goes on
    assert response.headers["tracestate"] == TRACESTATE
    assert response.headers["x-request-id"] == request_id  # the runbook's id is untouched

    (access,) = [line for line in _lines_of(service, request_id) if line["logger"] == "access"]
    assert (access["trace_id"], access["span_id"]) == (TRACE_ID, answer["span_id"])
    assert "congo" not in json.dumps(access), "tracestate is vendors' data: passed on, never logged"


def test_every_log_line_of_a_request_carries_its_trace(client: httpx.Client, service: ServiceProcess) -> None:
    """A refused key logs `credentials refused` inside the request, then the access line: both carry it."""
    request_id = _request_id()
    response = client.get(
        "/api/v1/events", headers={"X-API-Key": "wrong", "X-Request-Id": request_id, "traceparent": TRACEPARENT}
    )
    assert response.status_code == 401
    span_id = _answer(response)["span_id"]
    lines = _lines_of(service, request_id)
    assert {line["logger"] for line in lines} >= {"access", "service.auth"}, lines
    for line in lines:
        assert (line["request_id"], line["trace_id"], line["span_id"]) == (request_id, TRACE_ID, span_id), line


def test_without_a_traceparent_each_request_starts_a_new_trace(client: httpx.Client, service: ServiceProcess) -> None:
    seen = set()
    for _ in range(3):
        request_id = _request_id()
        response = client.get("/health/live", headers={"X-Request-Id": request_id})
        answer = _answer(response)
        assert answer["flags"] == "00"  # nothing is recorded here, so nothing is claimed as sampled
        assert "tracestate" not in response.headers
        (access,) = [line for line in _lines_of(service, request_id) if line["logger"] == "access"]
        assert (access["trace_id"], access["span_id"]) == (answer["trace_id"], answer["span_id"])
        seen.add(answer["trace_id"])
    assert len(seen) == 3


@pytest.mark.parametrize(
    "headers",
    [
        [("traceparent", TRACEPARENT.upper())],
        [("traceparent", f"00-{'0' * 32}-{PARENT_ID}-01")],
        [("traceparent", f"00-{TRACE_ID}-{'0' * 16}-01")],
        [("traceparent", f"ff-{TRACE_ID}-{PARENT_ID}-01")],
        [("traceparent", f"00-{TRACE_ID}-{PARENT_ID}-01-extra")],
        [("traceparent", TRACEPARENT + "-" + "a" * 4000)],  # long, but within what hypercorn accepts
        [("traceparent", TRACEPARENT), ("traceparent", TRACEPARENT)],  # twice
        [("traceparent", "00-" + "é" * 32 + f"-{PARENT_ID}-01")],
    ],
    ids=["uppercase", "zero-trace-id", "zero-parent-id", "version-ff", "v00-extra", "long", "twice", "latin-1"],
)
def test_an_invalid_traceparent_starts_a_new_trace_and_drops_tracestate(
    client: httpx.Client, headers: list[tuple[str, str]]
) -> None:
    sent = [(name.encode(), value.encode("latin-1")) for name, value in [*headers, ("tracestate", TRACESTATE)]]
    response = client.get("/health/live", headers=sent)
    assert response.status_code == 200
    assert _answer(response)["trace_id"] != TRACE_ID
    assert "tracestate" not in response.headers


def test_a_tracestate_outside_the_spec_is_dropped_and_the_trace_kept(client: httpx.Client) -> None:
    too_many = ",".join(f"k{index}=v" for index in range(33))
    for tracestate in (too_many, "Upper=1", "k=" + "v" * 600, "a=1,a=2"):
        response = client.get("/health/live", headers={"traceparent": TRACEPARENT, "tracestate": tracestate})
        assert _answer(response)["trace_id"] == TRACE_ID
        assert "tracestate" not in response.headers


def test_problem_responses_carry_the_trace_and_still_the_request_id(client: httpx.Client) -> None:
    """Handler errors (401, 404, 405, 422) and the edge's own refusals (413 before the body, 400 framing)."""
    oversized = b"x" * (BODY_LIMIT + 1)
    calls: list[tuple[str, str, dict[str, str], bytes | None, int]] = [
        ("GET", "/api/v1/events", {}, None, 401),
        ("GET", f"/api/v1/events/{uuid.uuid4()}", API_KEY_HEADERS, None, 404),
        ("DELETE", "/health/live", {}, None, 405),
        ("POST", "/api/v1/events", {**API_KEY_HEADERS, "Content-Type": "application/json"}, b"{}", 422),
        ("POST", "/api/v1/events", {**API_KEY_HEADERS, "Content-Type": "application/json"}, oversized, 413),
    ]
    for method, path, headers, body, status in calls:
        request_id = _request_id()
        response = client.request(
            method, path, headers={**headers, "X-Request-Id": request_id, "traceparent": TRACEPARENT}, content=body
        )
        assert response.status_code == status, (path, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert _answer(response)["trace_id"] == TRACE_ID, path
        assert response.headers["x-request-id"] == request_id
        assert response.json()["request_id"] == request_id


def test_the_balancer_facing_503s_carry_the_trace(
    client: httpx.Client, service: ServiceProcess, postgres: PostgresServer
) -> None:
    """With PostgreSQL gone, readiness (what HAProxy acts on) and the API answer 503; both carry the trace."""
    postgres.pause()
    try:
        request_id = _request_id()
        ready = client.get("/health/ready", headers={"X-Request-Id": request_id, "traceparent": TRACEPARENT})
        assert (ready.status_code, ready.json()["status"]) == (503, "degraded")
        assert _answer(ready)["trace_id"] == TRACE_ID
        (access,) = [line for line in _lines_of(service, request_id) if line["logger"] == "access"]
        assert (access["status"], access["trace_id"]) == (503, TRACE_ID)

        listing = client.get("/api/v1/events", headers={**API_KEY_HEADERS, "traceparent": TRACEPARENT})
        assert listing.status_code == 503
        assert listing.json()["code"] == "DEPENDENCY_UNAVAILABLE"
        assert _answer(listing)["trace_id"] == TRACE_ID
        assert listing.json()["request_id"] == listing.headers["x-request-id"]
    finally:
        postgres.resume()
    deadline = time.monotonic() + WAIT_GUARD_S
    while client.get("/health/ready").status_code != 200:
        assert time.monotonic() < deadline, "readiness did not come back after PostgreSQL resumed"
        time.sleep(0.1)
