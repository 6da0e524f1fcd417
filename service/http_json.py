"""Small request/response helpers shared by the blueprints: JSON in, JSON out, query strings validated."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar
from uuid import UUID

import orjson
from pydantic import BaseModel, ValidationError
from quart import Response, request

from service.bounds import MAX_LISTED_ERRORS
from service.errors import ApiError, validation_errors

M = TypeVar("M", bound=BaseModel)
_JSON_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS


def _json_default(value: Any) -> Any:
    # asyncpg returns its own UUID subclass, which orjson's exact-type check does not recognise.
    if isinstance(value, UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def json_response(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    response = Response(
        orjson.dumps(body, default=_json_default, option=_JSON_OPTIONS),
        status=status,
        content_type="application/json",
    )
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def json_response_with_raw(body: dict[str, Any], name: str, raw_json: str, status: int = 200) -> Response:
    """`body` with one more member, `name`, whose value is JSON text already (e.g. rendered by PostgreSQL),
    spliced in as it is rather than parsed and encoded again."""
    encoded = orjson.dumps(body, default=_json_default, option=_JSON_OPTIONS)
    member = orjson.dumps(name)
    separator = b"," if len(encoded) > 2 else b""
    payload = b"".join((encoded[:-1], separator, member, b":", raw_json.encode(), b"}"))
    return Response(payload, status=status, content_type="application/json")


def invalid(errors: list[dict[str, Any]], detail: str = "The request is not valid.") -> ApiError:
    """422 listing what is wrong: at most MAX_LISTED_ERRORS entries (a batch of 1,000 bad events would
    otherwise answer with thousands), with the total."""
    extra: dict[str, Any] = {"errors": errors[:MAX_LISTED_ERRORS]}
    if len(errors) > MAX_LISTED_ERRORS:
        extra["errors_total"] = len(errors)
    return ApiError(422, "VALIDATION_FAILED", detail, extra=extra)


def parse_query(model: type[M]) -> M:
    """The query string as `model`, or 422 naming each bad parameter (repeated parameters included)."""
    repeated = sorted(name for name in request.args if len(request.args.getlist(name)) > 1)
    if repeated:
        raise invalid(
            [{"loc": ["query", name], "msg": "may be given only once", "type": "repeated"} for name in repeated]
        )
    try:
        return model.model_validate(request.args.to_dict())
    except ValidationError as error:
        raise invalid(
            [{**item, "loc": ["query", *item["loc"]]} for item in validation_errors(error)],
            "The query string is not valid.",
        ) from None


async def read_json_body() -> Any:
    """The request body parsed as JSON, or 415/400 problems. orjson refuses NaN, Infinity and lone
    surrogates, which PostgreSQL's jsonb could not store, and nesting beyond 1024 levels."""
    content_type = request.mimetype
    if content_type != "application/json" and not content_type.endswith("+json"):
        raise ApiError(415, "UNSUPPORTED_MEDIA_TYPE", "Send the body as Content-Type: application/json.")
    body = await request.get_data(cache=False)
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise ApiError(400, "MALFORMED_JSON", f"The body is not valid JSON: {error}.") from None
