"""Hostile input against the service as it runs in production (`python -m service` under hypercorn, two
workers): what arrives on the wire before routing and authentication — methods, framing, the pace of headers
and bodies, clients that do not read — and what it can make a worker spend (RB-SEC-*; service/bounds.py)."""

from __future__ import annotations

import base64
import json
import re
import select
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chaos.stack.service import ServiceProcess
from service.bounds import METRIC_METHODS, OTHER_METHOD
from tests.helpers import API_KEY_HEADERS, TEST_API_KEY, TEST_JWT_SECRET, event

pytestmark = pytest.mark.integration

HEADER_TIMEOUT_S = 1.5
BODY_GRACE_S = 1.0
BODY_TIMEOUT_S = 4.0
BODY_MIN_RATE_BPS = 1000
SEND_TIMEOUT_S = 2.0
WAIT_GUARD_S = 10.0  # a bounded wait for the state a test asserts; far above every deadline above


@pytest.fixture(scope="module")
def service(database_url: str, redis_url: str) -> Iterator[ServiceProcess]:
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "API_KEY": TEST_API_KEY,
        "JWT_SECRET": TEST_JWT_SECRET,
        "REQUEST_HEADER_TIMEOUT_S": str(HEADER_TIMEOUT_S),
        "REQUEST_BODY_GRACE_S": str(BODY_GRACE_S),
        "REQUEST_BODY_TIMEOUT_S": str(BODY_TIMEOUT_S),
        "REQUEST_BODY_MIN_RATE_BPS": str(BODY_MIN_RATE_BPS),
        "RESPONSE_SEND_TIMEOUT_S": str(SEND_TIMEOUT_S),
        "RATE_LIMIT_ANONYMOUS": "100000/minute",
    }
    with ServiceProcess(env, workers=2) as running:
        yield running


def _connect(service: ServiceProcess) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", service.port), timeout=WAIT_GUARD_S)
    return sock


