"""Liveness, readiness and metrics: public, never rate limited, never behind auth (RB-HEALTH-OPEN).

Liveness answers from memory only, so it stays 200 whatever the dependencies do (RB-HEALTH-LIVE).
Readiness runs one bounded check per dependency concurrently and names each one's status and latency.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel
from quart import Blueprint, Response, current_app
from quart_schema import document_response
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.ext.asyncio import AsyncEngine

from service import metrics
from service.auth import public
from service.openapi import extra_responses
from service.settings import Settings
from service.web import json_response

blueprint = Blueprint("health", __name__)


class LiveStatus(BaseModel):
    """The process is running; which release, since when, and the guard limits in force."""

    status: Literal["alive"]
    version: str
    started_at: datetime
    uptime_s: float
    limits: dict[str, int]


class CheckStatus(BaseModel):
    """One dependency check."""

    status: Literal["up", "down"]
    latency_ms: float
    error: str | None = None


class ReadyStatus(BaseModel):
    """Whether the instance can serve traffic, with one check per dependency."""

    status: Literal["ready", "degraded"]
    version: str
    schema_revision: str | None
    checks: dict[str, CheckStatus]


@dataclass(slots=True)
class CheckResult:
    up: bool
    latency_ms: float
    error: str | None = None
    detail: Any = None

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"status": "up" if self.up else "down", "latency_ms": self.latency_ms}
        if self.error is not None:
            body["error"] = self.error
        return body


async def _timed(check: Any, limit_s: float) -> CheckResult:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(limit_s):
            detail = await check()
    except TimeoutError:
        return CheckResult(
            False, round((time.perf_counter() - started) * 1000, 2), f"no answer within {limit_s}s"
        )
    except Exception as error:  # any failure of the dependency is a "down", reported by its class name
        return CheckResult(False, round((time.perf_counter() - started) * 1000, 2), type(error).__name__)
    return CheckResult(True, round((time.perf_counter() - started) * 1000, 2), detail=detail)


async def check_database(engine: AsyncEngine) -> str | None:
    """Round trip to PostgreSQL; returns the alembic revision the database is at (None if unmigrated)."""
    async with engine.connect() as connection:
        try:
            revision = (await connection.execute(text("SELECT version_num FROM alembic_version"))).scalar()
        except ProgrammingError:  # no alembic_version table: reachable, but never migrated
            await connection.rollback()
            return None
    return str(revision) if revision is not None else None


async def check_redis(redis: Redis) -> None:
    await redis.ping()


@blueprint.get("/health/live")
@public
@document_response(LiveStatus, 200)
async def live() -> Response:
    """Liveness: 200 while the process runs; never touches a dependency."""
    settings: Settings = current_app.config["SETTINGS"]
    started_at: datetime = current_app.config["STARTED_AT"]
    return json_response(
        {
            "status": "alive",
            "version": settings.app_version,
            "started_at": started_at,
            "uptime_s": round((datetime.now(UTC) - started_at).total_seconds(), 3),
            "limits": settings.effective_limits(),
        }
    )


@blueprint.get("/health/ready")
@public
@document_response(ReadyStatus, 200)
@document_response(ReadyStatus, 503)
async def ready() -> Response:
    """Readiness: 200 when every dependency answers within its timeout, else 503 naming the failed check."""
    settings: Settings = current_app.config["SETTINGS"]
    timeout = settings.health_check_timeout_s
    database, redis = await asyncio.gather(
        _timed(lambda: check_database(current_app.config["ENGINE"]), timeout),
        _timed(lambda: check_redis(current_app.config["REDIS"]), timeout),
    )
    checks = {"database": database, "redis": redis}
    for name, result in checks.items():
        metrics.DEPENDENCY_UP.labels(name).set(1 if result.up else 0)
    healthy = all(result.up for result in checks.values())
    body = {
        "status": "ready" if healthy else "degraded",
        "version": settings.app_version,
        "schema_revision": database.detail,
        "checks": {name: result.as_json() for name, result in checks.items()},
    }
    return json_response(body, 200 if healthy else 503)


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
    payload, content_type = metrics.render_metrics()
    return Response(payload, 200, content_type=content_type)
