"""The OpenAPI document describes every status, header and media type the API can return."""

from __future__ import annotations

from typing import Any

import pytest
from quart import Quart


@pytest.fixture
async def document(offline_app: Quart) -> dict[str, Any]:
    response = await offline_app.test_client().get("/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = await response.get_json()
    return body


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    ]


def test_documents_every_operation(document: dict[str, Any]) -> None:
    assert {(path, method) for path, method, _ in _operations(document)} == {
        ("/api/v1/events", "post"),
        ("/api/v1/events", "get"),
        ("/api/v1/events/stats", "get"),
        ("/api/v1/events/{event_id}", "get"),
        ("/health/live", "get"),
        ("/health/ready", "get"),
        ("/metrics", "get"),
    }


def test_api_errors_are_documented_as_problem_json(document: dict[str, Any]) -> None:
    for path, method, operation in _operations(document):
        if not path.startswith("/api/"):
            continue
        for status in ("401", "403", "422", "429", "503"):
            content = operation["responses"][status]["content"]
            assert list(content) == ["application/problem+json"], (path, method, status)
        if method == "post":
            assert "413" in operation["responses"]
        assert operation["security"], (path, method)
        assert operation["summary"]


def test_every_response_documents_the_edge_headers(document: dict[str, Any]) -> None:
    for path, method, operation in _operations(document):
        for status, response in operation["responses"].items():
            assert response["headers"]["X-Request-Id"]["required"] is True, (path, method, status)
            assert "X-App-Version" in response["headers"]
            if status == "429":
                assert {"Retry-After", "RateLimit", "RateLimit-Policy"} <= set(response["headers"])
            if status == "503" and path.startswith("/api/"):
                assert "Retry-After" in response["headers"]
            if status == "401":
                assert "WWW-Authenticate" in response["headers"]


def test_query_parameters_say_which_are_required(document: dict[str, Any]) -> None:
    stats = {p["name"]: p for p in document["paths"]["/api/v1/events/stats"]["get"]["parameters"]}
    assert stats["since"].get("required") is True
    assert stats["until"].get("required") is True
    assert not stats["group_by"].get("required")
    listing = {p["name"]: p for p in document["paths"]["/api/v1/events"]["get"]["parameters"]}
    assert "anyOf" not in listing["since"]["schema"]  # no JSON null in a query string
    assert listing["limit"]["schema"]["maximum"] == 500


def test_health_and_metrics_are_public(document: dict[str, Any]) -> None:
    for path in ("/health/live", "/health/ready", "/metrics"):
        assert document["paths"][path]["get"]["security"] == []
    assert "503" in document["paths"]["/health/ready"]["get"]["responses"]


def test_request_bodies_are_required(document: dict[str, Any]) -> None:
    for path, method, operation in _operations(document):
        if "requestBody" in operation:
            assert operation["requestBody"]["required"] is True, (path, method)


def test_attributes_are_documented_as_the_service_validates_them(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    attributes = schemas["EventIn"]["properties"]["attributes"]
    assert attributes["propertyNames"]["pattern"] == "^[^\\u0000]*$", "keys without NUL"
    value = schemas[attributes["additionalProperties"]["$ref"].rsplit("/", 1)[1]]
    strings = [choice for choice in value["anyOf"] if choice.get("type") == "string"]
    assert strings == [{"type": "string", "pattern": "^[^\\u0000]*$", "maxLength": 8192}]
    assert "8 levels" in value["description"]


def test_the_cross_field_rules_are_described(document: dict[str, Any]) -> None:
    parameters = {p["name"]: p for p in document["paths"]["/api/v1/events"]["get"]["parameters"]}
    assert "earlier than `until`" in parameters["since"]["description"]
    assert "INVALID_CURSOR" in parameters["cursor"]["description"]