def _read_until_closed(sock: socket.socket, within_s: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection (or resets it), and when that was."""
    started = time.monotonic()
    data = b""
    sock.settimeout(within_s)
    try:
        while True:
            received = sock.recv(65536)
            if not received:
                break
            data += received
    except ConnectionResetError:
        pass
    return data, time.monotonic() - started


def _status(data: bytes) -> int | None:
    match = re.match(rb"HTTP/1\.1 (\d{3}) ", data)
    return int(match.group(1)) if match else None


def _series(metrics_text: str) -> set[str]:
    return {line.split(" ", 1)[0] for line in metrics_text.splitlines() if line and not line.startswith("#")}


# -- RB-SEC-CARDINALITY --------------------------------------------------------------------------------------
def test_arbitrary_methods_and_paths_add_no_metric_series(service: ServiceProcess) -> None:
    for _ in range(10):  # the closed set's own series, on fresh connections so that both workers have them
        with httpx.Client(base_url=service.base_url, timeout=WAIT_GUARD_S) as client:
            for method in ("WARMUP", "GET"):
                for path in ("/nope", "/api/v1/events/not-a-uuid", "/health/live", "/metrics"):
                    client.request(method, path)
    with httpx.Client(base_url=service.base_url, timeout=WAIT_GUARD_S) as client:
        before = _series(client.get("/metrics").text)
        for index in range(300):
            method = f"M{index:03d}" + "X" * 196  # 200 characters, each one distinct
            client.request(method, f"/nope/{uuid.uuid4()}")
            client.request(method, "/health/live")
        after = _series(client.get("/metrics").text)
    methods = {found for series in after for found in re.findall(r'method="([^"]*)"', series)}
    assert methods <= METRIC_METHODS | {OTHER_METHOD}, sorted(methods - METRIC_METHODS)[:3]
    assert after - before == set(), sorted(after - before)[:5]


# -- RB-SEC-SLOW-CLIENT -------------------------------------------------------------------------------------
def test_a_trickled_body_gets_408_while_other_requests_are_served(service: ServiceProcess) -> None:
    served: list[int] = []
    stop = threading.Event()

    def others() -> None:
        with httpx.Client(base_url=service.base_url, timeout=WAIT_GUARD_S) as client:
            while not stop.is_set():
                served.append(client.get("/health/live").status_code)
                time.sleep(0.05)

    helper = threading.Thread(target=others)
    helper.start()
    try:
        slow = [_connect(service) for _ in range(20)]
        for sock in slow:
            sock.sendall(
                b"POST /api/v1/events HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                b"Content-Length: 100000\r\n\r\n{"
            )
        started = time.monotonic()
        answered: list[bytes] = []
        pending = list(slow)
        while pending and time.monotonic() - started < WAIT_GUARD_S:
            for sock in list(pending):
                try:
                    sock.sendall(b" ")  # one byte per connection every 0.25 s: far below the minimum rate
                except (BrokenPipeError, ConnectionResetError):
                    answered.append(b"")
                    pending.remove(sock)
            readable, _, _ = select.select(pending, [], [], 0.25)
            for sock in readable:
                answered.append(_read_until_closed(sock, WAIT_GUARD_S)[0])  # the answer, then the close
                pending.remove(sock)
        elapsed = time.monotonic() - started
        for sock in slow:
            sock.close()
    finally:
        stop.set()
        helper.join()
    assert pending == [], "some trickled uploads were never cut off"
    assert elapsed < BODY_GRACE_S + 3, f"cut off after {elapsed:.1f} s"
    statuses = [_status(data) for data in answered]
    assert all(status in (408, None) for status in statuses), statuses
    assert 408 in statuses
    body = json.loads(answered[statuses.index(408)].split(b"\r\n\r\n", 1)[1])
    assert body["code"] == "REQUEST_TIMEOUT"
    assert served, "no other request was served meanwhile"
    assert set(served) == {200}


def test_a_silent_body_is_cut_off_at_the_grace_period(service: ServiceProcess) -> None:
    with _connect(service) as sock:
        sock.sendall(b"POST /api/v1/events HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n")
        data, elapsed = _read_until_closed(sock, WAIT_GUARD_S)
    assert _status(data) == 408, data[:200]
    assert b"connection: close" in data.lower()
    assert BODY_GRACE_S * 0.8 < elapsed < BODY_GRACE_S + 2


def test_trickled_headers_are_cut_off(service: ServiceProcess) -> None:
    with _connect(service) as sock:
        sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: t\r\n")
        started = time.monotonic()
        closed = False
        while time.monotonic() - started < WAIT_GUARD_S:
            try:
                sock.sendall(b"X")  # a header that never ends
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            sock.settimeout(0.25)
            try:
                if sock.recv(65536) == b"":
                    closed = True
                    break
            except TimeoutError:
                continue
            except ConnectionResetError:
                closed = True
                break
        elapsed = time.monotonic() - started
    assert closed, "the connection stayed open"
    assert elapsed < HEADER_TIMEOUT_S + 2, f"closed after {elapsed:.1f} s"


def test_a_client_that_does_not_read_its_response_is_disconnected(service: ServiceProcess) -> None:
    source = f"slow-reader-{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=service.base_url, timeout=WAIT_GUARD_S, headers=API_KEY_HEADERS) as client:
        for _ in range(8):
            attributes = {f"text{index}": "x" * 8000 for index in range(7)}  # 56 KB: under every limit
            items = [event(source, attributes=attributes) for _ in range(12)]
            assert client.post("/api/v1/events", json={"items": items}).status_code == 201
    request_id = f"slow-reader-{uuid.uuid4().hex[:8]}"
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting: a tiny window
    sock.connect(("127.0.0.1", service.port))
    with sock:
        sock.sendall(
            f"GET /api/v1/events?source={source}&limit=500 HTTP/1.1\r\nHost: t\r\nX-API-Key: {TEST_API_KEY}\r\n"
            f"X-Request-Id: {request_id}\r\n\r\n".encode()
        )
        time.sleep(SEND_TIMEOUT_S + 1.5)  # never reading meanwhile
        data, _ = _read_until_closed(sock, WAIT_GUARD_S)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"content-length: (\d+)", head.lower()).group(1))  # type: ignore[union-attr]
    assert len(body) < length, "the whole response was delivered: the client was waited for"
    deadline = time.monotonic() + WAIT_GUARD_S
    while not (line := _access_line(service, request_id)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert line is not None, "no access line for the request"
    assert line["status"] == 499, line


def _access_line(service: ServiceProcess, request_id: str) -> dict[str, Any] | None:
    for text in service.log_path.read_text(errors="replace").splitlines():
        if request_id in text:
            entry: dict[str, Any] = json.loads(text)
            if entry.get("request_id") == request_id and entry.get("message") == "request":
                return entry
    return None


# -- framing ---------------------------------------------------------------------------------------------
def test_content_length_with_transfer_encoding_is_refused_and_the_connection_closed(service: ServiceProcess) -> None:
    source = f"smuggle-{uuid.uuid4().hex[:8]}"
    payload = json.dumps(event(source)).encode()
    with _connect(service) as sock:
        sock.sendall(
            b"POST /api/v1/events HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            + f"X-API-Key: {TEST_API_KEY}\r\n".encode()
            + b"Content-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n"
            + f"{len(payload):x}\r\n".encode()
            + payload
            + b"\r\n0\r\n\r\n"
        )
        data, _ = _read_until_closed(sock, WAIT_GUARD_S)
    assert _status(data) == 400, data[:300]
    assert b"connection: close" in data.lower()
    assert json.loads(data.split(b"\r\n\r\n", 1)[1])["code"] == "AMBIGUOUS_FRAMING"
    with httpx.Client(base_url=service.base_url, headers=API_KEY_HEADERS) as client:
        assert client.get("/api/v1/events", params={"source": source}).json()["items"] == []


# -- RB-SEC-NO-500: cursors ----------------------------------------------------------------------------------
def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


CRAFTED_CURSORS = [
    _b64(orjson.dumps(["2026-01-01T00:00:00+00:00", 5])),  # was a 500: UUID(5)
    _b64(orjson.dumps(["0001-01-01T00:00:00+05:00", str(uuid.uuid4())])),  # was a 500: year 0 in UTC
    _b64(orjson.dumps(["2026-01-01T00:00:00+00:00", str(uuid.uuid4())])),  # well-formed, but not issued
    _b64(orjson.dumps(["2026-01-01T00:00:00+00:00", str(uuid.uuid4())])) + "." + _b64(b"0" * 16),
    "%00",
    "..",
    "é",
    "x" * 512,
]


@pytest.mark.parametrize("cursor", CRAFTED_CURSORS)
def test_a_cursor_this_api_did_not_issue_is_400(service: ServiceProcess, cursor: str) -> None:
    with httpx.Client(base_url=service.base_url, headers=API_KEY_HEADERS) as client:
        response = client.get("/api/v1/events", params={"cursor": cursor})
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "INVALID_CURSOR"


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=JSON, signed=st.booleans(), tag=st.binary(min_size=0, max_size=32))
def test_any_json_as_a_cursor_is_400(service: ServiceProcess, value: Any, signed: bool, tag: bytes) -> None:
    cursor = _b64(json.dumps(value).encode()) + (f".{_b64(tag)}" if signed else "")
    with httpx.Client(base_url=service.base_url, headers=API_KEY_HEADERS) as client:
        response = client.get("/api/v1/events", params={"cursor": cursor[:512]})
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "INVALID_CURSOR"


def test_issued_cursors_page_through_every_event_once(service: ServiceProcess) -> None:
    source = f"paging-{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=service.base_url, headers=API_KEY_HEADERS) as client:
        sent = client.post("/api/v1/events", json={"items": [event(source) for _ in range(7)]}).json()["ids"]
        seen: list[str] = []
        cursor = None
        while True:
            params: dict[str, str | int] = {"source": source, "limit": 3, **({"cursor": cursor} if cursor else {})}
            page = client.get("/api/v1/events", params=params).json()
            seen += [item["id"] for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
            tampered = cursor[:-1] + ("A" if cursor[-1] != "A" else "B")
            assert client.get("/api/v1/events", params={**params, "cursor": tampered}).status_code == 400
    assert sorted(seen) == sorted(sent)
