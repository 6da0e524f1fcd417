"""The app's state, typed: what `create_app` builds and what opens when the server starts serving.

`create_app` stores one `AppState` on the app (`install`); handlers reach it through `app_state()` (or
`state_of(app)` outside a request), never through string keys of `app.config`, which keeps Quart's own
settings only.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

from quart import Quart, current_app
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from service.auth import AuthConfig
from service.db import Database
from service.events.cursor import CursorCodec
from service.ratelimit import RateLimiter
from service.readiness import ReadinessProbe
from service.schema import SchemaExpectation
from service.settings import Settings

_EXTENSION = "service.state"


@dataclass(frozen=True, slots=True)
class Connections:
    """What the server opens when it starts serving (`before_serving`) and closes when it stops."""

    database: Database
    health_engine: AsyncEngine
    redis: Redis
    rate_limiter: RateLimiter
    readiness: ReadinessProbe
    shutdown_watch: asyncio.Task[None]


@dataclass(slots=True)
class AppState:
    """Built once by `create_app`; only `connections` is set later, when the server starts serving."""

    settings: Settings
    started_at: datetime
    schema: SchemaExpectation  # this release's own head, read once
    cursors: CursorCodec
    auth: AuthConfig
    connections: Connections | None = None

    @property
    def serving(self) -> Connections:
        if self.connections is None:
            raise RuntimeError("the app is not serving: its connections open in `before_serving`")
        return self.connections

    @property
    def database(self) -> Database:
        return self.serving.database

    @property
    def rate_limiter(self) -> RateLimiter:
        return self.serving.rate_limiter

    @property
    def readiness(self) -> ReadinessProbe:
        return self.serving.readiness


def install(app: Quart, state: AppState) -> None:
    app.extensions[_EXTENSION] = state


def state_of(app: Quart) -> AppState:
    state: AppState = app.extensions[_EXTENSION]
    return state


def app_state() -> AppState:
    """The state of the app serving the current request."""
    return state_of(current_app)
