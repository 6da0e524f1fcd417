"""The query suite's routes on a bare Quart app: what a Quart service costs on the query mix before any of the
service's own layers. Beside the raw-SQL ceiling it says how much of the gap between the service and the
ceiling is the HTTP stack itself (hypercorn, Quart, JSON) and how much the service adds (docs/BENCHMARKS.md).

Each route takes the suite's query parameters, turns them into the repository call the service's route makes
(conformance/perf/ceiling.py RawCalls: the route's own pydantic model, cursor codec, page budget and stats cap),
runs it on a pool made by the service's own `service.db.create_pool`, and answers the body the service
answers, encoded the service's way. Nothing else: no request id or trace context, body guard, authentication,
rate limit, overload gate or fail-fast bound, metrics, access log or problem+json errors. Not a service:
anyone may read through it; it binds to loopback like every server the harnesses start.

Run as the candidate of a paired run, beside the service as the baseline and the raw ceiling, all three in one
run with their CPU per request:

    BENCH_PROFILE=ci .venv/bin/python scripts/benchmark_queries.py --baseline HEAD \\
        --candidate-app scripts/bench_bare_suite_app.py:app

Served by `python -m service --app scripts/bench_bare_suite_app.py:app` from the environment the service reads
(DATABASE_URL, JWT_SECRET and the page bounds).
"""

from __future__ import annotations

import os
from typing import Any

import asyncpg
from quart import Quart, Response, request

from conformance.perf.ceiling import RawCalls
from service.db import create_pool
from service.http_json import json_response, json_response_with_raw
from service.logs import configure_logging

# hypercorn's "Running on" line is how a harness knows the workers listen (chaos.stack.service); it is logged
# at INFO, which needs logging set up.
configure_logging("INFO")

app = Quart("bench_bare_suite_app")
_calls = RawCalls(os.environ)


@app.before_serving
async def _open() -> None:
    app.config["POOL"] = await create_pool(_calls.settings)


@app.after_serving
async def _close() -> None:
    await app.config["POOL"].close()


async def _answer_of(path: str) -> tuple[Any, Any]:
    """The repository's answer for this request, and the parsed query (None for get by id)."""
    operation = _calls.operation(path, request.args)
    pool: asyncpg.Pool = app.config["POOL"]
    async with pool.acquire() as connection:
        return await operation(connection), operation.keywords.get("query")  # type: ignore[attr-defined]


@app.get("/health/live")
async def live() -> Response:
    return Response(b'{"status": "alive"}', content_type="application/json")


@app.get("/health/ready")
async def ready() -> Response:
    return Response(b'{"status": "ready"}', content_type="application/json")


@app.get("/api/v1/events")
async def list_events() -> Response:
    (page, next_position), _ = await _answer_of(request.path)
    next_cursor = _calls.cursors.encode(next_position) if next_position is not None else None
    return json_response({"items": page, "next_cursor": next_cursor})


@app.get("/api/v1/events/stats")
async def event_stats() -> Response:
    (total, buckets), query = await _answer_of(request.path)
    head = {"group_by": query.group_by, "bucket": query.bucket, "since": query.since, "until": query.until}
    return json_response_with_raw(head | {"total": total}, "buckets", buckets)


@app.get("/api/v1/events/<event_id>")
async def get_event(event_id: str) -> Response:
    event, _ = await _answer_of(request.path)
    if event is None:
        return json_response({"detail": "not found"}, 404)
    return json_response(event)
