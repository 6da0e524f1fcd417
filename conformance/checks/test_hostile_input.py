"""Hostile input — RB-SEC-*: what an unauthenticated client can make the service spend, and what no input may
get (a 5xx). Every check reads the target's own bounds from /health/live (`bounds`), so it runs against the
embedded stack and against any deployment (`--base-url`); each records its figures for the report's
"Hostile input" section."""

from __future__ import annotations

import base64
import json
import re
import select
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from conformance.assertions import event_body, problem
from conformance.checks.raw_answers import read_response
from conformance.suite_events import check_source
from conformance.target import Target
from conformance.wire import body_of, connect, read_until_closed, status_of

requirement = pytest.mark.requirement
Figure = Callable[[str, object], None]

METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT", "OTHER"}
MARGIN_S = 2.0  # what a deadline may be exceeded by on a busy machine before the check calls it missed


@pytest.fixture
def figure(request: pytest.FixtureRequest) -> Figure:
    """Record a measured figure for the requirement matrix's "Hostile input" section."""

    def record(name: str, value: object) -> None:
        request.node.user_properties.append((f"figure:{name}", value))

    return record


def _bounds(target: Target) -> dict[str, float]:
    with target.client() as client:
        live = client.get("/health/live").json()
    bounds = live.get("bounds")
    assert isinstance(bounds, dict), "/health/live does not report the client bounds in force (`bounds`)"
    return bounds


def _series(client: httpx.Client) -> set[str]:
    text = client.get("/metrics").text
    return {line.split(" ", 1)[0] for line in text.splitlines() if line and not line.startswith("#")}


# -- RB-SEC-CARDINALITY -------------------------------------------------------------------------------------
@requirement("RB-SEC-CARDINALITY")
def test_distinct_methods_and_paths_add_no_metric_series(target: Target, figure: Figure) -> None:
    for _ in range(8):  # the closed set's own series, on fresh connections so that every worker has them
        with target.client() as client:
            for method in ("CONFORMANCEWARMUP", "GET"):
                for path in ("/conformance-nope", "/api/v1/events/conformance-nope", "/health/live", "/metrics"):
                    client.request(method, path)
    with target.client() as client:
        before = _series(client)
        for index in range(500):
            method = f"C{index:03d}{uuid.uuid4().hex}"  # distinct methods ...
            client.request(method, f"/conformance-nope/{uuid.uuid4().hex}")  # ... on distinct paths
            client.request(method, f"/api/v1/events/{uuid.uuid4().hex}")
        after = _series(client)
    figure("metric series before 1,000 distinct methods and paths", len(before))
    figure("metric series after", len(after))
    added = sorted(after - before)
    methods = {found for series in added for found in re.findall(r'method="([^"]*)"', series)}
    assert methods <= METHODS, f"method labels outside the closed set: {sorted(methods - METHODS)[:3]}"
    assert len(added) <= 10, f"{len(added)} new series from arbitrary methods and paths, e.g. {added[:3]}"


# -- RB-SEC-SLOW-CLIENT -------------------------------------------------------------------------------------
def _keep_serving(target: Target, stop: threading.Event, statuses: list[int]) -> None:
    with target.client(timeout=5) as client:
        while not stop.is_set():
            try:
                statuses.append(client.get("/health/live").status_code)
            except httpx.HTTPError:
                statuses.append(0)
            time.sleep(0.05)


