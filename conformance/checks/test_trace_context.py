"""W3C trace context beside X-Request-Id (RB-OBS-TRACE-CONTEXT, RB-OBS-LOGS): a valid `traceparent` is continued
with this server's span on every response, errors included; none or an invalid one starts a new trace; the
request id is unchanged; and, where the suite reads the service's log, its lines carry `trace_id`/`span_id`.

The header checks need nothing but HTTP, so they run against a remote target (`--base-url`) too: a proxy in
front of it that strips or rewrites `traceparent` fails them, as it would break tracing there.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from conformance.target import Target, answers_of_every_kind, send_anonymous

requirement = pytest.mark.requirement
needs_control = pytest.mark.needs_control

ANSWER = re.compile(r"00-(?P<trace_id>[0-9a-f]{32})-(?P<span_id>[0-9a-f]{16})-(?P<flags>[0-9a-f]{2})")
LOG_WAIT_S = 5.0


def _caller() -> tuple[str, str, str]:
    """A fresh caller span per check: a remote target's log may hold earlier runs' traces."""
    trace_id, parent_id = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    return trace_id, parent_id, f"00-{trace_id}-{parent_id}-01"


def _answer(response: httpx.Response) -> re.Match[str]:
    match = ANSWER.fullmatch(response.headers.get("traceparent", ""))
    assert match is not None, f"{response.request.url.path}: no valid traceparent on the {response.status_code}"
    return match


@requirement("RB-OBS-TRACE-CONTEXT")
def test_a_valid_traceparent_is_continued_on_every_response(target: Target) -> None:
    trace_id, parent_id, traceparent = _caller()
    with target.client() as client:
        for method, path, headers, body in answers_of_every_kind(target):
            request_id = f"conf-trace.{uuid.uuid4().hex[:10]}"
            sent = {**headers, "X-Request-Id": request_id, "traceparent": traceparent, "tracestate": "conf=1"}
            response = send_anonymous(client, method, path, headers=sent, json=body)
            answer = _answer(response)
            assert answer["trace_id"] == trace_id, path
            assert answer["span_id"] not in (parent_id, "0" * 16), f"{path}: the answer must name the server's span"
            assert int(answer["flags"], 16) & 1 == 1, f"{path}: the caller's sampled flag was dropped"
            assert response.headers.get("tracestate") == "conf=1", path
            assert response.headers["x-request-id"] == request_id, path
            if response.status_code >= 400:
                assert response.json()["request_id"] == request_id, path


@requirement("RB-OBS-TRACE-CONTEXT")
def test_without_a_valid_traceparent_a_new_trace_starts(target: Target) -> None:
    trace_id, parent_id, traceparent = _caller()
    invalid = [
        traceparent.upper(),
        f"00-{'0' * 32}-{parent_id}-01",
        f"00-{trace_id}-{'0' * 16}-01",
        f"ff-{trace_id}-{parent_id}-01",
        f"00-{trace_id}-{parent_id}-01-extra",
        traceparent[:-1],
    ]
    seen: set[str] = set()
    with target.client() as client:
        for value in [None, *invalid]:
            headers = {"tracestate": "conf=1"} | ({"traceparent": value} if value is not None else {})
            response = client.get("/health/live", headers=headers)
            answer = _answer(response)
            assert answer["trace_id"] not in (trace_id, "0" * 32), value
            assert "tracestate" not in response.headers, f"tracestate kept beside an invalid traceparent {value!r}"
            seen.add(answer["trace_id"])
    assert len(seen) == len(invalid) + 1, "each new trace needs an id of its own"


def _lines_of(log_path: Path, request_id: str) -> list[dict[str, Any]]:
    """The request's log lines once its access line is written (bounded wait)."""
    deadline = time.monotonic() + LOG_WAIT_S
    while True:
        lines = []
        for text in log_path.read_text(errors="replace").splitlines():
            if request_id in text and text.startswith("{"):
                entry = json.loads(text)
                if entry.get("request_id") == request_id:
                    lines.append(entry)
        if any(line.get("logger") == "access" for line in lines) or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


@requirement("RB-OBS-TRACE-CONTEXT", "RB-OBS-LOGS")
@needs_control
def test_every_log_line_carries_the_trace_beside_the_request_id(target: Target) -> None:
    log_path = target.controlled.endpoints.service_log
    assert log_path is not None
    trace_id, _, traceparent = _caller()
    request_id = f"conf-trace-log-{uuid.uuid4().hex[:8]}"
    with target.client() as client:
        # A refused key: the service logs the refusal inside the request, then the access line.
        response = send_anonymous(
            client,
            "GET",
            "/api/v1/events",
            headers={"X-API-Key": "conformance-wrong-key", "X-Request-Id": request_id, "traceparent": traceparent},
        )
    span_id = _answer(response)["span_id"]
    lines = _lines_of(Path(log_path), request_id)
    assert any(line.get("logger") == "access" for line in lines), f"no access line for {request_id}"
    for line in lines:
        assert (line.get("trace_id"), line.get("span_id")) == (trace_id, span_id), line
