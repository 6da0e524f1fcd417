"""What a route demands of its caller before its handler runs: the route decorators, in one fixed order.

Every route is marked exactly one way: `@public` says on purpose that anyone may call it (health, metrics,
API documents, never rate limited), and an API route carries `@rate_limited(scope)` directly above
`@require_scope(scope)` (the scope is also the rate-limit policy). `tests/service/test_route_policy.py` walks
the URL map and fails when a route carries neither mark, so an unprotected route cannot slip in.

Decorator order on an API route, outermost first, which is the order the steps run in:

    @blueprint.get("/events")        # the route
    @rate_limited(READ)              # 1. who is calling (401) and how often (429)
    @require_scope(READ)             # 2. what it may do (403)
    @document_response(...)          # 3. documentation only (quart-schema, `@problems`)
    async def list_events() -> Response: ...

so a caller meets the checks in this order:
1. without valid credentials, the request counts against the caller's address (the `anonymous` policy):
   429 when over that limit, else 401;
2. authenticated, it counts against its principal under the route's policy: 429 when over;
3. without the route's scope: 403.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from functools import wraps
from typing import Any, Final, ParamSpec, TypeVar

from quart import g, request

from service.auth import ALL_SCOPES, REALM, AuthConfig, Principal, authenticate, client_address
from service.errors import ApiError
from service.ratelimit import PolicyName
from service.request_state import Credentials, current_request
from service.state import app_state

AUTH_SCOPE_ATTRIBUTE: Final = "_auth_required_scope"
PUBLIC_ATTRIBUTE: Final = "_auth_public"
RATE_LIMIT_ATTRIBUTE: Final = "_rate_limit_policy"

P = ParamSpec("P")
R = TypeVar("R")


# The principal `@rate_limited` authenticated, for `@require_scope` below it: set around that inner call only,
# so it never outlives the request (`g` could: Quart reuses an application context that is already active).
_authenticated: ContextVar[Principal | None] = ContextVar("authenticated_principal", default=None)


def _credentials() -> Credentials:
    """This request's credential headers: as the edge found them, or from Quart's request without the edge."""
    state = current_request.get()
    if state is not None:
        return state.credentials
    headers = request.headers
    return Credentials(headers.get("X-API-Key"), headers.get("Authorization"), headers.get("X-Forwarded-For"))


def _authenticate_request(config: AuthConfig, credentials: Credentials) -> Principal:
    """The caller's principal from this request's credentials, or ApiError 401."""
    return authenticate(config, credentials.api_key, credentials.authorization)


def rate_limited(policy: PolicyName) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """Step 1 of an API route: authenticate the caller and count the request against its rate limit.

    Without valid credentials the request counts against the caller's address (the `anonymous` policy), so
    guessing keys is throttled: 429 when over that limit, else the 401. Authenticated, it counts against its
    principal under `policy`: 429 RATE_LIMITED with Retry-After and RateLimit headers when over. Goes
    directly above `@require_scope(policy)`, which checks the scope next (see the module docstring).
    """
    if policy not in ALL_SCOPES:
        raise ValueError(f"unknown rate-limit policy for a route {policy!r}")

    def decorator(func: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        if route_auth_policy(func) != policy:
            raise TypeError(f"@rate_limited({policy!r}) goes directly above @require_scope({policy!r})")

        @wraps(func)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            state = app_state()
            limiter = state.rate_limiter
            credentials = _credentials()
            try:
                principal = _authenticate_request(state.auth, credentials)
            except ApiError:
                caller = client_address(request.remote_addr, credentials.forwarded_for, state.auth.trusted_proxies)
                await limiter.check("anonymous", caller)
                raise
            await limiter.check(policy, principal.id)
            token = _authenticated.set(principal)
            try:
                return await func(*args, **kwargs)
            finally:
                _authenticated.reset(token)

        setattr(wrapper, RATE_LIMIT_ATTRIBUTE, policy)
        return wrapper

    return decorator


def require_scope(scope: str) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """Step 2 of an API route: require `scope` of the authenticated caller, else 403 INSUFFICIENT_SCOPE.

    Below `@rate_limited(scope)` the caller is authenticated (and counted) already; on its own this
    authenticates it (401). The principal is recorded here, once it has passed the rate limit: in the access
    log, and in `g.principal` for the handler.
    """
    if scope not in ALL_SCOPES:
        raise ValueError(f"unknown scope {scope!r}")

    def decorator(func: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        @wraps(func)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            principal = _authenticated.get()
            if principal is None:  # not below `@rate_limited`
                principal = _authenticate_request(app_state().auth, _credentials())
            state = current_request.get()
            if state is not None:
                state.principal = principal.id
            g.principal = principal  # for the handler
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
    """Mark a route as deliberately open to anyone (health, metrics, API documents): no auth, no rate limit."""
    setattr(func, PUBLIC_ATTRIBUTE, True)
    return func


def route_auth_policy(view: Callable[..., Any]) -> str | None:
    """'public', the required scope, or None when the route is unmarked (a policy violation)."""
    if getattr(view, PUBLIC_ATTRIBUTE, False):
        return "public"
    scope = getattr(view, AUTH_SCOPE_ATTRIBUTE, None)
    return scope if isinstance(scope, str) else None


def route_rate_limit_policy(view: Callable[..., Any]) -> str | None:
    """The rate-limit policy of a route, or None when it is not rate limited (public routes)."""
    policy = getattr(view, RATE_LIMIT_ATTRIBUTE, None)
    return policy if isinstance(policy, str) else None