@requirement("RB-SEC-SLOW-CLIENT")
def test_trickled_bodies_get_408_within_the_deadline_while_others_are_served(target: Target, figure: Figure) -> None:
    bounds = _bounds(target)
    deadline_s = min(bounds["request_body_grace_s"], bounds["request_body_timeout_s"])
    served: list[int] = []
    stop = threading.Event()
    helper = threading.Thread(target=_keep_serving, args=(target, stop, served))
    helper.start()
    slow = [connect(target.base_url) for _ in range(20)]
    answers: list[bytes] = []
    try:
        for sock in slow:  # no credentials: the body is read before authentication
            sock.sendall(b"POST /api/v1/events HTTP/1.1\r\nHost: conformance\r\nContent-Length: 100000\r\n\r\n{")
        started = time.monotonic()
        pending = list(slow)
        while pending and time.monotonic() - started < deadline_s + 3 * MARGIN_S:
            for sock in list(pending):
                try:
                    sock.sendall(b" ")  # one byte per connection every 0.25 s
                except OSError:
                    answers.append(b"")
                    pending.remove(sock)
            for sock in select.select(pending, [], [], 0.25)[0]:
                answers.append(read_until_closed(sock, 5))
                pending.remove(sock)
        elapsed = time.monotonic() - started
    finally:
        stop.set()
        helper.join()
        for sock in slow:
            sock.close()
    figure("trickled body (1 byte per 0.25 s) cut off after (s)", round(elapsed, 2))
    assert pending == [], f"{len(pending)} of 20 trickled uploads were still open after {elapsed:.1f} s"
    assert elapsed <= deadline_s + MARGIN_S, f"cut off after {elapsed:.1f} s; the deadline is {deadline_s} s"
    statuses = [status_of(data) for data in answers]
    assert set(statuses) <= {408, None}, statuses
    if 408 in statuses:
        assert body_of(answers[statuses.index(408)])["code"] == "REQUEST_TIMEOUT"
    assert served, "no other request was served meanwhile"
    assert set(served) == {200}, f"other requests failed meanwhile: {sorted(set(served))}"


@requirement("RB-SEC-SLOW-CLIENT")
def test_trickled_headers_are_cut_off_within_the_deadline(target: Target, figure: Figure) -> None:
    deadline_s = _bounds(target)["request_header_timeout_s"]
    with connect(target.base_url) as sock:
        sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: conformance\r\n")
        started = time.monotonic()
        closed = False
        while not closed and time.monotonic() - started < deadline_s + 3 * MARGIN_S:
            try:
                sock.sendall(b"X")  # a header line that never ends
                if select.select([sock], [], [], 0.25)[0]:
                    closed = sock.recv(65536) == b""  # an answer (408/431) may come first, then the close
            except (BrokenPipeError, ConnectionResetError):
                closed = True
        elapsed = time.monotonic() - started
    figure("trickled headers cut off after (s)", round(elapsed, 2))
    assert closed, f"a connection trickling its headers was still open after {elapsed:.1f} s"
    assert elapsed <= deadline_s + MARGIN_S, f"closed after {elapsed:.1f} s; the deadline is {deadline_s} s"


# -- RB-SEC-NO-500 ------------------------------------------------------------------------------------------
def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


CRAFTED_CURSORS = [
    _b64(json.dumps(["2026-01-01T00:00:00+00:00", 5]).encode()),
    _b64(json.dumps(["0001-01-01T00:00:00+05:00", str(uuid.uuid4())]).encode()),
    _b64(json.dumps(["9999-12-31T23:59:59-05:00", str(uuid.uuid4())]).encode()),
    _b64(json.dumps(["2026-01-01T00:00:00+00:00", str(uuid.uuid4())]).encode()),  # well-formed, never issued
    _b64(json.dumps({"a": [1, {"b": None}]}).encode()) + "." + _b64(b"\x00" * 16),
    _b64(b"\xff\xfe\xfd"),
    "\u00e9\u0000",
    "." * 300,
]

QUERIES = [
    {"limit": "1" + "0" * 30},
    {"limit": "1e400"},
    {"limit": "-1"},
    {"since": "0000-01-01T00:00:00Z"},
    {"since": "0001-01-01T00:00:00+05:00"},
    {"until": "9999-12-31T23:59:59-05:00"},
    {"since": "10000-01-01T00:00:00Z"},
    {"since": "2026-02-30T00:00:00Z"},
    {"source": "\u00e9\U0001f4a9"},
    {"source": "\x00"},
    {"type": "x" * 5000},
]

