"""RFC 9457 problem details for every error the service returns, Quart's own included.

A problem body has `type`, `title`, `status`, `detail`, and the extension members `code` (stable,
UPPER_SNAKE) and `request_id`. Handlers raise `ApiError`; the handlers registered in `register_error_handlers`
turn it, werkzeug's HTTP exceptions and anything unexpected into such a body.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import orjson
from quart import Quart, Response
from quart_schema import RequestSchemaValidationError
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from service.request_state import current_request_id

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:events-api:problem:"

log = logging.getLogger("service.errors")

# Quart/werkzeug statuses → our stable codes.
_HTTP_CODES: dict[int, str] = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    408: "REQUEST_TIMEOUT",
    411: "LENGTH_REQUIRED",
    413: "PAYLOAD_TOO_LARGE",
    414: "URI_TOO_LONG",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "VALIDATION_FAILED",
    429: "RATE_LIMITED",
    431: "HEADERS_TOO_LARGE",
    500: "INTERNAL_ERROR",
    503: "SERVICE_UNAVAILABLE",
}


class ApiError(Exception):
    """An error with a problem+json rendering; raise it from any handler or guard."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})


def problem_body(status: int, code: str, detail: str, extra: Mapping[str, Any] | None = None) -> bytes:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_PREFIX + code.lower().replace("_", "-"),
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
        "request_id": current_request_id(),
    }
    if extra:
        body.update(extra)
    return orjson.dumps(body)


def problem_response(
    status: int,
    code: str,
    detail: str,
    *,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Response:
    response = Response(problem_body(status, code, detail, extra), status=status, content_type=PROBLEM_CONTENT_TYPE)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def validation_errors(error: Exception) -> list[dict[str, Any]]:
    """Pydantic errors without the offending input (it may be huge, or a secret)."""
    errors = getattr(error, "errors", None)
    if not callable(errors):
        return [{"loc": [], "msg": str(error), "type": "value_error"}]
    return [
        {"loc": list(item["loc"]), "msg": item["msg"], "type": item["type"]}
        for item in errors(include_input=False, include_url=False, include_context=False)
    ]


def register_error_handlers(app: Quart) -> None:
    @app.errorhandler(ApiError)
    async def _api_error(error: ApiError) -> Response:
        return problem_response(error.status, error.code, error.detail, headers=error.headers, extra=error.extra)

    @app.errorhandler(RequestSchemaValidationError)
    async def _schema_error(error: RequestSchemaValidationError) -> Response:
        return problem_response(
            422,
            "VALIDATION_FAILED",
            "The request does not match the documented schema.",
            extra={"errors": validation_errors(error.validation_error)},
        )

    @app.errorhandler(HTTPException)
    async def _http_error(error: HTTPException) -> Response:
        status = error.code or 500
        headers: dict[str, str] = {}
        if isinstance(error, MethodNotAllowed) and error.valid_methods:
            headers["Allow"] = ", ".join(sorted(error.valid_methods))
        detail = error.description or HTTPStatus(status).description
        code = _HTTP_CODES.get(status, f"HTTP_{status}")
        return problem_response(status, code, detail, headers=headers)

    @app.errorhandler(Exception)
    async def _unexpected(error: Exception) -> Response:
        log.error("unhandled error", exc_info=error)
        return problem_response(500, "INTERNAL_ERROR", "An unexpected error occurred; quote the request id.")
