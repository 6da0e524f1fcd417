"""The OpenAPI document: quart-schema's, completed with everything a strict client (or Schemathesis) checks.

quart-schema documents request and success bodies from the pydantic models. This provider adds, per
operation: every problem+json status the route can return (declared with `@problems(...)`), the response
headers every response carries (`X-Request-Id`, `X-App-Version`) and those of particular statuses
(`Retry-After`, RateLimit, `WWW-Authenticate`), the security requirement from the route's auth mark, and
`required` on query parameters (quart-schema leaves it out).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from http import HTTPStatus
from typing import Any, Final, TypeVar, cast

from quart import Quart
from quart_schema import OpenAPIProvider
from werkzeug.routing import Rule

from service.auth import ALL_SCOPES
from service.events.schemas import attribute_value_schemas, attributes_schema
from service.route_policy import route_auth_policy
from service.state import state_of

PROBLEMS_ATTRIBUTE: Final = "_problem_statuses"
EXTRA_RESPONSES_ATTRIBUTE: Final = "_extra_responses"
F = TypeVar("F", bound=Callable[..., Any])

PROBLEM_SCHEMA: Final[dict[str, Any]] = {
    "title": "Problem",
    "description": "RFC 9457 problem details.",
    "type": "object",
    "required": ["type", "title", "status", "detail", "code", "request_id"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string", "pattern": "^[A-Z][A-Z0-9_]*$"},
        "request_id": {"type": ["string", "null"]},
    },
    "additionalProperties": True,
}


def _header(description: str, *, required: bool = True, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"description": description, "required": required, "schema": schema or {"type": "string"}}


EVERY_RESPONSE_HEADERS: Final = {
    "X-Request-Id": _header("The request id (kept from the request when well-formed, else generated)."),
    "X-App-Version": _header("The running release."),
    "traceparent": _header(
        "W3C trace context: the caller's trace (or a new one) and this server's span.",
        schema={"type": "string", "pattern": "^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$"},
    ),
    "tracestate": _header("The caller's tracestate, passed on when valid.", required=False),
}
STATUS_HEADERS: Final[dict[int, dict[str, dict[str, Any]]]] = {
    401: {"WWW-Authenticate": _header("The authentication challenge.")},
    429: {
        "Retry-After": _header("Seconds until a retry may succeed.", schema={"type": "integer"}),
        "RateLimit": _header("IETF draft RateLimit header: remaining quota and reset."),
        "RateLimit-Policy": _header("IETF draft RateLimit-Policy header: the quota in force."),
    },
    503: {"Retry-After": _header("Seconds until a retry may succeed.", schema={"type": "integer"})},
}


def problems(*statuses: int) -> Callable[[F], F]:
    """Declare the problem+json statuses a route may return (documented in /openapi.json)."""

    def decorator(func: F) -> F:
        setattr(func, PROBLEMS_ATTRIBUTE, tuple(sorted(set(statuses))))
        return func

    return decorator


def extra_responses(responses: dict[int, dict[str, Any]]) -> Callable[[F], F]:
    """Document responses that are not JSON models (e.g. the Prometheus text of /metrics)."""

    def decorator(func: F) -> F:
        setattr(func, EXTRA_RESPONSES_ATTRIBUTE, responses)
        return func

    return decorator


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """`X | None` query parameters: a query string cannot carry JSON null, so document just X."""
    branches = schema.get("anyOf")
    if isinstance(branches, list):
        kept = [branch for branch in branches if branch.get("type") != "null"]
        if len(kept) == 1:
            merged = {key: value for key, value in schema.items() if key not in {"anyOf", "default"}}
            merged.update(kept[0])
            return merged
    return schema


class RunbookOpenAPIProvider(OpenAPIProvider):
    """quart-schema's provider plus problems, headers, security and required query parameters."""

    @cached_property
    def _document(self) -> dict[str, Any]:
        document = super().schema()
        schemas = document["components"]["schemas"]
        schemas["Problem"] = PROBLEM_SCHEMA
        # `attributes` as the service validates it (pydantic only says "an object").
        schemas.update(attribute_value_schemas())
        if "EventIn" in schemas:
            schemas["EventIn"]["properties"]["attributes"].update(attributes_schema())
        if "EventBatchIn" in schemas:  # the limit in force, so a client can size its batches from the document
            limit = state_of(cast(Quart, self._app)).settings.ingest_max_batch_items  # a weak proxy of the app
            schemas["EventBatchIn"]["properties"]["items"]["maxItems"] = limit
        return document

    def build_request_body(self, model: Any, source: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        body, components = super().build_request_body(model, source)
        return {**body, "required": True}, components  # every documented body is required

    def schema(self) -> dict[str, Any]:
        # Routes never change after start-up, so the document is built once.
        return self._document

    def build_path_parameter(self, name: str, converter: Any) -> dict[str, Any]:
        parameter = super().build_path_parameter(name, converter)
        if name.endswith("_id"):
            parameter["schema"] = {"type": "string", "format": "uuid"}
        return parameter

    def build_querystring_parameters(self, model: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        parameters, definitions = super().build_querystring_parameters(model)
        required = set(model.model_json_schema().get("required", ()))
        for parameter in parameters:
            parameter["schema"] = _without_null(parameter["schema"])
            if parameter["name"] in required:
                parameter["required"] = True
        return parameters, definitions

    def build_paths(self, rule: Rule) -> tuple[dict[str, Any], dict[str, Any]]:
        paths, components = super().build_paths(rule)
        view = self._app.view_functions[rule.endpoint]
        statuses: tuple[int, ...] = getattr(view, PROBLEMS_ATTRIBUTE, ())
        extra: dict[int, dict[str, Any]] = getattr(view, EXTRA_RESPONSES_ATTRIBUTE, {})
        policy = route_auth_policy(view)
        for operations in paths.values():
            for method, operation in list(operations.items()):
                # quart-schema shares one responses dict between the methods of a rule; copy before editing.
                operation = {**operation, "responses": dict(operation["responses"])}
                responses = operation["responses"]
                for status, response in list(responses.items()):
                    responses[status] = self._with_headers(int(status), {**response, "content": response["content"]})
                for status, response in extra.items():
                    responses[str(status)] = self._with_headers(status, response)
                for status in statuses:
                    responses[str(status)] = self._problem_response(status)
                if policy in ALL_SCOPES:
                    operation["security"] = [{"ApiKey": []}, {"BearerJWT": [policy]}]
                elif policy == "public":
                    operation["security"] = []
                operations[method] = operation
        return paths, components

    @staticmethod
    def _with_headers(status: int, response: dict[str, Any]) -> dict[str, Any]:
        headers = {**EVERY_RESPONSE_HEADERS, **STATUS_HEADERS.get(status, {})}
        # quart-schema puts header models under "content"; OpenAPI wants them beside it.
        content = {key: value for key, value in response.get("content", {}).items() if key != "headers"}
        result = {**response, "headers": headers}
        if content:
            result["content"] = content
        else:
            result.pop("content", None)
        if not result.get("description"):
            result["description"] = HTTPStatus(status).phrase
        return result

    def _problem_response(self, status: int) -> dict[str, Any]:
        return self._with_headers(
            status,
            {
                "description": HTTPStatus(status).phrase,
                "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
            },
        )
