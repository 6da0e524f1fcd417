"""A quick end-to-end check of a running deployment: health, ingest, query, guards, auth.

It writes at most two events (tagged `source=conformance-smoke`) and nothing when a guard refuses.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx

from conformance.tls import shared_tls_context


@dataclass(frozen=True, slots=True)
class SmokeResult:
    name: str
    passed: bool | None  # None: not applicable to this deployment
    detail: str


def run_smoke(base_url: str, api_key: str, *, timeout: float = 5.0) -> list[SmokeResult]:
    results: list[SmokeResult] = []
    auth = {"X-API-Key": api_key}
    now = datetime.now(UTC).replace(microsecond=0)
    event_id = str(uuid.uuid4())
    event = {
        "id": event_id,
        "source": "conformance-smoke",
        "type": "smoke.check",
        "occurred_at": now.isoformat(),
    }

    with httpx.Client(verify=shared_tls_context(), base_url=base_url, timeout=timeout) as client:

        def check(name: str, call: Callable[[], httpx.Response], expect: int, code: str | None = None) -> None:
            try:
                response = call()
            except httpx.HTTPError as error:
                results.append(SmokeResult(name, False, f"{type(error).__name__}: {error}"))
                return
            got_code = (
                response.json().get("code")
                if response.headers.get("content-type", "").endswith("json") and response.content
                else None
            )
            passed = response.status_code == expect and (code is None or got_code == code)
            detail = f"{response.status_code}" + (f" {got_code}" if got_code else "")
            detail += f" (request id {response.headers.get('x-request-id', 'MISSING')})"
            results.append(SmokeResult(name, passed, detail))

        limits = {}
        check("live", lambda: client.get("/health/live"), 200)
        check("ready", lambda: client.get("/health/ready"), 200)
        with contextlib.suppress(httpx.HTTPError, ValueError):
            limits = client.get("/health/live").json().get("limits", {})
        check("ingest", lambda: client.post("/api/v1/events", json=event, headers=auth), 201)
        check("ingest again is idempotent", lambda: client.post("/api/v1/events", json=event, headers=auth), 200)
        check("get by id", lambda: client.get(f"/api/v1/events/{event_id}", headers=auth), 200)
        check(
            "list",
            lambda: client.get("/api/v1/events", params={"source": "conformance-smoke"}, headers=auth),
            200,
        )
        since = (now - timedelta(hours=1)).isoformat()
        until = (now + timedelta(hours=1)).isoformat()
        check(
            "stats",
            lambda: client.get("/api/v1/events/stats", params={"since": since, "until": until}, headers=auth),
            200,
        )
        check("no credentials", lambda: client.get("/api/v1/events"), 401, "UNAUTHENTICATED")
        body_limit = int(limits.get("max_request_body_bytes", 1_048_576))
        check(
            "oversized body",
            lambda: client.post(
                "/api/v1/events",
                content=b"x" * (body_limit + 1),
                headers={**auth, "Content-Type": "application/json"},
            ),
            413,
            "PAYLOAD_TOO_LARGE",
        )
        batch_limit = int(limits.get("ingest_max_batch_items", 1000))
        minimal = {"source": "conformance-smoke", "type": "smoke.batch", "occurred_at": now.isoformat()}
        over_limit = json.dumps({"items": [minimal] * (batch_limit + 1)}).encode()
        if len(over_limit) > body_limit:
            results.append(
                SmokeResult("over-limit batch", None, "not reachable: such a batch is already over the body limit")
            )
        else:
            check(
                "over-limit batch",
                lambda: client.post(
                    "/api/v1/events", content=over_limit, headers={**auth, "Content-Type": "application/json"}
                ),
                413,
                "INGEST_BATCH_TOO_LARGE",
            )
    return results
