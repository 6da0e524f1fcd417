"""Deliberately non-conforming versions of the service, to prove each conformance check can fail.

`mutate(app, name)` wraps the real ASGI app with one defect. The defect is chosen by name from the
environment (`CONFORMANCE_MUTATION`) or, so that one running service can change defects between conformance
runs, from the file named by `CONFORMANCE_MUTATION_FILE`, read on every request.

A defect with memory (`never-recovers`) keeps it in the file named by `CONFORMANCE_MUTATION_STATE`, because
the service runs several hypercorn workers: a flag in one worker's memory leaves the others healthy, and the
check would pass against a defect it is meant to catch.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ASGIApp = Callable[[dict[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]]
Receive = Callable[[], Awaitable[Any]]
Send = Callable[[Any], Awaitable[None]]


def _headers(message: dict[str, Any]) -> list[tuple[bytes, bytes]]:
    return list(message.get("headers", []))


def _without(headers: list[tuple[bytes, bytes]], name: bytes) -> list[tuple[bytes, bytes]]:
    return [(key, value) for key, value in headers if key.lower() != name]


async def _buffered(app: ASGIApp, scope: dict[str, Any], receive: Receive) -> tuple[dict[str, Any], bytes]:
    """Run the app and collect its whole response."""
    start: dict[str, Any] = {}
    body = bytearray()

    async def collect(message: Any) -> None:
        if message["type"] == "http.response.start":
            start.update(message)
        elif message["type"] == "http.response.body":
            body.extend(message.get("body", b""))

    await app(scope, receive, collect)
    return start, bytes(body)


async def _send_whole(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    headers = [*_without(headers, b"content-length"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _read_all(receive: Receive) -> bytes:
    body = bytearray()
    while True:
        message = await receive()
        body.extend(message.get("body", b""))
        if not message.get("more_body"):
            return bytes(body)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Any:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive


class Mutant:
    """The real service with the defect named `name` (see MUTATIONS)."""

    def __init__(self, app: ASGIApp, name: str | None = None) -> None:
        self.app = app
        self.fixed_name = name
        self._stuck_in_this_process = False
        state = os.environ.get("CONFORMANCE_MUTATION_STATE")
        self._stuck_marker = Path(state) if state else None

    @property
    def stuck_degraded(self) -> bool:
        if self._stuck_marker is not None:
            return self._stuck_marker.exists()
        return self._stuck_in_this_process

    def become_stuck(self) -> None:
        self._stuck_in_this_process = True
        if self._stuck_marker is not None:
            self._stuck_marker.touch()

    def current(self) -> str:
        if self.fixed_name:
            return self.fixed_name
        path = os.environ.get("CONFORMANCE_MUTATION_FILE")
        if path and Path(path).exists():
            return Path(path).read_text().strip()
        return os.environ.get("CONFORMANCE_MUTATION", "none")

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        name = self.current()
        if scope["type"] != "http" or name == "none":
            await self.app(scope, receive, send)
            return
        mutation = MUTATIONS.get(name)
        if mutation is None:
            raise RuntimeError(f"unknown mutation {name!r}")
        await mutation(self, scope, receive, send)


# -- the defects -----------------------------------------------------------------------------------------
def _strip_response_header(name: bytes) -> Callable[[Mutant, dict[str, Any], Receive, Send], Awaitable[None]]:
    """A defect that drops one response header from every answer."""

    async def mutation(mutant: Mutant, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        async def strip(message: Any) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = _without(_headers(message), name)
            await send(message)

        await mutant.app(scope, receive, strip)

    return mutation


no_request_id = _strip_response_header(b"x-request-id")
no_version = _strip_response_header(b"x-app-version")
no_traceparent = _strip_response_header(b"traceparent")


async def html_413(mutant: Mutant, scope: dict[str, Any], receive: Receive, send: Send) -> None:
    start, body = await _buffered(mutant.app, scope, receive)
    if start.get("status") == 413:
        html = b"<html><body><h1>413 Request Entity Too Large</h1></body></html>"
        await _send_whole(
            send, 413, [*_without(_headers(start), b"content-type"), (b"content-type", b"text/html")], html
        )
        return
    await _send_whole(send, start["status"], _headers(start), body)


async def live_fails(mutant: Mutant, scope: dict[str, Any], receive: Receive, send: Send) -> None:
    if scope["path"] == "/health/live":
        await _send_whole(send, 500, [(b"content-type", b"text/plain")], b"boom")
        return
    await mutant.app(scope, receive, send)


async def live_checks_dependencies(mutant: Mutant, scope: dict[str, Any], receive: Receive, send: Send) -> None:
    """Liveness that asks readiness: it goes down with the database."""
    if scope["path"] == "/health/live":
        start, _ = await _buffered(
            mutant.app, {**scope, "path": "/health/ready", "raw_path": b"/health/ready"}, receive
        )
        if start.get("status") != 200:
            await _send_whole(send, 503, [(b"content-type", b"application/json")], b'{"status": "dead"}')
            return
    await mutant.app(scope, receive, send)


async def ready_without_checks(mutant: Mutant, scope: dict[str, Any], receive: Receive, send: Send) -> None:
    if scope["path"] != "/health/ready":
        await mutant.app(scope, receive, send)
        return
    start, body = await _buffered(mutant.app, scope, receive)
    document = json.loads(body)
    document.pop("checks", None)
    await _send_whole(send, start["status"], _headers(start), json.dumps(document).encode())


async def health_needs_auth(mutant: Mutant, scope: dict[str, Any], receive: Receive, send: Send) -> None:
    headers = dict(scope["headers"])
    if scope["path"].startswith("/health/") and b"x-api-key" not in headers:
        await _send_whole(send, 401, [(b"content-type", b"application/json")], b'{"code": "UNAUTHENTICATED"}')
        return
    await mutant.app(scope, receive, send)


async def any_api_key(mutant: Mutant, scope: dict[str, Any], receive: Receive, send: Send) -> None:
    """Any X-API-Key is accepted (the real one is put in its place)."""
    real = os.environ["API_KEY"].encode()
    scope = {**scope, "headers": [(k, real if k == b"x-api-key" else v) for k, v in scope["headers"]]}
    await mutant.app(scope, receive, send)


async def any_bearer_token(mutant: Mutant, scope: dict[str, Any], receive: Receive, send: Send) -> None:
    """Any bearer token is accepted, expired or unsigned (it is swapped for the API key)."""
    headers = [(k, v) for k, v in scope["headers"] if k != b"authorization"]
    if len(headers) != len(scope["headers"]):
        headers.append((b"x-api-key", os.environ["API_KEY"].encode()))
    await mutant.app({**scope, "headers": headers}, receive, send)


async def no_metrics(mutant: Mutant, scope: dict[str, Any], receive: Receive, send: Send) -> None:
    if scope["path"] == "/metrics":
        await _send_whole(send, 404, [(b"content-type", b"text/plain")], b"not here")
        return
    await mutant.app(scope, receive, send)


async def understated_batch_limit(mutant: Mutant, scope: dict[str, Any], receive: Receive, send: Send) -> None:
    """/health/live reports a batch limit lower than the one enforced, so a batch 'over' it is accepted."""
    if scope["path"] != "/health/live":
        await mutant.app(scope, receive, send)
        return
    start, body = await _buffered(mutant.app, scope, receive)
    document = json.loads(body)
    document["limits"]["ingest_max_batch_items"] = 3
    await _send_whole(send, start["status"], _headers(start), json.dumps(document).encode())


async def stale_limits(mutant: Mutant, scope: dict[str, Any], receive: Receive, send: Send) -> None:
    """/health/live shows the default limits whatever is in force (a rollout cannot be verified)."""
    if scope["path"] != "/health/live":
        await mutant.app(scope, receive, send)
        return
    start, body = await _buffered(mutant.app, scope, receive)
    document = json.loads(body)
    document["limits"] = {"max_request_body_bytes": 1048576, "ingest_max_batch_items": 1000}
    await _send_whole(send, start["status"], _headers(start), json.dumps(document).encode())


async def fresh_ids(mutant: Mutant, scope: dict[str, Any], receive: Receive, send: Send) -> None:
    """Client ids are replaced with new ones, so a re-sent event is stored again."""
    if scope["method"] != "POST" or scope["path"] != "/api/v1/events":
        await mutant.app(scope, receive, send)
        return
    raw = await _read_all(receive)
    try:
        payload = json.loads(raw)
        items = payload["items"] if isinstance(payload, dict) and "items" in payload else [payload]
        for item in items:
            if isinstance(item, dict) and "id" in item:
                item["id"] = str(uuid.uuid4())
        raw = json.dumps(payload).encode()
    except (ValueError, TypeError, KeyError):
        pass
    headers = [(k, str(len(raw)).encode() if k == b"content-length" else v) for k, v in scope["headers"]]
    await mutant.app({**scope, "headers": headers}, _replay(raw), send)


async def acknowledge_without_storing(mutant: Mutant, scope: dict[str, Any], receive: Receive, send: Send) -> None:
    """Every third ingest is answered 201 without being stored."""
    if scope["method"] == "POST" and scope["path"] == "/api/v1/events" and uuid.uuid4().int % 3 == 0:
        raw = await _read_all(receive)
        ids = [str(uuid.uuid4())]
        try:
            payload = json.loads(raw)
            items = payload["items"] if isinstance(payload, dict) and "items" in payload else [payload]
            ids = [item.get("id") or str(uuid.uuid4()) for item in items]
        except (ValueError, TypeError, KeyError, AttributeError):
            pass
        body = json.dumps({"accepted": len(ids), "duplicates": 0, "ids": ids, "duplicate_ids": []}).encode()
        await _send_whole(send, 201, [(b"content-type", b"application/json")], body)
        return
    await mutant.app(scope, receive, send)


async def server_error_on_bad_json(mutant: Mutant, scope: dict[str, Any], receive: Receive, send: Send) -> None:
    if scope["method"] == "POST":
        raw = await _read_all(receive)
        try:
            json.loads(raw)
        except ValueError:
            await _send_whole(send, 500, [(b"content-type", b"text/html")], b"<h1>Internal Server Error</h1>")
            return
        await mutant.app(scope, _replay(raw), send)
        return
    await mutant.app(scope, receive, send)


async def never_recovers(mutant: Mutant, scope: dict[str, Any], receive: Receive, send: Send) -> None:
    """Once the database has failed, the API stays 503 until restarted."""
    if scope["path"].startswith("/api/") and mutant.stuck_degraded:
        body = json.dumps(
            {
                "type": "about:blank",
                "title": "Service Unavailable",
                "status": 503,
                "detail": "stuck",
                "code": "DEPENDENCY_UNAVAILABLE",
                "request_id": "stuck",
            }
        ).encode()
        await _send_whole(send, 503, [(b"content-type", b"application/problem+json"), (b"retry-after", b"2")], body)
        return
    start, body = await _buffered(mutant.app, scope, receive)
    if b"DEPENDENCY_UNAVAILABLE" in body:
        mutant.become_stuck()
    await _send_whole(send, start["status"], _headers(start), body)


async def ready_ignores_draining(mutant: Mutant, scope: dict[str, Any], receive: Receive, send: Send) -> None:
    """Readiness keeps saying `ready` during shutdown, so the load balancer keeps sending traffic."""
    if scope["path"] != "/health/ready":
        await mutant.app(scope, receive, send)
        return
    start, body = await _buffered(mutant.app, scope, receive)
    document = json.loads(body)
    if document.get("status") == "draining":
        document["status"] = "ready"
        start["status"] = 200
    await _send_whole(send, start["status"], _headers(start), json.dumps(document).encode())


async def ready_ignores_schema(mutant: Mutant, scope: dict[str, Any], receive: Receive, send: Send) -> None:
    """Readiness passes whatever revision the database is at (the check RB-HEALTH-SCHEMA added, ignored)."""
    if scope["path"] != "/health/ready":
        await mutant.app(scope, receive, send)
        return
    start, body = await _buffered(mutant.app, scope, receive)
    document = json.loads(body)
    if "schema" in document.get("failed_checks", []):
        document["failed_checks"].remove("schema")
        document["checks"]["schema"] = {"status": "up", "latency_ms": document["checks"]["schema"]["latency_ms"]}
        if not document["failed_checks"] and document["status"] == "degraded":
            document["status"] = "ready"
            start["status"] = 200
    await _send_whole(send, start["status"], _headers(start), json.dumps(document).encode())


async def overload_as_500(mutant: Mutant, scope: dict[str, Any], receive: Receive, send: Send) -> None:
    """Overload surfaces as a bare 500 instead of 503 DB_OVERLOADED with Retry-After."""
    start, body = await _buffered(mutant.app, scope, receive)
    if b"DB_OVERLOADED" in body:
        await _send_whole(send, 500, [(b"content-type", b"text/plain")], b"Internal Server Error")
        return
    await _send_whole(send, start["status"], _headers(start), body)


_raw_method_counter: Any = None


async def method_as_label(mutant: Mutant, scope: dict[str, Any], receive: Receive, send: Send) -> None:
    """Counts requests by the method as the client spelled it: every new method is a new series."""
    global _raw_method_counter
    if _raw_method_counter is None:
        from prometheus_client import Counter

        _raw_method_counter = Counter("mutant_requests_by_method_total", "Requests by raw method.", ["method"])
    _raw_method_counter.labels(scope["method"]).inc()
    await mutant.app(scope, receive, send)


async def waits_for_slow_bodies(mutant: Mutant, scope: dict[str, Any], receive: Receive, send: Send) -> None:
    """Reads every body to its end before the service sees it, however slowly it arrives."""
    if scope["method"] in ("POST", "PUT", "PATCH"):
        raw = await _read_all(receive)
        await mutant.app(scope, _replay(raw), send)
        return
    await mutant.app(scope, receive, send)


async def cursor_500(mutant: Mutant, scope: dict[str, Any], receive: Receive, send: Send) -> None:
    """A cursor it cannot decode is an unhandled error (the defect the signed cursors fixed)."""
    if b"cursor=" not in scope.get("query_string", b""):
        await mutant.app(scope, receive, send)
        return
    start, body = await _buffered(mutant.app, scope, receive)
    if start.get("status") == 400 and b"INVALID_CURSOR" in body:
        await _send_whole(send, 500, [(b"content-type", b"text/plain")], b"Internal Server Error")
        return
    await _send_whole(send, start["status"], _headers(start), body)


async def unbounded_pages(mutant: Mutant, scope: dict[str, Any], receive: Receive, send: Send) -> None:
    """A list page that the budget ended early is sent with the budget's worth more (as if it had not ended)."""
    if scope["method"] != "GET" or scope["path"] != "/api/v1/events":
        await mutant.app(scope, receive, send)
        return
    start, body = await _buffered(mutant.app, scope, receive)
    if start.get("status") == 200:
        page = json.loads(body)
        if page.get("next_cursor"):
            page["more"] = "x" * int(os.environ.get("LIST_PAGE_MAX_BYTES", "4194304"))
            body = json.dumps(page).encode()
    await _send_whole(send, start["status"], _headers(start), body)


