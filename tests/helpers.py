"""Helpers shared by tests: credentials, tokens, event payloads."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt

TEST_API_KEY = "test-api-key-0123456789abcdef"
TEST_JWT_SECRET = "test-jwt-secret-that-is-at-least-32-bytes-long!"
API_KEY_HEADERS = {"X-API-Key": TEST_API_KEY}


def make_token(
    *,
    scopes: str | None = "events:read events:write",
    sub: str | None = "tester",
    lifetime_s: int | None = 300,
    **claims: Any,
) -> str:
    """An HS256 token signed with the test secret; a claim given as None is left out."""
    expires = int(time.time()) + lifetime_s if lifetime_s is not None else None
    payload = {"sub": sub, "scope": scopes, "exp": expires, **claims}
    return jwt.encode({k: v for k, v in payload.items() if v is not None}, TEST_JWT_SECRET, algorithm="HS256")


def event(source: str | None = None, **fields: Any) -> dict[str, Any]:
    """A valid event payload; `source` defaults to a unique value so tests do not see each other's rows."""
    body: dict[str, Any] = {
        "source": source or f"test-{uuid.uuid4().hex[:10]}",
        "type": "order.placed",
        "occurred_at": "2026-11-20T10:00:00Z",
        "attributes": {"amount": 42},
    }
    body.update(fields)
    return body
