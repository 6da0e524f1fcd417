"""RB-AUTH-APIKEY and RB-AUTH-JWT: who may call what, and how refusals look."""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import AsyncIterator, Callable

import jwt
import pytest
from quart import Quart
from quart.typing import TestClientProtocol as Client

from service.app import create_app
from service.settings import Settings
from tests.helpers import API_KEY_HEADERS, TEST_JWT_SECRET, event, make_token

pytestmark = pytest.mark.integration


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_api_key_reads_and_writes(client: Client) -> None:
    assert (await client.post("/api/v1/events", json=event(), headers=API_KEY_HEADERS)).status_code == 201
    assert (await client.get("/api/v1/events", headers=API_KEY_HEADERS)).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-API-Key": "wrong-key-0123456789abcdef"},
        {"X-API-Key": ""},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer not.a.jwt"},
    ],
    ids=["none", "wrong key", "empty key", "basic auth", "empty bearer", "garbage token"],
)
async def test_missing_or_invalid_credentials_are_401_with_challenge(client: Client, headers: dict[str, str]) -> None:
    response = await client.get("/api/v1/events", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="events-api"')
    problem = await response.get_json()
    assert problem["code"] == "UNAUTHENTICATED"
    assert response.content_type == "application/problem+json"


async def test_a_wrong_api_key_is_not_rescued_by_a_valid_token(client: Client) -> None:
    headers = {"X-API-Key": "wrong-key-0123456789abcdef", **bearer(make_token())}
    assert (await client.get("/api/v1/events", headers=headers)).status_code == 401


async def test_jwt_scopes(client: Client) -> None:
    reader = bearer(make_token(scopes="events:read"))
    assert (await client.get("/api/v1/events", headers=reader)).status_code == 200
    refused = await client.post("/api/v1/events", json=event(), headers=reader)
    assert refused.status_code == 403
    assert (await refused.get_json())["code"] == "INSUFFICIENT_SCOPE"
    assert 'error="insufficient_scope"' in refused.headers["WWW-Authenticate"]

    writer = bearer(make_token(scopes="events:write"))
    assert (await client.post("/api/v1/events", json=event(), headers=writer)).status_code == 201
    assert (await client.get("/api/v1/events", headers=writer)).status_code == 403

    as_list = bearer(
        jwt.encode(
            {"sub": "svc", "scopes": ["events:read"], "exp": int(time.time()) + 60},
            TEST_JWT_SECRET,
            algorithm="HS256",
        )
    )
    assert (await client.get("/api/v1/events", headers=as_list)).status_code == 200
    no_scope = bearer(make_token(scopes=None))
    assert (await client.get("/api/v1/events", headers=no_scope)).status_code == 403


def _hs512_with_the_right_secret() -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyJWT warns that the key is short for SHA-512; that is not the point
        return jwt.encode(
            {"sub": "x", "scope": "events:read", "exp": int(time.time()) + 60},
            TEST_JWT_SECRET,
            algorithm="HS512",
        )


def _unsigned(claims: dict[str, object]) -> str:
    return jwt.encode(claims, key="", algorithm="none")


@pytest.mark.parametrize(
    "token",
    [
        make_token(lifetime_s=-10),
        make_token(lifetime_s=None),
        make_token(sub=None),
        _unsigned({"sub": "x", "scope": "events:read", "exp": int(time.time()) + 60}),
        _hs512_with_the_right_secret(),
        jwt.encode(
            {"sub": "x", "scope": "events:read", "exp": int(time.time()) + 60},
            "another-secret-that-is-32-bytes-long!!",
            algorithm="HS256",
        ),
    ],
    ids=["expired", "no exp", "no sub", "alg none", "HS512 (not the pinned algorithm)", "wrong secret"],
)
async def test_invalid_tokens_are_refused(client: Client, token: str) -> None:
    response = await client.get("/api/v1/events", headers=bearer(token))
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    # One generic answer: which check failed (PyJWT's words) would tell a forger how far they got.
    assert (await response.get_json())["detail"] == "The credentials are not valid."


async def test_why_a_credential_was_refused_is_logged_not_answered(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = jwt.encode({"sub": "x", "exp": int(time.time()) + 60}, "another-secret-that-is-32-bytes-long!!", "HS256")
    with caplog.at_level(logging.INFO, logger="service.auth"):
        response = await client.get("/api/v1/events", headers=bearer(wrong))
    body = await response.get_data(as_text=True)
    assert "Signature" not in body
    reasons = [getattr(record, "reason", "") for record in caplog.records if record.name == "service.auth"]
    assert any("InvalidSignatureError" in reason for reason in reasons), reasons


async def test_a_subject_longer_than_the_bound_is_refused(client: Client) -> None:
    response = await client.get("/api/v1/events", headers=bearer(make_token(sub="s" * 257)))
    assert response.status_code == 401
    assert (await client.get("/api/v1/events", headers=bearer(make_token(sub="s" * 256)))).status_code == 200


@pytest.fixture
async def strict_app(make_settings: Callable[..., Settings]) -> AsyncIterator[Quart]:
    application = create_app(make_settings(jwt_issuer="https://issuer.example", jwt_audience="events-api"))
    async with application.test_app():
        yield application


async def test_issuer_and_audience_are_checked_when_configured(strict_app: Quart) -> None:
    client = strict_app.test_client()
    good = make_token(iss="https://issuer.example", aud="events-api")
    assert (await client.get("/api/v1/events", headers=bearer(good))).status_code == 200
    for token in (
        make_token(aud="events-api"),
        make_token(iss="https://issuer.example"),
        make_token(iss="https://evil.example", aud="events-api"),
        make_token(iss="https://issuer.example", aud="someone-else"),
    ):
        assert (await client.get("/api/v1/events", headers=bearer(token))).status_code == 401


async def test_health_and_metrics_need_no_credentials(client: Client) -> None:
    for path in ("/health/live", "/health/ready", "/metrics", "/openapi.json"):
        response = await client.get(path)
        assert response.status_code == 200, path
