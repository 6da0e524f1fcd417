"""Keyset-pagination cursors that only this API can issue.

A cursor is the position (occurred_at, id) of the last event of a page, signed with HMAC-SHA256 under a key
derived from `JWT_SECRET` (every replica of a deployment shares it, so a cursor from one replica works on
another). Anything else a client sends as a cursor — truncated, edited, forged, another format, arbitrary
JSON — is refused with 400 `INVALID_CURSOR` before it reaches the database. Positions come only from rows
this service returned, so a cursor cannot name a timestamp PostgreSQL would fail to convert (year 0 after an
offset, for instance). Rotating `JWT_SECRET` invalidates outstanding cursors; clients start again.

Format: `<base64url(JSON [occurred_at RFC 3339, id])>.<base64url(first 16 bytes of the HMAC)>`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from datetime import datetime
from typing import Final
from uuid import UUID

import orjson

from service.errors import ApiError

Position = tuple[datetime, UUID]
_TAG_BYTES: Final = 16
_KEY_CONTEXT: Final = b"events-api cursor v1"


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _b64decode(text: str) -> bytes:
    """Strict: only the canonical spelling (base64 ignores the unused low bits of the last character, so
    several spellings would decode to the same bytes and a tampered cursor could pass)."""
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64encode(raw) != text:
        raise ValueError("not canonical base64url")
    return raw


def invalid_cursor() -> ApiError:
    return ApiError(400, "INVALID_CURSOR", "The cursor is not one this API issued; start again without it.")


class CursorCodec:
    """Signs positions into cursors and checks cursors back into positions."""

    def __init__(self, secret: str) -> None:
        self._key = hmac.new(secret.encode(), _KEY_CONTEXT, hashlib.sha256).digest()

    def _tag(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()[:_TAG_BYTES]

    def encode(self, position: Position) -> str:
        occurred_at, event_id = position
        payload = orjson.dumps([occurred_at.isoformat(), str(event_id)])
        return f"{_b64encode(payload)}.{_b64encode(self._tag(payload))}"

    def decode(self, cursor: str) -> Position:
        """The position a cursor stands for, or ApiError 400 INVALID_CURSOR."""
        payload_text, separator, tag_text = cursor.partition(".")
        if not separator or not cursor.isascii():
            raise invalid_cursor()
        try:
            payload, tag = _b64decode(payload_text), _b64decode(tag_text)
        except (binascii.Error, ValueError):
            raise invalid_cursor() from None
        if not hmac.compare_digest(tag, self._tag(payload)):
            raise invalid_cursor()
        # Signed by us, so well-formed; checked all the same, since a leaked key must not turn into a 500.
        try:
            occurred_at_text, id_text = orjson.loads(payload)
            occurred_at = datetime.fromisoformat(occurred_at_text)
            if occurred_at.utcoffset() is None:
                raise ValueError("naive timestamp")
            return occurred_at, UUID(id_text)
        except (orjson.JSONDecodeError, ValueError, TypeError, AttributeError):
            raise invalid_cursor() from None
