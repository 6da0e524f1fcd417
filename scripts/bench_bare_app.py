"""The baseline of the request-pipeline benchmark (scripts/bench_pipeline.py): a bare Quart route doing the same
primary-key read as `GET /api/v1/events/{id}` with raw asyncpg, and nothing else — no request id, body guard,
authentication, rate limit, overload gate, metrics or access log.

Served exactly like the service, by `python -m service --app scripts/bench_bare_app.py:app` (same hypercorn
configuration, workers and uvloop). Reads DATABASE_URL from the environment.
"""

from __future__ import annotations

import os
from typing import Any
from uuid import UUID

import asyncpg
import orjson
from quart import Quart, Response

from service.logs import configure_logging

# hypercorn's "Running on" line is how a harness knows this server's workers listen (chaos.stack.service), and
# hypercorn logs it at INFO: without the service's logging set up, nothing is printed and the start times out.
configure_logging("INFO")

app = Quart("bench_bare_app")

_GET = "SELECT id, source, type, occurred_at, received_at, attributes FROM events WHERE id = $1"
_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS


def _default(value: Any) -> Any:
    if isinstance(value, UUID):
        return str(value)
    raise TypeError


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


async def _init(connection: asyncpg.Connection) -> None:
    await connection.set_type_codec("jsonb", encoder=_dumps, decoder=orjson.loads, schema="pg_catalog")


async def _no_reset(connection: asyncpg.Connection) -> None:
    return None


@app.before_serving
async def _open() -> None:
    url = os.environ["DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://", 1)
    app.config["POOL"] = await asyncpg.create_pool(url, min_size=1, max_size=10, init=_init, reset=_no_reset)


@app.after_serving
async def _close() -> None:
    await app.config["POOL"].close()


@app.get("/health/live")
async def live() -> Response:
    """What chaos.stack.service waits for before it calls the server up."""
    return Response(b'{"status": "alive"}', content_type="application/json")


@app.get("/bare/events/<event_id>")
async def get_event(event_id: str) -> Response:
    pool: asyncpg.Pool = app.config["POOL"]
    row = await pool.fetchrow(_GET, UUID(event_id))
    if row is None:
        return Response(b'{"detail": "not found"}', status=404, content_type="application/json")
    return Response(orjson.dumps(dict(row), default=_default, option=_OPTIONS), content_type="application/json")
