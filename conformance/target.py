"""What the conformance checks run against: a deployment's URL and credentials, and, for the embedded stack,
the controls to break and restart its parts."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from chaos.stack import StackBackend

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"

# Settings the embedded stack starts with: the defaults, spelled out so that a check can roll a change out
# and back; rate limits high enough that the suite's own traffic (Schemathesis included) is never throttled
# by accident (checks that need a low limit set it themselves); a short drain so restarts are quick; client
# bounds low enough that the hostile-input checks (which read them from /health/live) run in seconds.
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
        return httpx.Client(base_url=self.base_url, timeout=timeout, **kwargs)

    @property
    def auth(self) -> dict[str, str]:
        if not self.api_key:
            pytest.fail("this check needs an API key: set API_KEY for a remote target")
        return {"X-API-Key": self.api_key}

    def token(self, *, scopes: str | None = "events:read events:write", lifetime_s: int = 300, **claims: Any) -> str:
        """An HS256 token; checks that need one are not applicable without the target's JWT_SECRET."""
        if not self.jwt_secret:
            pytest.skip("not applicable: JWT_SECRET of the target was not given")
        payload: dict[str, Any] = {"sub": f"conformance-{uuid.uuid4().hex[:8]}", "exp": int(time.time()) + lifetime_s}
        if scopes is not None:
            payload["scope"] = scopes
        payload.update(claims)
        return jwt.encode({k: v for k, v in payload.items() if v is not None}, self.jwt_secret, algorithm="HS256")

    def run_script(self, script: str, *extra: str) -> subprocess.CompletedProcess[str]:
        """One of the operator commands in scripts/ against this target, as an operator runs it.

        The key travels in the environment only (never on argv, where `ps` shows it), and it is this target's
        key or none: an API_KEY of the suite's own environment is not passed on."""
        env = {name: value for name, value in os.environ.items() if name != "API_KEY"}
        if self.api_key:
            env["API_KEY"] = self.api_key
        return subprocess.run(
            [sys.executable, str(SCRIPTS / script), "--base-url", self.base_url, *extra],
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
