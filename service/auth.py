"""Authentication (API key, HS256 JWT) and the route policy markers.

Every route is marked exactly one way: `@require_scope("events:read")` authenticates and checks a scope, and
`@public` says on purpose that anyone may call it. `tests/unit/test_route_policy.py` walks the URL map and
fails when a route carries neither mark, so an unprotected route cannot slip in.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import wraps
from ipaddress import IPv4Network, IPv6Network, ip_address
from typing import Any, Final, ParamSpec, TypeVar

import jwt
from quart import current_app, g, request

from service.bounds import MAX_SUBJECT_CHARS
from service.context import current_request
from service.errors import ApiError

log = logging.getLogger("service.auth")

READ: Final = "events:read"
WRITE: Final = "events:write"
ALL_SCOPES: Final = frozenset({READ, WRITE})
REALM: Final = "events-api"

# The scope is also the rate-limit policy: every authenticated route is limited, every public one is not.
AUTH_SCOPE_ATTRIBUTE: Final = "_auth_required_scope"
PUBLIC_ATTRIBUTE: Final = "_auth_public"

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: `api-key` for the machine client, `jwt:<sub>` for token holders."""

    id: str
    scopes: frozenset[str]


@dataclass(frozen=True, slots=True)
class AuthConfig:
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


def require_scope(scope: str) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """Authenticate the caller, count the request against its rate limit, and require `scope`.

    401 without valid credentials (counted per client address), 429 over the limit, 403 without the scope.
    """
    if scope not in ALL_SCOPES:
        raise ValueError(f"unknown scope {scope!r}")

    def decorator(func: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        @wraps(func)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            config: AuthConfig = current_app.config["AUTH"]
            limiter = current_app.config["RATE_LIMITER"]
            try:
                principal = authenticate(config, request.headers.get("X-API-Key"), request.headers.get("Authorization"))
            except ApiError:
                # Failed authentication counts against the caller's address: guessing keys is throttled.
                caller = client_address(
                    request.remote_addr, request.headers.get("X-Forwarded-For"), config.trusted_proxies
                )
                await limiter.check("anonymous", caller)
                raise
            await limiter.check(scope, principal.id)
            state = current_request.get()
            if state is not None:
                state.principal = principal.id
            g.principal = principal
            if scope not in principal.scopes:
                raise ApiError(
                    403,
                    "INSUFFICIENT_SCOPE",
                    f"This operation needs the `{scope}` scope.",
                    headers={
                        "WWW-Authenticate": (f'Bearer realm="{REALM}", error="insufficient_scope", scope="{scope}"')
                    },
                )
            return await func(*args, **kwargs)

        setattr(wrapper, AUTH_SCOPE_ATTRIBUTE, scope)
        return wrapper

    return decorator


def public(func: Callable[P, R]) -> Callable[P, R]:
    """Mark a route as deliberately open to anyone (health, metrics, API documents)."""
    setattr(func, PUBLIC_ATTRIBUTE, True)
    return func


def route_auth_policy(view: Callable[..., Any]) -> str | None:
    """'public', the required scope, or None when the route is unmarked (a policy violation)."""
    if getattr(view, PUBLIC_ATTRIBUTE, False):
        return "public"
    scope = getattr(view, AUTH_SCOPE_ATTRIBUTE, None)
    return scope if isinstance(scope, str) else None
