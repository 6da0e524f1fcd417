"""Per-request state (request id, trace, credentials, route, principal), shared by the ASGI middleware and
the Quart handlers.

The middleware (service/asgi_middleware.py) creates one `RequestState` per HTTP request and puts it in a
ContextVar before the app runs; Quart copies the context into its handler task, so handlers see the same
object and fill in what only they know (route template, principal). The middleware reads it back for the
access log and the metrics.
"""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar
from dataclasses import dataclass, field

from service.trace_context import TraceContext

REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,128}")
UNMATCHED_ROUTE = "<unmatched>"


@dataclass(frozen=True, slots=True)
class Credentials:
    """The request's credential headers, as the edge found them in its one pass over the headers (the first
    of each, decoded as Latin-1, as Werkzeug's `request.headers.get` gives them): what authentication reads,
    so it need not search the headers again. Never logged (`repr` shows no values)."""

    api_key: str | None = field(default=None, repr=False)
    authorization: str | None = field(default=None, repr=False)
    forwarded_for: str | None = None


NO_CREDENTIALS = Credentials()


@dataclass(slots=True)
class RequestState:
    """What is known about the request being served."""

    request_id: str
    trace: TraceContext  # W3C trace context: the caller's trace (or a new one) and this server's span
    method: str
    path: str
    credentials: Credentials = NO_CREDENTIALS
    route: str = UNMATCHED_ROUTE
    principal: str | None = None
    extra_log_fields: dict[str, object] = field(default_factory=dict)


current_request: ContextVar[RequestState | None] = ContextVar("current_request", default=None)


def choose_request_id(incoming: str | None) -> str:
    """Keep a well-formed incoming id so a trace can be followed across services; otherwise mint one."""
    if incoming is not None and REQUEST_ID_PATTERN.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


def current_request_id() -> str | None:
    state = current_request.get()
    return state.request_id if state is not None else None