async def silent_id_squatting(mutant: Mutant, scope: dict[str, Any], receive: Receive, send: Send) -> None:
    """A re-sent id with other content is answered as a harmless duplicate (the old event stays)."""
    start, body = await _buffered(mutant.app, scope, receive)
    if start.get("status") == 409 and b"ID_CONFLICT" in body:
        ids = json.loads(body).get("conflicting_ids", [])
        duplicate = json.dumps({"accepted": 0, "duplicates": len(ids), "ids": ids, "duplicate_ids": ids}).encode()
        await _send_whole(send, 200, [(b"content-type", b"application/json")], duplicate)
        return
    await _send_whole(send, start["status"], _headers(start), body)


MUTATIONS: dict[str, Callable[[Mutant, dict[str, Any], Receive, Send], Awaitable[None]]] = {
    "no-request-id": no_request_id,
    "no-version": no_version,
    "no-traceparent": no_traceparent,
    "html-413": html_413,
    "live-fails": live_fails,
    "live-checks-dependencies": live_checks_dependencies,
    "ready-without-checks": ready_without_checks,
    "health-needs-auth": health_needs_auth,
    "any-api-key": any_api_key,
    "any-bearer-token": any_bearer_token,
    "no-metrics": no_metrics,
    "understated-batch-limit": understated_batch_limit,
    "stale-limits": stale_limits,
    "fresh-ids": fresh_ids,
    "acknowledge-without-storing": acknowledge_without_storing,
    "server-error-on-bad-json": server_error_on_bad_json,
    "never-recovers": never_recovers,
    "ready-ignores-draining": ready_ignores_draining,
    "ready-ignores-schema": ready_ignores_schema,
    "overload-as-500": overload_as_500,
    "method-as-label": method_as_label,
    "waits-for-slow-bodies": waits_for_slow_bodies,
    "cursor-500": cursor_500,
    "unbounded-pages": unbounded_pages,
    "silent-id-squatting": silent_id_squatting,
}
