"""Authentication: who is calling, from an API key or an HS256 JWT, and from which address.

Nothing here knows about routes: the route decorators that use it (`@require_scope`, `@rate_limited`,
`@public`) are in service/route_policy.py.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network, ip_address
from typing import Any, Final

import jwt

from service.bounds import MAX_SUBJECT_CHARS
from service.errors import ApiError

log = logging.getLogger("service.auth")

READ: Final = "events:read"
WRITE: Final = "events:write"
ALL_SCOPES: Final = frozenset({READ, WRITE})
REALM: Final = "events-api"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: `api-key` for the machine client, `jwt:<sub>` for token holders."""

    id: str
    scopes: frozenset[str]


@dataclass(frozen=True, slots=True)
class AuthConfig:
    """What credentials are checked against, from `Settings`."""

    api_key: bytes
    jwt_secret: str
    jwt_issuer: str | None
    jwt_audience: str | None
    trusted_proxies: tuple[IPv4Network | IPv6Network, ...] = ()


def client_address(
    peer: str | None, forwarded_for: str | None, trusted_proxies: tuple[IPv4Network | IPv6Network, ...]
) -> str:
    """The caller's address: the peer, or, when the peer is a trusted proxy, the nearest untrusted hop
    of X-Forwarded-For (clients can put anything at the left end of that header)."""
    peer = peer or "unknown"
    if not trusted_proxies or not _is_trusted(peer, trusted_proxies):
        return peer
    hops = [hop.strip() for hop in (forwarded_for or "").split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _is_trusted(hop, trusted_proxies):
            return hop
    return hops[0] if hops else peer


def _is_trusted(address: str, trusted_proxies: tuple[IPv4Network | IPv6Network, ...]) -> bool:
    try:
        ip = ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted_proxies)


INVALID_CREDENTIALS: Final = "The credentials are not valid."


def _unauthenticated(detail: str, *, token_error: bool, reason: str | None = None) -> ApiError:
    """401 with a challenge. The body says only what the client can act on; why a credential was refused
    (which check failed, PyJWT's own words) goes to the log, with the request id, for the operator."""
    if reason is not None:
        log.info("credentials refused", extra={"reason": reason})
    challenge = f'Bearer realm="{REALM}"'
    if token_error:
        challenge += ', error="invalid_token"'
    return ApiError(401, "UNAUTHENTICATED", detail, headers={"WWW-Authenticate": challenge})


def _scopes_from_claims(claims: dict[str, Any]) -> frozenset[str]:
    """RFC 8693 `scope` (space-separated) or a `scopes`/`scp` list."""
    raw = claims.get("scope", claims.get("scopes", claims.get("scp", ())))
    items = raw.split() if isinstance(raw, str) else raw
    if not isinstance(items, list | tuple):
        return frozenset()
    return frozenset(item for item in items if isinstance(item, str))


def authenticate(config: AuthConfig, api_key: str | None, authorization: str | None) -> Principal:
    """The caller's principal, or ApiError 401. An API key, when sent, is decisive."""
    if api_key is not None:
        if hmac.compare_digest(api_key.encode(), config.api_key):
            return Principal(id="api-key", scopes=ALL_SCOPES)
        raise _unauthenticated(INVALID_CREDENTIALS, token_error=False, reason="X-API-Key does not match API_KEY")
    if authorization is None:
        raise _unauthenticated("Send X-API-Key or Authorization: Bearer <JWT>.", token_error=False)
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthenticated("The Authorization header must be 'Bearer <JWT>'.", token_error=True)
    try:
        claims = jwt.decode(
            token.strip(),
            config.jwt_secret,
            algorithms=["HS256"],  # pinned: `none` and every other algorithm are refused
            issuer=config.jwt_issuer,
            audience=config.jwt_audience,
            options={"require": ["exp", "sub"], "verify_aud": config.jwt_audience is not None},
        )
    except jwt.InvalidTokenError as error:  # expired, bad signature, wrong issuer or audience, malformed
        reason = f"{type(error).__name__}: {error}"
        raise _unauthenticated(INVALID_CREDENTIALS, token_error=True, reason=reason) from None
    subject = claims["sub"]
    if not isinstance(subject, str) or not subject or len(subject) > MAX_SUBJECT_CHARS:
        reason = f"`sub` must be a string of 1 to {MAX_SUBJECT_CHARS} characters"
        raise _unauthenticated(INVALID_CREDENTIALS, token_error=True, reason=reason)
    return Principal(id=f"jwt:{subject}", scopes=_scopes_from_claims(claims))
