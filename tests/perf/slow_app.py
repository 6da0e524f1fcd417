"""A deliberately slower candidate for the paired regression test: the real service (service.asgi:app) with a
CPU busy-loop of BURN_MS (default 3 ms) before every API request, served as `python -m service --app
tests.perf.slow_app:app`.

A busy-loop, not a sleep: a sleep only adds latency while the worker serves other requests meanwhile, so at a
closed-loop concurrency above the worker count it hides behind queueing; burning CPU in the event loop
costs what a slower code path costs (the worker can do nothing else), so mean, p95 and throughput all move.
Health routes are left alone so that readiness and start-up waits behave as the real service's do.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

from service.asgi import app as service_app

BURN_MS = float(os.environ.get("PERF_MUTANT_BURN_MS", "3"))

Receive = Callable[[], Awaitable[Any]]
Send = Callable[[Any], Awaitable[None]]
ASGIApp = Callable[[dict[str, Any], Receive, Send], Awaitable[None]]


# The service's app, typed as the plain ASGI callable this wrapper passes scopes to.
_served: ASGIApp = service_app  # type: ignore[assignment]


def burn(milliseconds: float) -> None:
    """Keep the CPU busy (this thread, this event loop) for `milliseconds`."""
    until = time.perf_counter() + milliseconds / 1000
    while time.perf_counter() < until:
        pass


async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] == "http" and str(scope.get("path", "")).startswith("/api/"):
        burn(BURN_MS)
    await _served(scope, receive, send)
