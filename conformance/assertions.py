"""Assertions shared by the conformance checks."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from conformance.suite_events import WINDOW_START


def problem(response: Any, status: int, code: str) -> dict[str, Any]:
    """Assert an RFC 9457 problem with this status and code, and return its body."""
    assert response.status_code == status, (
        f"expected {status} {code}, got {response.status_code}: {response.text[:300]}"
    )
    assert response.headers.get("content-type", "").startswith("application/problem+json"), response.headers
    body: dict[str, Any] = response.json()
    for member in ("type", "title", "status", "detail", "code", "request_id"):
        assert member in body, f"problem body lacks `{member}`: {body}"
    assert body["status"] == status
    assert body["code"] == code, body
    assert body["request_id"] == response.headers.get("x-request-id"), "request_id matches X-Request-Id"
    return body


def eventually(condition: Callable[[], bool], within_s: float, interval_s: float = 0.1) -> float:
    """Retry until `condition` holds; return how long it took, or fail after `within_s`."""
    started = time.monotonic()
    while True:
        try:
            if condition():
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        if time.monotonic() - started > within_s:
            raise AssertionError(f"not met within {within_s} s")
        time.sleep(interval_s)


def event_body(source: str, **fields: Any) -> dict[str, Any]:
    """An event as the checks write it: in the suite's time window (conformance/suite_events.py)."""
    body: dict[str, Any] = {"source": source, "type": "conformance.check", "occurred_at": WINDOW_START}
    body.update(fields)
    return body