BODIES = [
    b'{"source": "rb-conformance-no-500", "type": "t", "occurred_at": "2001-01-01T00:00:00Z", '
    b'"attributes": {"n": 1e400}}',
    b'{"source": "rb-conformance-no-500", "type": "t", "occurred_at": "2001-01-01T00:00:00Z", "attributes": {"n": '
    + b"9" * 400
    + b"}}",
    b'{"source": "rb-conformance-no-500", "type": "t", "occurred_at": "9999-12-31T23:59:59-05:00"}',
    b'{"source": "rb-conformance-no-500", "type": "t", "occurred_at": "2001-01-01T00:00:00Z", '
    b'"attributes": {"\\u0000": 1}}',
    b"[" * 5000 + b"]" * 5000,
    b'{"items": [' + b",".join([b'{"source": "rb-conformance-no-500"}'] * 900) + b"]}",
    '{"source": "\ud83d\udca9"}'.encode("utf-8", "surrogatepass"),
]

RAW_REQUESTS = [
    # Content-Length with Transfer-Encoding (a smuggling shape): 400, never passed on
    b"POST /api/v1/events HTTP/1.1\r\nHost: c\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5\r\nhello\r\n0\r\n\r\n",
    b"POST /api/v1/events HTTP/1.1\r\nHost: c\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    b"POST /api/v1/events HTTP/1.1\r\nHost: c\r\nContent-Length: \xc2\xb2\r\n\r\n",
    b"POST /api/v1/events HTTP/1.1\r\nHost: c\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    b"GET /api/v1/events/%ff%fe HTTP/1.1\r\nHost: c\r\n\r\n",
    b"GET /api/v1/events?cursor=%ff HTTP/1.1\r\nHost: c\r\n\r\n",
    b"GET /health/live HTTP/1.1\r\nHost: c\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n",
    b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: c\r\n\r\n",
    b"GET /health/live HTTP/1.1\r\nHost: c\r\nX-Request-Id: \xff\xfe\r\n\r\n",
]


@requirement("RB-SEC-NO-500")
def test_crafted_cursors_are_400_invalid_cursor(target: Target) -> None:
    with target.client() as client:
        for cursor in CRAFTED_CURSORS:
            response = client.get("/api/v1/events", params={"cursor": cursor}, headers=target.auth)
            assert response.status_code < 500, f"cursor {cursor[:40]!r}: {response.status_code}"
            if response.status_code == 400:
                problem(response, 400, "INVALID_CURSOR")
            else:
                problem(response, 422, "VALIDATION_FAILED")  # too long / empty: refused by the schema


@requirement("RB-SEC-NO-500")
def test_extreme_numbers_dates_and_unicode_are_4xx(target: Target, figure: Figure) -> None:
    answered: list[int] = []
    with target.client() as client:
        for params in QUERIES:
            for path in ("/api/v1/events", "/api/v1/events/stats"):
                response = client.get(path, params=params, headers=target.auth)
                answered.append(response.status_code)
                assert 400 <= response.status_code < 500, f"{path} {params}: {response.status_code}"
        for body in BODIES:
            response = client.post(
                "/api/v1/events", content=body, headers={**target.auth, "Content-Type": "application/json"}
            )
            answered.append(response.status_code)
            assert 400 <= response.status_code < 500, f"{body[:60]!r}: {response.status_code} {response.text[:200]}"
            assert response.headers["content-type"].startswith("application/problem+json")
    figure("crafted queries and bodies sent (all 4xx)", len(answered))


