"""Liveness, readiness and metrics routes: public, never rate limited, never behind auth (RB-HEALTH-OPEN).

Liveness answers from memory only, so it stays 200 whatever the dependencies do (RB-HEALTH-LIVE).
Readiness (RB-HEALTH-READY, -DEGRADED, -DRAIN, -SCHEMA) answers from the shared, cached round of dependency
checks (service/readiness.py).

Decorator order on every route: route, `@public`, documentation (service/route_policy.py).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel
from quart import Blueprint, Response
from quart_schema import document_response

from service import lifecycle, metrics
from service.http_json import json_response
from service.openapi import extra_responses
from service.route_policy import public
from service.state import app_state

blueprint = Blueprint("health", __name__)


class LiveStatus(BaseModel):
    """The process is running; which release, since when, the guard limits and the client bounds in force."""

    status: Literal["alive"]
    version: str
    started_at: datetime
    uptime_s: float
    limits: dict[str, int]
    bounds: dict[str, float]


class CheckStatus(BaseModel):
    """One dependency check."""

    status: Literal["up", "down"]
    latency_ms: float
    error: str | None = None


class ReadyStatus(BaseModel):
    """Whether the instance should get traffic, with one check per dependency and the modes in force."""

    status: Literal["ready", "degraded", "draining"]
    version: str
    schema_revision: str | None
    expected_schema_revision: str
    degraded_mode: Literal["none", "read_only"]
    rate_limit_backend: Literal["redis", "memory"]
    failed_checks: list[str]
    checks: dict[str, CheckStatus]


@blueprint.get("/health/live")
@public
@document_response(LiveStatus, 200)
async def live() -> Response:
    """Liveness: 200 while the process runs; never touches a dependency."""
    state = app_state()
    settings, started_at = state.settings, state.started_at
    return json_response(
        {
            "status": "alive",
            "version": settings.app_version,
            "started_at": started_at,
            "uptime_s": round((datetime.now(UTC) - started_at).total_seconds(), 3),
            "limits": settings.effective_limits(),
            "bounds": settings.effective_bounds(),
        }
    )


@blueprint.get("/health/ready")
@public
@document_response(ReadyStatus, 200)
@document_response(ReadyStatus, 503)
async def ready() -> Response:
    """Readiness: 200 `ready`; 503 `degraded` naming the failed checks; 503 `draining` during shutdown.

    `schema_revision` is the database's alembic revision (null when unmigrated or unreachable) and
    `expected_schema_revision` the one this release expects; the `schema` check fails when they differ, unless
    the database's schema declares it still serves this release (expand-only migrations since) or the
    deployment declares its revision compatible (`SCHEMA_COMPATIBLE_REVISIONS`)."""
    state = app_state()
    settings = state.settings
    results = await state.readiness.results()
    failed = sorted(name for name, result in results.items() if not result.up)
    database = results.get("database")
    status = "draining" if lifecycle.is_draining() else "degraded" if failed else "ready"
    body = {
        "status": status,
        "version": settings.app_version,
        "schema_revision": database.detail.revision if database is not None and database.up else None,
        "expected_schema_revision": state.schema.expected,
        "degraded_mode": settings.degraded_mode,
        "rate_limit_backend": state.rate_limiter.backend,
        "failed_checks": failed,
        "checks": {name: result.as_json() for name, result in results.items()},
    }
    return json_response(body, 200 if status == "ready" else 503)


@blueprint.get("/metrics")
@public
@extra_responses(
    {
        200: {
            "description": "Prometheus text exposition.",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    }
)
async def prometheus_metrics() -> Response:
    """Prometheus metrics of every worker of this instance."""
    # Each scrape refreshes `dependency_up` (through the shared, cached readiness round), so alerts see the
    # dependencies' state as of this scrape even when nothing else probes readiness.
    await app_state().readiness.results()
    payload, content_type = metrics.render_metrics()
    return Response(payload, 200, content_type=content_type)
