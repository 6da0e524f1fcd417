"""The ASGI middleware around the Quart app (the edge): the first and last code every HTTP request meets.

It runs before routing and authentication, outside Quart, so that what it guarantees holds for every
response, including ones Quart or a guard produces before any handler runs, and for every client,
authenticated or not (service/bounds.py lists the bounds):

- request id chosen (kept or minted) and echoed as `X-Request-Id`; running release as `X-App-Version`;
- the credential headers (X-API-Key, Authorization, X-Forwarded-For) picked up in the same pass over the
  headers, for authentication (service/route_policy.py), which then need not search them again;
- W3C trace context (service/trace_context.py): the caller's trace joined when its `traceparent` is valid,
  else a new one started; every response carries `traceparent` naming this server's span (and the caller's
  valid `tracestate`), and every log line of the request its `trace_id` and `span_id`;
- framing: a request with both Content-Length and Transfer-Encoding is refused with 400 `AMBIGUOUS_FRAMING`
  and the connection closed (RFC 9112 §6.3: such a message may be a smuggling attempt; h11 would trust
  Transfer-Encoding, and a Content-Length of 0 would otherwise let the body past the size guard);
- the body limit (RB-GUARD-BODY-413): a declared Content-Length over the limit is refused before a byte of
  the body is read; a streamed (chunked) body is read up to the limit and refused the moment it passes it, so
  the server never buffers more than `MAX_REQUEST_BODY_BYTES`. Quart only checks its own limit once a handler
  reads the body, which is too late to promise "nothing buffered, nothing written";
- the body pace (RB-SEC-SLOW-CLIENT): the body must arrive within `REQUEST_BODY_TIMEOUT_S` and never fall more
  than `REQUEST_BODY_GRACE_S` behind `REQUEST_BODY_MIN_RATE_BPS`, else 408 and the connection closed, so a
  trickled upload cannot hold a worker's connection slot and memory (hypercorn has no body deadline, and
  Quart's applies only when a handler reads the body);
- response delivery: each part of a response must be taken by the client within `RESPONSE_SEND_TIMEOUT_S`;
- in-flight gauge, request counter and latency histogram (labels from closed sets), one JSON access-log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hypercorn.typing import ASGIFramework, ASGIReceiveCallable, ASGISendCallable, HTTPScope, Scope

from service import lifecycle, metrics
from service.bounds import clipped, metric_method
from service.errors import PROBLEM_CONTENT_TYPE, problem_body
from service.request_state import Credentials, RequestState, choose_request_id, current_request
from service.trace_context import continue_or_start

access_log = logging.getLogger("access")

LINGER_MAX_BYTES = 16 * 1024 * 1024
LINGER_MAX_S = 2.0
CLIENT_CLOSED_REQUEST = 499  # nginx's convention for "the client went away before we answered"
_BODYLESS_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "DELETE", "TRACE"})


@dataclass(frozen=True, slots=True)
class EdgeLimits:
    """What the edge enforces; see service/bounds.py and the settings of the same names."""

    max_body_bytes: int
    body_timeout_s: float
    body_min_rate_bps: int
    body_grace_s: float
    send_timeout_s: float

    def body_deadline(self, started: float, received: int) -> float:
        """When the body must have progressed past `received` bytes (loop time)."""
        return started + min(self.body_timeout_s, self.body_grace_s + received / self.body_min_rate_bps)


class _ClientGone(Exception):
    pass


class _Refusal(Exception):
    """The request is answered by the edge itself, before the app sees it. With `drain`, what is left of the
    upload is read (bounded) so that the client can read the answer."""

    def __init__(self, status: int, code: str, detail: str, extra: dict[str, Any], *, drain: bool) -> None:
        super().__init__(f"{status} {code}")
        self.status = status
        self.code = code
        self.detail = detail
        self.extra = extra
        self.drain = drain


@dataclass(slots=True)
class _EdgeHeaders:
    """The request headers the edge acts on, found in one pass over the headers (ASGI names are lowercase)."""

    request_id: str | None = None
    content_length: str | None = None
    api_key: str | None = None
    authorization: str | None = None
    forwarded_for: str | None = None
    chunked: bool = False
    traceparents: list[bytes] = field(default_factory=list)
    tracestates: list[bytes] = field(default_factory=list)


def _edge_headers(scope: HTTPScope) -> _EdgeHeaders:
    found = _EdgeHeaders()
    for key, value in scope["headers"]:
        if key == b"x-request-id":
            if found.request_id is None:  # the first one counts, as for any single-valued header
                found.request_id = value.decode("latin-1")
        elif key == b"content-length":
            if found.content_length is None:
                found.content_length = value.decode("latin-1")
        elif key == b"transfer-encoding":
            found.chunked = True
        elif key == b"x-api-key":
            if found.api_key is None:
                found.api_key = value.decode("latin-1")
        elif key == b"authorization":
            if found.authorization is None:
                found.authorization = value.decode("latin-1")
        elif key == b"x-forwarded-for":
            if found.forwarded_for is None:
                found.forwarded_for = value.decode("latin-1")
        elif key == b"traceparent":
            found.traceparents.append(value)
        elif key == b"tracestate":
            found.tracestates.append(value)
    return found


def _may_have_body(scope: HTTPScope, content_length: int | None, chunked: bool) -> bool:
    if content_length is not None:
        return content_length > 0
    if chunked:
        return True
    # HTTP/2 frames a body without either header; HTTP/1.x cannot.
    return scope.get("http_version") == "2" and scope["method"] not in _BODYLESS_METHODS


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
        limits: EdgeLimits,
        route_of: Callable[[str, str], str],
    ) -> None:
        self._app = app
        self._version = version.encode()
        self._limits = limits
        self._route_of = route_of

    async def __call__(self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return

        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        headers = _edge_headers(scope)
        trace = continue_or_start(headers.traceparents, headers.tracestates)
        state = RequestState(
            request_id=choose_request_id(headers.request_id),
            trace=trace,
            method=scope["method"],
            path=scope["path"],
            credentials=Credentials(headers.api_key, headers.authorization, headers.forwarded_for),
        )
        token = current_request.set(state)
        metrics.IN_FLIGHT.inc()
        status = 500
        edge_headers = [
            (b"x-request-id", state.request_id.encode()),
            (b"x-app-version", self._version),
            (b"traceparent", trace.traceparent.encode()),
        ]
        if trace.tracestate is not None:
            edge_headers.append((b"tracestate", trace.tracestate.encode()))
        send_timeout_s = self._limits.send_timeout_s

        async def send_with_edge_headers(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), *edge_headers]
                if lifecycle.is_draining():
                    # Keep-alive clients reconnect, and the load balancer sends them elsewhere.
                    message["headers"].append((b"connection", b"close"))
            try:
                async with asyncio.timeout_at(loop.time() + send_timeout_s):
                    await send(message)
            except TimeoutError:
                raise _ClientGone from None  # it does not read what we send: let hypercorn drop it

        try:
            try:
                app_receive = await self._guard_body(scope, headers, receive, loop.time())
            except _Refusal as refusal:
                status = refusal.status
                state.route = self._route_of(scope["path"], scope["method"])
                await self._refuse(refusal, send_with_edge_headers, receive)
            else:
                await self._app(scope, app_receive, send_with_edge_headers)
        except _ClientGone:
            status = CLIENT_CLOSED_REQUEST
        finally:
            seconds = time.perf_counter() - started
            metrics.IN_FLIGHT.dec()
            metrics.record_request(state.route, metric_method(state.method), status, seconds)
            access_log.info(
                "request",
                extra={
                    "method": clipped(state.method, 32),
                    "route": state.route,
                    "path": clipped(state.path),
                    "status": status,
                    "duration_ms": round(seconds * 1000, 3),
                    "principal": state.principal,
                    **state.extra_log_fields,
                },
            )
            current_request.reset(token)

    async def _guard_body(
        self, scope: HTTPScope, headers: _EdgeHeaders, receive: ASGIReceiveCallable, started: float
    ) -> ASGIReceiveCallable:
        """A receive callable for the app that replays the whole, checked body; `_Refusal` otherwise."""
        limits = self._limits
        declared = headers.content_length
        chunked = headers.chunked
        if declared is not None and chunked:
            raise _Refusal(
                400,
                "AMBIGUOUS_FRAMING",
                "The request has both Content-Length and Transfer-Encoding; send exactly one of them.",
                {},
                drain=True,
            )
        try:
            content_length = int(declared) if declared is not None else None
        except ValueError:
            content_length = None  # the server rejects a malformed length before we get here
        if content_length is not None and content_length > limits.max_body_bytes:
            raise self._too_large()
        if not _may_have_body(scope, content_length, chunked):
            return receive
        body = await self._read_body(receive, started)

        replayed = False

        async def replay() -> Any:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return replay

    async def _read_body(self, receive: ASGIReceiveCallable, started: float) -> bytes:
        limits = self._limits
        chunks: list[bytes] = []
        size = 0
        while True:
            try:
                async with asyncio.timeout_at(limits.body_deadline(started, size)):
                    message = await receive()
            except TimeoutError:
                raise self._too_slow(size) from None
            if message["type"] == "http.disconnect":
                raise _ClientGone
            chunk: bytes = message.get("body", b"")  # type: ignore[assignment]
            size += len(chunk)
            if size > limits.max_body_bytes:
                raise self._too_large()
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _too_large(self) -> _Refusal:
        limit = self._limits.max_body_bytes
        return _Refusal(
            413,
            "PAYLOAD_TOO_LARGE",
            f"The request body exceeds the limit of {limit} bytes (MAX_REQUEST_BODY_BYTES).",
            {"limit_bytes": limit},
            drain=True,
        )

    def _too_slow(self, received: int) -> _Refusal:
        limits = self._limits
        return _Refusal(
            408,
            "REQUEST_TIMEOUT",
            f"The request body arrived too slowly ({received} bytes so far): it must arrive within "
            f"{limits.body_timeout_s:g} s and never fall more than {limits.body_grace_s:g} s behind "
            f"{limits.body_min_rate_bps} bytes/s.",
            {"received_bytes": received},
            drain=False,  # a slow client is not waited for twice
        )

    async def _refuse(self, refusal: _Refusal, send: ASGISendCallable, receive: ASGIReceiveCallable) -> None:
        """The whole answer goes out at once, but, when `drain` is set, the response is completed only after
        the rest of the upload has been discarded (bounded): hypercorn closes a connection as soon as a
        response completes while request data is still unread, the kernel then resets it, and a client still
        uploading may never read its answer (seen in the overload drill; docs/BENCHMARKS.md)."""
        body = problem_body(refusal.status, refusal.code, refusal.detail, refusal.extra)
        await send(
            {
                "type": "http.response.start",
                "status": refusal.status,
                "headers": [
                    (b"content-type", PROBLEM_CONTENT_TYPE.encode()),
                    (b"content-length", str(len(body)).encode()),
                    # The upload was cut short (or is suspect): the connection must not be reused.
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body, "more_body": refusal.drain})
        if refusal.drain:
            await _discard_rest(receive)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