@requirement("RB-SEC-NO-500")
def test_ambiguous_framing_and_malformed_requests_are_never_a_5xx(target: Target) -> None:
    for raw in RAW_REQUESTS:
        with connect(target.base_url) as sock:
            sock.sendall(raw)
            data = read_response(sock, 10)  # one answer: kept-alive ones end long before the close
            status = status_of(data)
            assert status is None or status < 500, f"{raw[:70]!r}: {status}"
            if raw.startswith(b"POST /api/v1/events") and b"Transfer-Encoding" in raw and b"Content-Length" in raw:
                assert status == 400, f"Content-Length with Transfer-Encoding: {status}"
                assert body_of(data)["code"] == "AMBIGUOUS_FRAMING"
                assert b"connection: close" in data.lower()
                # Closed, and nothing more: the bytes after the ambiguous head were never answered as a
                # request of their own (smuggled past the framing check).
                rest = read_until_closed(sock, 10)
                assert rest == b"", f"a second answer after the ambiguous request: {rest[:120]!r}"


# -- RB-SEC-RESPONSE-BOUND ----------------------------------------------------------------------------------
def _attributes_near(size: int) -> dict[str, Any]:
    """Attributes whose compact JSON is just under `size` bytes, in strings under the per-string limit."""
    parts = max(1, size // 4016)
    return {f"p{index:03d}": "r" * (min(4000, size // parts - 16)) for index in range(parts)}


@requirement("RB-SEC-RESPONSE-BOUND")
def test_list_pages_stay_within_the_byte_budget_and_continue(target: Target, figure: Figure) -> None:
    bounds = _bounds(target)
    budget, per_event = int(bounds["list_page_max_bytes"]), int(bounds["event_attributes_max_bytes"])
    source = check_source("bound")
    attributes = _attributes_near(per_event)
    wanted = budget // per_event + 2  # more than one page can hold
    ids: list[str] = []
    with target.client(timeout=30) as client:
        per_batch = max(1, 900_000 // per_event)  # under the default body limit
        while len(ids) < wanted:
            items = [event_body(source, attributes=attributes) for _ in range(min(per_batch, wanted - len(ids)))]
            response = client.post("/api/v1/events", json={"items": items}, headers=target.auth)
            assert response.status_code == 201, response.text[:300]
            ids += response.json()["ids"]
        too_big = client.post(
            "/api/v1/events", json=event_body(source, attributes=_attributes_near(2 * per_event)), headers=target.auth
        )
        problem(too_big, 422, "VALIDATION_FAILED")
        seen: list[str] = []
        largest = 0
        params: dict[str, Any] = {"source": source, "limit": 500}
        while True:
            page = client.get("/api/v1/events", params=params, headers=target.auth)
            assert page.status_code == 200, page.text[:300]
            largest = max(largest, len(page.content))
            assert len(page.content) <= budget, f"a page of {len(page.content)} bytes; the budget is {budget}"
            seen += [item["id"] for item in page.json()["items"]]
            if page.json()["next_cursor"] is None:
                break
            params["cursor"] = page.json()["next_cursor"]
    figure("largest list page (bytes) / budget", f"{largest} / {budget}")
    assert len(seen) == len(set(seen)), "an event was listed twice"
    assert set(seen) == set(ids), "an event was lost at a page end"
    assert len(seen) > 0


@requirement("RB-SEC-RESPONSE-BOUND")
def test_a_stats_answer_beyond_the_budget_is_refused(target: Target) -> None:
    most = int(_bounds(target)["list_page_max_bytes"]) // 256  # buckets that fit (service/bounds.py)
    source = check_source("stats")
    with target.client(timeout=30) as client:
        for start in range(0, most + 1, 1000):
            items = [
                event_body(source, type=f"t.{n}", occurred_at="2001-01-01T00:00:00Z")  # far from live traffic
                for n in range(start, min(start + 1000, most + 1))
            ]
            assert client.post("/api/v1/events", json={"items": items}, headers=target.auth).status_code == 201
        params = {"since": "2001-01-01T00:00:00Z", "until": "2001-01-01T00:01:00Z", "bucket": "minute"}
        refused = client.get("/api/v1/events/stats", params={**params, "source": source}, headers=target.auth)
        problem(refused, 422, "STATS_TOO_LARGE")
