"""The ASGI edge: the first and last code every HTTP request meets.

It runs outside Quart so that what it guarantees holds for every response, including ones Quart or a guard
produces before any handler runs:

- request id chosen (kept or minted) and echoed as `X-Request-Id`; running release as `X-App-Version`;
- the body limit (RB-GUARD-BODY-413): a declared Content-Length over the limit is refused before a byte of
  the body is read; a streamed (chunked) body is read up to the limit and refused the moment it passes it, so
  the server never buffers more than `MAX_REQUEST_BODY_BYTES`. Quart only checks its own limit once a handler
  reads the body, which is too late to promise "nothing buffered, nothing written";
- in-flight gauge, request counter and latency histogram, one JSON access-log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from hypercorn.typing import ASGIFramework, ASGIReceiveCallable, ASGISendCallable, HTTPScope, Scope

from service import lifecycle, metrics
from service.context import RequestState, choose_request_id, current_request
from service.errors import PROBLEM_CONTENT_TYPE, problem_body

access_log = logging.getLogger("access")

LINGER_MAX_BYTES = 16 * 1024 * 1024
LINGER_MAX_S = 2.0
CLIENT_CLOSED_REQUEST = 499  # nginx's convention for "the client went away before we answered"
_BODYLESS_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "DELETE", "TRACE"})


class _ClientGone(Exception):
    pass


class _TooLarge(Exception):
    pass


def _header(scope: HTTPScope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


def _may_have_body(scope: HTTPScope, content_length: int | None) -> bool:
    if content_length is not None:
        return content_length > 0
    if _header(scope, b"transfer-encoding") is not None:
        return True
    # HTTP/2 frames a body without either header; HTTP/1.x cannot.
    return scope.get("http_version") == "2" and scope["method"] not in _BODYLESS_METHODS


async def _read_body(receive: ASGIReceiveCallable, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone
        chunk: bytes = message.get("body", b"")  # type: ignore[assignment]
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _discard_rest(receive: ASGIReceiveCallable) -> None:
    """Read and drop what the client is still sending (bounded in bytes and time); nothing is kept."""
    discarded = 0
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(LINGER_MAX_S):
            while discarded < LINGER_MAX_BYTES:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                discarded += len(message.get("body", b""))  # type: ignore[arg-type]
                if not message.get("more_body", False):
                    return


class EdgeMiddleware:
    """Wraps the Quart ASGI app; see the module docstring for what it guarantees."""

    def __init__(
        self,
        app: ASGIFramework,
        *,
        version: str,
        max_body_bytes: int,
        route_of: Callable[[str, str], str],
    ) -> None:
        self._app = app
        self._version = version.encode()
        self._max_body_bytes = max_body_bytes
        self._route_of = route_of

    async def __call__(self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return

        started = time.perf_counter()
        state = RequestState(
            request_id=choose_request_id(_header(scope, b"x-request-id")),
            method=scope["method"],
            path=scope["path"],
        )
        token = current_request.set(state)
        metrics.IN_FLIGHT.inc()
        status = 500
        edge_headers = [(b"x-request-id", state.request_id.encode()), (b"x-app-version", self._version)]

        async def send_with_edge_headers(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), *edge_headers]
                if lifecycle.is_draining():
                    # Keep-alive clients reconnect, and the load balancer sends them elsewhere.
                    message["headers"].append((b"connection", b"close"))
            await send(message)

        try:
            app_receive = await self._guard_body(scope, receive)
            if app_receive is None:
                status = 413
                state.route = self._route_of(scope["path"], scope["method"])
                await self._send_payload_too_large(send_with_edge_headers, receive)
            else:
                await self._app(scope, app_receive, send_with_edge_headers)
        except _ClientGone:
            status = CLIENT_CLOSED_REQUEST
        finally:
            seconds = time.perf_counter() - started
            metrics.IN_FLIGHT.dec()
            metrics.record_request(state.route, state.method, status, seconds)
            access_log.info(
                "request",
                extra={
                    "method": state.method,
                    "route": state.route,
                    "path": state.path,
                    "status": status,
                    "duration_ms": round(seconds * 1000, 3),
                    "principal": state.principal,
                    **state.extra_log_fields,
                },
            )
            current_request.reset(token)

    async def _guard_body(self, scope: HTTPScope, receive: ASGIReceiveCallable) -> ASGIReceiveCallable | None:
        """A receive callable for the app, or None when the body is over the limit."""
        limit = self._max_body_bytes
        declared = _header(scope, b"content-length")
        try:
            content_length = int(declared) if declared is not None else None
        except ValueError:
            content_length = None  # the server rejects a malformed length before we get here
        if content_length is not None and content_length > limit:
            return None
        if not _may_have_body(scope, content_length):
            return receive
        try:
            body = await _read_body(receive, limit)
        except _TooLarge:
            return None

        replayed = False

        async def replay() -> Any:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return replay

    async def _send_payload_too_large(self, send: ASGISendCallable, receive: ASGIReceiveCallable) -> None:
        """The whole 413 goes out at once, but the response is completed only after the rest of the upload
        has been discarded (bounded): hypercorn closes a connection as soon as a response completes while
        request data is still unread, the kernel then resets it, and a client still uploading may never read
        its 413 (seen in the overload drill: a quarter of oversized uploads ended with no answer)."""
        limit = self._max_body_bytes
        body = problem_body(
            413,
            "PAYLOAD_TOO_LARGE",
            f"The request body exceeds the limit of {limit} bytes (MAX_REQUEST_BODY_BYTES).",
            {"limit_bytes": limit},
        )
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", PROBLEM_CONTENT_TYPE.encode()),
                    (b"content-length", str(len(body)).encode()),
                    # Drained before the response completes (below), so closing afterwards loses nothing;
                    # a client must not reuse a connection whose upload was cut short.
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body, "more_body": True})
        await _discard_rest(receive)
        await send({"type": "http.response.body", "body": b"", "more_body": False})
