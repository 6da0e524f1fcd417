"""A small HTTP/1.1 server for the proxy's JSON API (keep-alive, Content-Length or chunked bodies).

The API is a handful of JSON calls from test code and drills; a dependency-free server keeps the fault
proxy importable anywhere the project is, with bounded header and body sizes and idle timeouts.

Framing is parsed strictly, in ASCII: Content-Length is 1-19 digits `[0-9]`, a chunk size 1-16 hex digits
(no sign, `0x`, `_`, or the Unicode digits Python's int() and str.isdigit() accept), each chunk ends in CRLF,
and lines are bounded. Every request that cannot be parsed gets an answer in Toxiproxy's error shape,
`{"error": ..., "status": N}` (400, 408, 413 or 431), and the connection is closed: never a silent drop.
A handler that raises (a bug) answers 500 the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus

log = logging.getLogger("chaos.proxy.api")

MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 1024 * 1024
MAX_CHUNK_LINE_BYTES = 1024  # a chunk-size line, extensions included
IDLE_TIMEOUT_S = 60.0
READ_TIMEOUT_S = 15.0
# After a refusal, input still arriving is read and dropped for up to this long (and this much) before the
# close: closing a socket with unread input sends an RST, which can destroy the answer before it is read.
LINGER_S = 2.0
MAX_LINGER_BYTES = 4 * 1024 * 1024

_CONTENT_LENGTH = re.compile(r"[0-9]{1,19}")
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,16})[ \t]*(?:;[^\r\n]*)?\r\n")
_OWS = " \t"  # HTTP's optional whitespace; str.strip() would also take NBSP and other Unicode spaces


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


async def _read_line(reader: asyncio.StreamReader, limit: int, status: int, what: str) -> bytes:
    """One CRLF-ended line of at most `limit` bytes; longer is `status` (the stream's own limit too)."""
    try:
        line = await reader.readuntil(b"\r\n")
    except (asyncio.LimitOverrunError, ValueError):
        raise BadRequest(status, f"{what} too long") from None
    if len(line) > limit:
        raise BadRequest(status, f"{what} too long")
    return line


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = bytearray()
        while True:
            size_line = await _read_line(reader, MAX_CHUNK_LINE_BYTES, 400, "chunk size line")
            match = _CHUNK_SIZE.fullmatch(size_line)
            if match is None:
                raise BadRequest(400, "malformed chunk size")
            size = int(match.group(1), 16)
            if size == 0:
                trailers = 0
                while (line := await _read_line(reader, MAX_HEADER_BYTES, 431, "trailer line")) != b"\r\n":
                    trailers += len(line)  # ignored, but bounded like the header
                    if trailers > MAX_HEADER_BYTES:
                        raise BadRequest(431, "request trailer fields too large")
                return bytes(body)
            if len(body) + size > MAX_BODY_BYTES:
                raise BadRequest(413, "request body too large")
            body += await reader.readexactly(size)
            if await reader.readexactly(2) != b"\r\n":
                raise BadRequest(400, "malformed chunk: data not followed by CRLF")
    length_text = headers.get("content-length", "0")
    if _CONTENT_LENGTH.fullmatch(length_text) is None:
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
    except (asyncio.LimitOverrunError, ValueError):
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
        headers[name.strip(_OWS).lower()] = value.strip(_OWS)
    if headers.get("expect", "").lower() == "100-continue":
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # curl waits a second for this before larger bodies
    try:
        body = await asyncio.wait_for(_read_body(reader, headers), READ_TIMEOUT_S)
    except asyncio.IncompleteReadError:
        raise BadRequest(400, "incomplete request body") from None
    except TimeoutError:
        raise BadRequest(408, "request body not received in time") from None
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


async def _refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, status: int, message: str) -> None:
    """Answer with Toxiproxy's error shape and half-close; the caller then closes the connection."""
    body = json.dumps({"error": message, "status": status}).encode()
    writer.write(encode(Response(status, body), keep_alive=False))
    await writer.drain()
    if writer.can_write_eof():
        writer.write_eof()
    discarded = 0
    with contextlib.suppress(Exception):
        async with asyncio.timeout(LINGER_S):
            while discarded < MAX_LINGER_BYTES and (data := await reader.read(65536)):
                discarded += len(data)


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
                await _refuse(reader, writer, error.status, str(error))
                return
            except (TimeoutError, ConnectionError):
                return  # idle between requests, or the client is gone: nobody to answer
            except Exception as error:  # a request the parser did not foresee: still an answer, not a drop
                log.warning("fault proxy API: unparseable request: %r", error)
                await _refuse(reader, writer, 400, "malformed request")
                return
            if request is None:
                return
            try:
                response = await handler(request)
                encoded = encode(response, keep_alive=_keep_alive(request))
            except Exception:
                log.exception("fault proxy API: %s %s failed", request.method, request.path)
                await _refuse(reader, writer, 500, "internal server error")
                return
            writer.write(encoded)
            await writer.drain()
            if not _keep_alive(request):
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
