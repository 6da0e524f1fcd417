"""A small HTTP/1.1 server for the proxy's JSON API (keep-alive, Content-Length or chunked bodies).

The API is a handful of JSON calls from test code and drills; a dependency-free server keeps the fault
proxy importable anywhere the project is, with bounded header and body sizes and idle timeouts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus

log = logging.getLogger("chaos.proxy.api")

MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 1024 * 1024
IDLE_TIMEOUT_S = 60.0
READ_TIMEOUT_S = 15.0


@dataclass
class Request:
    method: str
    path: str  # without the query string, not yet percent-decoded
    headers: dict[str, str]  # lower-case names
    body: bytes


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Request], Awaitable[Response]]


class BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = bytearray()
        while True:
            size_line = await reader.readuntil(b"\r\n")
            try:
                size = int(size_line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise BadRequest(400, "malformed chunk size") from None
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers, ignored
                    pass
                return bytes(body)
            if len(body) + size > MAX_BODY_BYTES:
                raise BadRequest(413, "request body too large")
            body += await reader.readexactly(size)
            await reader.readexactly(2)
    length_text = headers.get("content-length", "0")
    if not length_text.isdigit():
        raise BadRequest(400, "bad Content-Length")
    length = int(length_text)
    if length > MAX_BODY_BYTES:
        raise BadRequest(413, "request body too large")
    return await reader.readexactly(length) if length else b""


async def read_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Request | None:
    """The next request on the connection, or None when the client closed it between requests."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as error:
        if not error.partial.strip():
            return None
        raise BadRequest(400, "incomplete request") from None
    except asyncio.LimitOverrunError:
        raise BadRequest(431, "request header fields too large") from None
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest(400, "malformed request line")
    method, target, version = parts
    headers: dict[str, str] = {"_version": version}
    for line in lines[1:]:
        if not line:
            continue
        name, separator, value = line.partition(":")
        if not separator:
            raise BadRequest(400, "malformed header line")
        headers[name.strip().lower()] = value.strip()
    if headers.get("expect", "").lower() == "100-continue":
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # curl waits a second for this before larger bodies
    body = await asyncio.wait_for(_read_body(reader, headers), READ_TIMEOUT_S)
    return Request(method=method.upper(), path=target.split("?", 1)[0], headers=headers, body=body)


def _keep_alive(request: Request) -> bool:
    connection = request.headers.get("connection", "").lower()
    if request.headers.get("_version") == "HTTP/1.0":
        return connection == "keep-alive"
    return connection != "close"


def encode(response: Response, *, keep_alive: bool) -> bytes:
    phrase = HTTPStatus(response.status).phrase
    lines = [f"HTTP/1.1 {response.status} {phrase}"]
    if response.status != 204:
        lines.append(f"Content-Type: {response.content_type}")
        lines.append(f"Content-Length: {len(response.body)}")
    lines.extend(f"{name}: {value}" for name, value in response.headers.items())
    if not keep_alive:
        lines.append("Connection: close")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head if response.status == 204 else head + response.body


async def serve_connection(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    handler: Handler,
    open_writers: set[asyncio.StreamWriter] | None = None,
) -> None:
    """Serve requests on one connection until the client or `open_writers`' owner closes it."""
    if open_writers is not None:
        open_writers.add(writer)
    try:
        while True:
            try:
                request = await asyncio.wait_for(read_request(reader, writer), IDLE_TIMEOUT_S)
            except BadRequest as error:
                body = json.dumps({"error": str(error), "status": error.status}).encode()
                writer.write(encode(Response(error.status, body), keep_alive=False))
                await writer.drain()
                return
            except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
                return
            if request is None:
                return
            response = await handler(request)
            keep_alive = _keep_alive(request)
            writer.write(encode(response, keep_alive=keep_alive))
            await writer.drain()
            if not keep_alive:
                return
    except (ConnectionError, asyncio.CancelledError):
        # Cancelled at shutdown: end quietly, since Python 3.11's start_server callback would report a
        # cancelled connection task as an error.
        pass
    except Exception:
        log.exception("fault proxy API: unexpected error")
    finally:
        if open_writers is not None:
            open_writers.discard(writer)
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
