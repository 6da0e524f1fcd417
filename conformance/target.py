"""What the conformance checks run against: a deployment's URL and credentials, and, for the embedded stack,
the controls to break and restart its parts."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
import pytest

from chaos.stack.base import StackBackend
from conformance.suite_events import RUN_ID, SOURCE_PREFIX
from conformance.tls import shared_tls_context

# The operator commands the checks run, by the runbook's names for them (scripts/<name>), as the argv that
# runs each: `python -m` of its module, so an installed package (no checkout) runs them too.
OPERATOR_COMMANDS: dict[str, list[str]] = {
    "check_runtime_health.py": [sys.executable, "-m", "conformance.operator.health"],
    "check_payload_guards.py": [sys.executable, "-m", "conformance.operator.payload_guards"],
}

# Settings the embedded stack starts with: the defaults, spelled out so that a check can roll a change out
# and back; rate limits high enough that the suite's own traffic (Schemathesis included) is never throttled
# by accident (checks that need a low limit set it themselves); a short drain so restarts are quick; client
# bounds low enough that the hostile-input checks (which read them from /health/live) run in seconds (the
# header deadline is also the keep-alive idle time: a client finds an idle connection the service closed and
# opens a new one, httpx as Schemathesis).
EMBEDDED_SERVICE_ENV = {
    "MAX_REQUEST_BODY_BYTES": "1048576",
    "INGEST_MAX_BATCH_ITEMS": "1000",
    "DB_MAX_CONCURRENCY": "10",
    "DB_REQUEST_TIMEOUT_S": "2.0",
    "DB_STATEMENT_TIMEOUT_S": "1.5",
    "DB_QUEUE_TIMEOUT_S": "0.25",
    "DEGRADED_MODE": "none",
    "RATE_LIMIT_READ": "100000/minute",
    "RATE_LIMIT_WRITE": "100000/minute",
    "RATE_LIMIT_ANONYMOUS": "100000/minute",
    "RATE_LIMIT_PROBE_INTERVAL_S": "0.25",
    "DRAIN_DELAY_S": "0.3",
    "REQUEST_BODY_GRACE_S": "1.0",
    "REQUEST_HEADER_TIMEOUT_S": "2.0",
    "LIST_PAGE_MAX_BYTES": "262144",
    "EVENT_ATTRIBUTES_MAX_BYTES": "16384",
}


@dataclass
class Target:
    """A deployment under test. `stack` is set only when the suite controls the deployment."""

    base_url: str
    api_key: str | None
    jwt_secret: str | None
    stack: StackBackend | None = None
    service_command: list[str] = field(default_factory=lambda: [sys.executable, "-m", "service"])

    def client(self, timeout: float = 10.0, **kwargs: Any) -> httpx.Client:
        return httpx.Client(verify=shared_tls_context(), base_url=self.base_url, timeout=timeout, **kwargs)

    @property
    def auth(self) -> dict[str, str]:
        if not self.api_key:
            pytest.fail("this check needs an API key: set API_KEY for a remote target")
        return {"X-API-Key": self.api_key}

    def token(self, *, scopes: str | None = "events:read events:write", lifetime_s: int = 300, **claims: Any) -> str:
        """An HS256 token; checks that need one are not applicable without the target's JWT_SECRET."""
        if not self.jwt_secret:
            pytest.skip("not applicable: JWT_SECRET of the target was not given")
        # A subject of its own per token: each has its own rate-limit budget, shared with no other client.
        subject = f"{SOURCE_PREFIX}{RUN_ID}-{uuid.uuid4().hex[:8]}"
        payload: dict[str, Any] = {"sub": subject, "exp": int(time.time()) + lifetime_s}
        if scopes is not None:
            payload["scope"] = scopes
        payload.update(claims)
        return jwt.encode({k: v for k, v in payload.items() if v is not None}, self.jwt_secret, algorithm="HS256")

    def run_script(self, script: str, *extra: str) -> subprocess.CompletedProcess[str]:
        """One of the operator commands (OPERATOR_COMMANDS) against this target, as an operator runs it.

        The key travels in the environment only (never on argv, where `ps` shows it), and it is this target's
        key or none: an API_KEY of the suite's own environment is not passed on."""
        env = {name: value for name, value in os.environ.items() if name != "API_KEY"}
        if self.api_key:
            env["API_KEY"] = self.api_key
        return subprocess.run(
            [*OPERATOR_COMMANDS[script], "--base-url", self.base_url, *extra],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            check=False,
        )

    @property
    def controlled(self) -> StackBackend:
        if self.stack is None:
            pytest.skip("not applicable to a remote target")
        return self.stack

    @contextmanager
    def service_env(self, overrides: Mapping[str, str]) -> Iterator[None]:
        """Roll the service out with `overrides`, then roll the previous values back."""
        stack = self.controlled
        unknown = sorted(set(overrides) - set(stack.service_env))
        if unknown:
            raise AssertionError(f"{unknown} must be set in EMBEDDED_SERVICE_ENV so a rollout can be rolled back")
        previous = {name: stack.service_env[name] for name in overrides}
        stack.restart_service(dict(overrides))
        try:
            yield
        finally:
            stack.restart_service(previous)


# -- the anonymous rate limit ---------------------------------------------------------------------------------
# Requests without valid credentials are counted per client address (RATE_LIMIT_ANONYMOUS, 120/minute by
# default), a budget the suite shares with every other client at its address: an earlier run, an operator's
# curl. The suite's own checks spend a few dozen; a 429 of that policy is waited out as its Retry-After asks,
# at most this long in all, so that a check of a 401 shows the service's answer, not someone else's spending.
ANONYMOUS_WAIT_BOUND_S = 65.0


Call = tuple[str, str, dict[str, str], Any]  # method, path, headers, JSON body


