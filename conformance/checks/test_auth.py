"""인증 — RB-AUTH-*."""

from __future__ import annotations

import os
import subprocess
import warnings
from pathlib import Path

import jwt
import pytest

from conformance.assertions import problem
from conformance.target import Target, send_anonymous

requirement = pytest.mark.requirement
needs_control = pytest.mark.needs_control
REPO = Path(__file__).resolve().parents[2]


# Requests refused 401 count against the anonymous limit of the suite's address, which other clients share:
# they go through send_anonymous, which waits out (bounded) a 429 someone else's spending caused.


@requirement("RB-AUTH-APIKEY")
def test_the_api_key_authenticates(target: Target) -> None:
    with target.client() as client:
        assert client.get("/api/v1/events", params={"limit": 1}, headers=target.auth).status_code == 200
        wrong = send_anonymous(
            client, "GET", "/api/v1/events", headers={"X-API-Key": (target.api_key or "") + "-wrong"}
        )
    problem(wrong, 401, "UNAUTHENTICATED")
    assert wrong.headers["www-authenticate"].lower().startswith("bearer")


@requirement("RB-AUTH-JWT")
def test_bearer_tokens_with_scopes(target: Target) -> None:
    with target.client() as client:

        def get(token: str) -> int:
            return client.get(
                "/api/v1/events", params={"limit": 1}, headers={"Authorization": f"Bearer {token}"}
            ).status_code

        assert get(target.token(scopes="events:read")) == 200
        refused = client.post(
            "/api/v1/events", json={}, headers={"Authorization": f"Bearer {target.token(scopes='events:read')}"}
        )
        problem(refused, 403, "INSUFFICIENT_SCOPE")
        assert get(target.token(scopes="events:write")) == 403


def _hs512(claims: dict[str, object], secret: str) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyJWT finds the key short for SHA-512; the point is the algorithm
        return jwt.encode(claims, secret, algorithm="HS512")


@requirement("RB-AUTH-JWT")
def test_invalid_tokens_are_401_with_a_challenge(target: Target) -> None:
    secret = target.jwt_secret
    good = target.token()  # skips when the target's secret is unknown
    assert secret is not None
    claims = jwt.decode(good, secret, algorithms=["HS256"])
    forged = {
        "expired": target.token(lifetime_s=-30),
        "no exp": target.token(exp=None),
        "alg none": jwt.encode(claims, key="", algorithm="none"),
        "HS512 with the right key": _hs512(claims, secret),
        "wrong key": jwt.encode(claims, "x" * 40, algorithm="HS256"),
        "garbage": "not.a.token",
    }
    with target.client() as client:
        for name, token in forged.items():
            response = send_anonymous(client, "GET", "/api/v1/events", headers={"Authorization": f"Bearer {token}"})
            problem(response, 401, "UNAUTHENTICATED")
            assert "www-authenticate" in response.headers, name
        missing = send_anonymous(client, "GET", "/api/v1/events")
    problem(missing, 401, "UNAUTHENTICATED")


@requirement("RB-AUTH-SECRETS")
@needs_control
@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"JWT_SECRET": "only-31-bytes-long-secret-value"}, "JWT_SECRET"),
        ({"API_KEY": None}, "API_KEY"),
        ({"DATABASE_URL": None}, "DATABASE_URL"),
        ({"DATABASE_URL": "postgresql://nobody@127.0.0.1:5432/events"}, "DATABASE_URL"),
    ],
)
def test_the_service_refuses_to_start_without_its_secrets(
    target: Target, change: dict[str, str | None], named: str
) -> None:
    env = {**os.environ, **target.controlled.service_env}
    for name, value in change.items():
        env.pop(name, None) if value is None else env.__setitem__(name, value)
    result = subprocess.run(
        [*target.service_command, "--bind", "127.0.0.1:0"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert named in result.stderr
    assert "refusing to start" in result.stderr
    for value in change.values():
        if value:
            assert value not in result.stderr, "the bad value is not echoed"
