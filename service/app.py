"""`create_app(settings)`: the one place where the service is assembled."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

from quart import Quart, Response, request
from quart_schema import QuartSchema, hide
from quart_schema.openapi import APIKeySecurityScheme, HttpSecurityScheme, Info
from redis.asyncio import Redis
from werkzeug.exceptions import HTTPException

from service import lifecycle, metrics
from service.asgi_middleware import EdgeLimits, EdgeMiddleware
from service.auth import AuthConfig
from service.db import Database, create_engine
from service.errors import register_error_handlers
from service.events.cursor import CursorCodec
from service.events.routes import blueprint as events_blueprint
from service.health import blueprint as health_blueprint
from service.http_json import json_response
from service.openapi import RunbookOpenAPIProvider
from service.ratelimit import RateLimiter
from service.readiness import Check, ReadinessProbe, check_database, check_redis, schema_check
from service.redis_options import redis_client_options
from service.request_state import UNMATCHED_ROUTE, current_request
from service.route_policy import public
from service.schema import load_expectation
from service.settings import Settings
from service.state import AppState, Connections, install

log = logging.getLogger("service")


def _skip_conversion_of_responses(app: Quart, plain: Callable[[Any], Awaitable[Any]]) -> None:
    """quart-schema wraps `make_response` to turn returned models into JSON, which costs every request a
    pass over its return value and headers (about 10 µs, docs/BENCHMARKS.md); every handler and error handler
    here returns a finished `Response`, which goes to Quart's own `make_response` directly."""
    converting = app.make_response

    async def make_response(result: Any) -> Any:
        if isinstance(result, Response):
            return await plain(result)
        return await converting(result)

    app.make_response = make_response  # type: ignore[method-assign]


def create_app(settings: Settings) -> Quart:
    """Build the Quart app for `settings`; connections open when the server starts serving."""
    app = Quart("service", static_folder=None)
    app.config.update(MAX_CONTENT_LENGTH=settings.max_request_body_bytes)  # second line behind the edge guard
    state = AppState(
        settings=settings,
        started_at=datetime.now(UTC),
        schema=load_expectation(settings.compatible_schema_revisions),  # read once: this release's own head
        cursors=CursorCodec(settings.jwt_secret.get_secret_value()),
        auth=AuthConfig(
            api_key=settings.api_key.get_secret_value().encode(),
            jwt_secret=settings.jwt_secret.get_secret_value(),
            jwt_issuer=settings.jwt_issuer,
            jwt_audience=settings.jwt_audience,
            trusted_proxies=tuple(settings.trusted_proxy_networks()),
        ),
    )
    install(app, state)
    plain_make_response = app.make_response
    schema = QuartSchema(
        app,
        info=Info(title="Events API", version=settings.app_version),
        openapi_path=None,  # served below, marked public like every other open route
        redoc_ui_path=None,
        scalar_ui_path=None,
        swagger_ui_path=None,
        security_schemes={
            "ApiKey": APIKeySecurityScheme(in_="header", name="X-API-Key"),
            "BearerJWT": HttpSecurityScheme(scheme="bearer", bearer_format="JWT"),
        },
        openapi_provider_class=RunbookOpenAPIProvider,
    )
    _skip_conversion_of_responses(app, plain_make_response)
    register_error_handlers(app)
    app.register_blueprint(health_blueprint)
    app.register_blueprint(events_blueprint)

    @app.get("/openapi.json")
    @public
    @hide
    async def openapi_document() -> Response:
        """The OpenAPI 3.1 document of this API."""
        return json_response(schema.openapi_provider.schema())

    @app.before_request
    async def _remember_route() -> None:
        state = current_request.get()
        if state is not None:
            state.route = request.url_rule.rule if request.url_rule is not None else UNMATCHED_ROUTE

    @app.before_serving
    async def _connect() -> None:
        database = Database(settings)
        await database.open()
        health_engine = create_engine(settings, pool_size=1)
        redis = Redis.from_url(
            settings.redis_url.get_secret_value(), **redis_client_options(settings.health_check_timeout_s)
        )
        checks: dict[str, Check] = {"database": partial(check_database, health_engine)}
        if settings.rate_limit_backend == "redis":
            checks["redis"] = partial(check_redis, redis)
        limiter = RateLimiter(settings)
        limiter.start()
        state.connections = Connections(
            database=database,
            health_engine=health_engine,
            redis=redis,
            rate_limiter=limiter,
            readiness=ReadinessProbe(
                checks,
                timeout_s=settings.health_check_timeout_s,
                cache_s=settings.health_cache_s,
                # A readiness round that finds Redis down moves rate limiting to the fallback at once,
                # so no request has to wait out a Redis timeout to find out.
                on_down={"redis": limiter.fall_back},
                derived={"schema": schema_check(state.schema)},
            ),
            shutdown_watch=asyncio.get_running_loop().create_task(lifecycle.watch_shutdown_signal()),
        )
        metrics.APP_INFO.labels(settings.app_version).set(1)
        for name, value in settings.effective_limits().items():
            metrics.CONFIGURED_LIMIT.labels(name).set(value)
        for mode in ("none", "read_only"):
            metrics.DEGRADED_MODE.labels(mode).set(1 if settings.degraded_mode == mode else 0)
        log.info(
            "serving",
            extra={
                "version": settings.app_version,
                "limits": settings.effective_limits(),
                "degraded_mode": settings.degraded_mode,
                "rate_limit_backend": settings.rate_limit_backend,
            },
        )

    @app.after_serving
    async def _disconnect() -> None:
        connections = state.serving
        connections.shutdown_watch.cancel()
        await connections.rate_limiter.stop()
        await connections.database.dispose()
        await connections.health_engine.dispose()
        await connections.redis.aclose()

    def route_of(path: str, method: str) -> str:
        try:
            rule, _ = app.url_map.bind("localhost").match(path, method, return_rule=True)
        except HTTPException:
            return UNMATCHED_ROUTE
        return str(rule.rule)

    app.asgi_app = EdgeMiddleware(  # type: ignore[method-assign]
        app.asgi_app,
        version=settings.app_version,
        limits=EdgeLimits(
            max_body_bytes=settings.max_request_body_bytes,
            body_timeout_s=settings.request_body_timeout_s,
            body_min_rate_bps=settings.request_body_min_rate_bps,
            body_grace_s=settings.request_body_grace_s,
            send_timeout_s=settings.response_send_timeout_s,
        ),
        route_of=route_of,
    )
    return app