def answers_of_every_kind(target: Target) -> list[Call]:
    """One request per kind of answer a header must be on: a 200, a 401, a 404 and a 422 (problem+json)."""
    return [
        ("GET", "/health/live", {}, None),
        ("GET", "/api/v1/events", {}, None),  # 401
        ("GET", f"/api/v1/events/{uuid.uuid4()}", target.auth, None),  # 404
        ("POST", "/api/v1/events", target.auth, {"nonsense": True}),  # 422
    ]


def rate_limited_policy(response: httpx.Response) -> str | None:
    """The policy a 429 RATE_LIMITED answer names (None for any other answer)."""
    if response.status_code != 429:
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    return str(body.get("policy")) if isinstance(body, dict) and body.get("code") == "RATE_LIMITED" else None


def retry_after_s(response: httpx.Response, default: float = 1.0) -> float:
    try:
        return max(0.0, float(response.headers.get("retry-after", default)))
    except ValueError:
        return default


def send_anonymous(
    client: httpx.Client, method: str, path: str, *, bound_s: float = ANONYMOUS_WAIT_BOUND_S, **kwargs: Any
) -> httpx.Response:
    """A request the service counts against the anonymous limit, sent again after the Retry-After of a 429
    of that policy (bounded: past `bound_s` in all, the 429 is returned and the check shows it)."""
    waited = 0.0
    while True:
        response = client.request(method, path, **kwargs)
        if rate_limited_policy(response) != "anonymous":
            return response
        delay = max(retry_after_s(response), 0.2)
        if waited + delay > bound_s:
            return response
        time.sleep(delay)
        waited += delay


# -- before any check: can the suite run against this target at all? ------------------------------------------
class CouldNotRun(Exception):
    """The suite cannot check this target (exit 3); the message is one line and names no secret."""


PRECHECK_TIMEOUT_S = 5.0


def _unreachable(base_url: str, error: httpx.HTTPError) -> CouldNotRun:
    if isinstance(error, httpx.TimeoutException):
        reason = f"no answer within {PRECHECK_TIMEOUT_S:g} s"
    else:
        reason = str(error) or type(error).__name__
    return CouldNotRun(f"target unreachable: {base_url} ({reason})")


def _wait_out_anonymous_limit(
    client: httpx.Client, base_url: str, progress: Callable[[str], None], bound_s: float
) -> None:
    """If an earlier run or another client spent the anonymous budget, wait until it refills (bounded)."""
    response = client.get("/api/v1/events", params={"limit": 1})
    if rate_limited_policy(response) != "anonymous":
        return
    window_s = _policy_window_s(response)
    waited = 0.0
    while rate_limited_policy(response) == "anonymous":
        delay = max(retry_after_s(response), 0.5)
        if waited + delay + window_s > bound_s:
            raise CouldNotRun(
                f"the anonymous rate limit of {base_url} is spent and refills in {delay:g} s, more than this run "
                f"waits ({bound_s:g} s): it counts requests without valid credentials per client address"
            )
        progress(
            f"the anonymous rate limit of {base_url} is spent (by an earlier run or another client at this "
            f"address); waiting {delay:g} s as its Retry-After asks"
        )
        time.sleep(delay)
        waited += delay
        response = client.get("/api/v1/events", params={"limit": 1})
    # Under a sliding window the budget comes back gradually: one more window and the earlier spending no
    # longer counts, so the checks of 401 answers have the whole budget.
    progress(f"waiting {window_s:g} s more for the whole anonymous budget to be back")
    time.sleep(window_s)


def _policy_window_s(response: httpx.Response) -> float:
    """`w` of the RateLimit-Policy header (`"anonymous";q=120;w=60`), else a minute."""
    for part in response.headers.get("ratelimit-policy", "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == "w" and value.isdigit():
            return float(value)
    return 60.0


def precheck(
    base_url: str,
    *,
    api_key: str,
    jwt_secret: str | None,
    progress: Callable[[str], None],
    rate_limit_wait_bound_s: float = 2 * ANONYMOUS_WAIT_BOUND_S,
) -> None:
    """Before any check: the target answers, and accepts the API key (and tokens signed with JWT_SECRET).

    Raises CouldNotRun with one line otherwise. A 5xx is not a reason to stop: showing it is the checks'
    job. Costs one anonymous request, and one more only when the key is refused."""
    with httpx.Client(verify=shared_tls_context(), base_url=base_url, timeout=PRECHECK_TIMEOUT_S) as client:
        try:
            client.get("/health/live")
            _wait_out_anonymous_limit(client, base_url, progress, rate_limit_wait_bound_s)
            keyed = client.get("/api/v1/events", params={"limit": 1}, headers={"X-API-Key": api_key})
            if keyed.status_code in (401, 403) or rate_limited_policy(keyed) == "anonymous":
                raise CouldNotRun(f"the API key was refused by {base_url} ({keyed.status_code})")
            if keyed.status_code == 404:
                raise CouldNotRun(f"no events API at {base_url}: GET /api/v1/events answered 404")
            if jwt_secret:
                claims = {"sub": f"{SOURCE_PREFIX}{RUN_ID}-precheck", "scope": "events:read"}
                token = jwt.encode({**claims, "exp": int(time.time()) + 60}, jwt_secret, algorithm="HS256")
                bearer = client.get("/api/v1/events", params={"limit": 1}, headers={"Authorization": f"Bearer {token}"})
                if bearer.status_code in (401, 403):
                    raise CouldNotRun(
                        f"a token signed with JWT_SECRET was refused by {base_url} ({bearer.status_code}): "
                        "is it the target's secret?"
                    )
        except httpx.HTTPError as error:
            raise _unreachable(base_url, error) from None
