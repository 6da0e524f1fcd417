"""The fault proxy against hostile input, on real sockets: toxics out of range, toxic runtimes that fail, and
malformed HTTP framing on its API. Every refusal is an answer (never a dropped connection) and changes nothing.

Waits are bounded (a socket timeout) only to tell "closed" from "hung"; no speed is asserted.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import socket
from collections.abc import Iterator

import httpx
import pytest

from chaos.proxy import FaultProxy, toxics
from chaos.proxy.http import Request, Response, serve_connection
from tests.proxy.test_fault_proxy import EchoServer, add_toxic, connect, create_proxy, echoes

pytestmark = pytest.mark.integration

HUGE = "1" + "0" * 400  # 10^400: valid JSON, and a valid Python int
HANG_GUARD_S = 5.0  # far above any answer's real time; only a hang reaches it


@pytest.fixture(scope="module")
def fault_proxy() -> Iterator[FaultProxy]:
    with FaultProxy() as proxy:
        yield proxy


@pytest.fixture(scope="module")
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.close()


@pytest.fixture
def api(fault_proxy: FaultProxy) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fault_proxy.api_url, timeout=10) as client:
        yield client
        for name in client.get("/proxies").json():
            client.delete(f"/proxies/{name}")


def ends_promptly(sock: socket.socket) -> bytes:
    """Read until the proxy closes or resets the connection; a hang fails the test (TimeoutError)."""
    sock.settimeout(HANG_GUARD_S)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data


# -- toxic bodies out of range ------------------------------------------------------------------------


KEPT = {"latency": {"latency": 1}, "timeout": {"timeout": 1}, "slicer": {"average_size": 10}, "bandwidth": {"rate": 1}}


@pytest.mark.parametrize(
    ("toxic_type", "fields", "message"),
    [
        pytest.param(
            "latency", f'"attributes": {{"latency": {HUGE}}}', "attribute 'latency' must be", id="latency-10^400"
        ),
        pytest.param(
            "timeout", f'"attributes": {{"timeout": {HUGE}}}', "attribute 'timeout' must be", id="timeout-10^400"
        ),
        pytest.param(
            "slicer", '"attributes": {"delay": -1}', "attribute 'delay' must be between", id="slicer-negative"
        ),
        pytest.param("bandwidth", '"attributes": {"rate": 2147483648}', "attribute 'rate' must be", id="rate-2^31"),
        pytest.param("latency", '"toxicity": NaN', "bad request body: NaN is not valid JSON", id="toxicity-NaN"),
        pytest.param("latency", '"toxicity": Infinity', "bad request body: Infinity is not valid", id="toxicity-inf"),
        pytest.param("latency", '"toxicity": -Infinity', "bad request body: -Infinity is not", id="toxicity--inf"),
        pytest.param("latency", '"toxicity": 1e400', "toxicity must be a finite number", id="toxicity-1e400"),
        pytest.param("latency", f'"toxicity": {HUGE}', "toxicity must be a finite number", id="toxicity-10^400"),
        pytest.param("latency", '"toxicity": -0.5', "toxicity must be a finite number", id="toxicity-negative"),
        pytest.param("latency", '"toxicity": 1.5', "toxicity must be a finite number", id="toxicity-above-1"),
        pytest.param("latency", '"x": ' + "[" * 5_000, "bad request body", id="nesting-beyond-recursion-limit"),
    ],
)
def test_out_of_range_toxics_are_refused_and_register_nothing(
    api: httpx.Client, echo: EchoServer, toxic_type: str, fields: str, message: str
) -> None:
    port = create_proxy(api, "echo", echo.address)
    created = api.post("/proxies/echo/toxics", content=f'{{"type": "{toxic_type}", {fields}}}')
    assert created.status_code == 400, created.text
    assert created.json() == {"error": created.json()["error"], "status": 400}
    assert created.json()["error"].startswith("bad request body")
    assert message in created.json()["error"]
    assert api.get("/proxies/echo/toxics").json() == []

    kept = add_toxic(api, "echo", type=toxic_type, name="kept", attributes=KEPT[toxic_type])
    updated = api.post("/proxies/echo/toxics/kept", content=f"{{{fields}}}")
    assert updated.status_code == 400, updated.text
    assert message in updated.json()["error"]
    assert api.get("/proxies/echo/toxics").json() == [kept]  # unchanged
    api.delete("/proxies/echo/toxics/kept")
    with connect(port) as sock:
        echoes(sock)


# -- toxic runtimes that fail ---------------------------------------------------------------------------

WHERE = ["construct", "start", "apply", "at_eof", "timer"]


def broken_runtime(where: str) -> type[toxics.ToxicRuntime]:
    """A latency runtime (latency 0: data passes) that raises at one point of its life on a link."""

    class Broken(toxics.LatencyRuntime):
        def __post_init__(self) -> None:
            super().__post_init__()
            if where == "construct":
                raise RuntimeError("broken toxic: construct")

        def start(self) -> None:
            if where == "start":
                raise RuntimeError("broken toxic: start")
            if where == "timer":
                self.call_later(0.01, self._fire)

        def _fire(self) -> None:
            raise RuntimeError("broken toxic: timer")

        async def apply(self, chunk: toxics.Chunk, emit: toxics.Emit) -> None:
            if where == "apply":
                raise RuntimeError("broken toxic: apply")
            await super().apply(chunk, emit)

        async def at_eof(self) -> None:
            if where == "at_eof":
                raise RuntimeError("broken toxic: at_eof")

    return Broken


def failures(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "chaos.proxy" and r.levelno >= logging.ERROR]


@pytest.mark.parametrize("live", [False, True], ids=["new-connection", "live-connection"])
@pytest.mark.parametrize("where", WHERE)
def test_a_failing_toxic_resets_the_connection_instead_of_hanging_it(
    api: httpx.Client,
    echo: EchoServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    where: str,
    live: bool,
) -> None:
    caplog.set_level(logging.ERROR, logger="chaos.proxy")
    monkeypatch.setitem(toxics.RUNTIMES, "latency", broken_runtime(where))
    port = create_proxy(api, "echo", echo.address)
    if live:
        sock = connect(port)
        echoes(sock)  # connected and carrying data before the toxic arrives
        add_toxic(api, "echo", type="latency", name="broken")  # the API still answers
    else:
        add_toxic(api, "echo", type="latency", name="broken")
        try:
            sock = connect(port)
        except ConnectionResetError:
            sock = None  # reset before connect() even returned: ended, not hung
    if sock is not None:
        with sock:
            try:
                sock.sendall(b"hello")
                if where == "at_eof":
                    sock.shutdown(socket.SHUT_WR)  # the echo server answers and closes: the link's input ends
            except (BrokenPipeError, ConnectionResetError):
                pass  # reset already
            ends_promptly(sock)
    assert len(failures(caplog)) == 1, [record.getMessage() for record in failures(caplog)]
    assert "broken" in failures(caplog)[0].getMessage()

    assert api.delete("/proxies/echo/toxics/broken").status_code == 204
    with connect(port) as again:
        echoes(again)
    assert len(failures(caplog)) == 1  # logged once, for the one connection it broke


def test_an_update_whose_runtime_fails_resets_live_connections(
    api: httpx.Client, echo: EchoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = create_proxy(api, "echo", echo.address)
    add_toxic(api, "echo", type="latency", name="fine")
    with connect(port) as sock:
        echoes(sock)
        monkeypatch.setitem(toxics.RUNTIMES, "latency", broken_runtime("start"))
        updated = api.post("/proxies/echo/toxics/fine", json={"attributes": {"jitter": 1}})
        assert updated.status_code == 200, updated.text
        ends_promptly(sock)
    monkeypatch.undo()
    with connect(port) as again:
        echoes(again)


# -- malformed HTTP on the API ----------------------------------------------------------------------------

POST = b"POST /proxies HTTP/1.1\r\nHost: x\r\n"
CHUNKED = POST + b"Transfer-Encoding: chunked\r\n\r\n"


def raw_exchange(fault_proxy: FaultProxy, request: bytes, *, half_close: bool = False) -> bytes:
    port = int(fault_proxy.api_url.rsplit(":", 1)[1])
    with connect(port, timeout=HANG_GUARD_S) as sock:
        try:
            sock.sendall(request)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except ConnectionError:
            pass  # the server may answer and close before it has read everything
        return ends_promptly(sock)


def parse_answer(raw: bytes) -> tuple[int, dict[str, str], object]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split(" ")[1]), headers, json.loads(body)


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        pytest.param(CHUNKED + b"zz\r\n", 400, id="chunk-size-not-hex"),
        pytest.param(CHUNKED + b"-5\r\nhello\r\n0\r\n\r\n", 400, id="chunk-size-negative"),
        pytest.param(CHUNKED + b"0x5\r\nhello\r\n0\r\n\r\n", 400, id="chunk-size-0x"),
        pytest.param(CHUNKED + b"1_0\r\n" + b"x" * 16 + b"\r\n0\r\n\r\n", 400, id="chunk-size-underscore"),
        pytest.param(CHUNKED + "٥".encode() + b"\r\nhello\r\n0\r\n\r\n", 400, id="chunk-size-non-ascii"),
        pytest.param(CHUNKED + b"\xb2\r\nhello\r\n0\r\n\r\n", 400, id="chunk-size-latin-1-digit"),
        pytest.param(CHUNKED + b"0" * 5000 + b"5\r\nhello\r\n0\r\n\r\n", 400, id="chunk-size-line-long"),
        pytest.param(CHUNKED + b"5" * 200_000 + b"\r\n", 400, id="chunk-size-line-over-stream-limit"),
        pytest.param(CHUNKED + b"5;" + b"e" * 200_000 + b"\r\n", 400, id="chunk-extension-over-stream-limit"),
        pytest.param(CHUNKED + b"5\r\nhelloXY0\r\n\r\n", 400, id="chunk-data-not-ended-by-crlf"),
        pytest.param(CHUNKED + b"0\r\n" + b"X-T: t\r\n" * 20_000 + b"\r\n", 431, id="trailers-too-large"),
        pytest.param(POST + "Content-Length: ²\r\n\r\n".encode("latin-1"), 400, id="content-length-superscript"),
        pytest.param(POST + "Content-Length: ١٢\r\n\r\n".encode(), 400, id="content-length-arabic-digits"),
        pytest.param(POST + b"Content-Length: " + b"9" * 5000 + b"\r\n\r\n", 400, id="content-length-5000-digits"),
        pytest.param(POST + b"Content-Length: +5\r\n\r\nhello", 400, id="content-length-plus"),
        pytest.param(POST + b"Content-Length: -1\r\n\r\n", 400, id="content-length-negative"),
        pytest.param(POST + b"Content-Length: 5, 5\r\n\r\nhello", 400, id="content-length-list"),
        pytest.param(POST + b"Content-Length: 5\xa0\r\n\r\nhello", 400, id="content-length-nbsp"),
        pytest.param(POST + b"X-Long: " + b"a" * 200_000 + b"\r\n\r\n", 431, id="header-over-stream-limit"),
    ],
)
def test_malformed_http_gets_a_json_error_and_a_close(
    fault_proxy: FaultProxy, api: httpx.Client, request_bytes: bytes, status: int
) -> None:
    raw = raw_exchange(fault_proxy, request_bytes)
    assert raw, "the connection was dropped without an answer"
    got, headers, body = parse_answer(raw)
    assert (got, body) == (status, {"error": body["error"], "status": status})  # type: ignore[index]
    assert headers["connection"] == "close"
    assert headers["content-type"] == "application/json"
    assert api.get("/proxies").json() == {}  # nothing was created
    assert api.get("/version").status_code == 200  # and the API still serves


def test_a_body_cut_short_gets_an_answer(fault_proxy: FaultProxy) -> None:
    raw = raw_exchange(fault_proxy, POST + b"Content-Length: 10\r\n\r\nabc", half_close=True)
    assert raw, "the connection was dropped without an answer"
    assert parse_answer(raw)[::2] == (400, {"error": "incomplete request body", "status": 400})


async def test_a_handler_bug_answers_500_not_a_dropped_connection() -> None:
    async def broken(request: Request) -> Response:
        raise RuntimeError("a bug in a route")

    server = await asyncio.start_server(functools.partial(serve_connection, handler=broken), "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n")
        raw = await asyncio.wait_for(reader.read(), HANG_GUARD_S)
        writer.close()
        await writer.wait_closed()
    finally:
        server.close()
        await server.wait_closed()
    assert raw, "the connection was dropped without an answer"
    assert parse_answer(raw)[::2] == (500, {"error": "internal server error", "status": 500})
