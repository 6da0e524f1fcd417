"""Runtime health check of a deployment, as the runbook's 운영 점검 asks (RB-OPS-HEALTHCHECK, RB-TRIAGE-SCOPE,
RB-OPS-VERDICTS).

    API_KEY=… python scripts/check_runtime_health.py --base-url http://localhost:8000
    API_KEY=… python scripts/check_runtime_health.py --base-url http://localhost:8000 --allow-ready-degraded

Checks `/health/live` and `/health/ready`, then reports one status per impact scope of the runbook's triage
(영향 범위: /api/*, auth, DB, Redis):

  api       GET /api/v1/events?limit=1 with the API key ($API_KEY or --api-key-file; without one: exit 2)
  auth      a request without credentials is refused 401 with a challenge, and the API key is accepted
  database  the readiness check `database`
  redis     the readiness check `redis` (or "not used" when the rate limiter keeps counters in memory)
  ...       every other check readiness reports (e.g. `schema`)

The last line is the verdict:
  HEALTHY        live and ready 200, every scope ok
  DEGRADED       with --allow-ready-degraded only: some scopes fail, each in a way the runbook's degraded mode
                 allows (readiness 503 `degraded`, a dependency down, the API 503 with Retry-After); the
                 line names every failing scope. An outage is never HEALTHY.
  UNHEALTHY      a scope fails (without --allow-ready-degraded, any failing scope; with it, live not 200,
                 readiness `draining`, an API error other than 503 with Retry-After, a refused API key)
  COULD NOT RUN  the deployment does not answer at all; one line says why
Every line shows the check, its latency and the request id to search the logs for.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any

import httpx

from chaos.invocation import program_name
from conformance.secret_options import add_secret_option, parse_without_echo, secret_epilog, secret_from
from conformance.tls import shared_tls_context
from conformance.verdicts import Health, base_url, exit_code_epilog, health_exit, unreachable_reason

OK, DEGRADED, FAIL, UNCHECKED, NOT_USED = "ok", "degraded", "fail", "unchecked", "not used"
# A scope in one of these states keeps the verdict from being HEALTHY.
FAILING = (DEGRADED, FAIL, UNCHECKED)
SCOPE_ORDER = ("database", "redis")  # always reported, in this order; other readiness checks follow


@dataclass
class Check:
    name: str
    status: str
    detail: str
    latency_ms: float | None = None
    request_id: str | None = None
    http_status: int | None = None


class Unreachable(Exception):
    """The deployment did not answer its first request: nothing could be checked."""


def _get(client: httpx.Client, path: str, **kwargs: Any) -> tuple[httpx.Response | None, float, str, str | None]:
    request_id = f"healthcheck-{uuid.uuid4().hex[:12]}"
    headers = {"X-Request-Id": request_id, **kwargs.pop("headers", {})}
    started = time.perf_counter()
    try:
        response = client.get(path, headers=headers, **kwargs)
    except httpx.HTTPError as error:
        reason = unreachable_reason(error, timeout_s=client.timeout.read or 0)
        return None, (time.perf_counter() - started) * 1000, request_id, reason
    return response, (time.perf_counter() - started) * 1000, response.headers.get("x-request-id", request_id), None


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _tolerable(allow_degraded: bool) -> str:
    """The status of a failure the runbook's degraded mode allows: only --allow-ready-degraded tolerates it."""
    return DEGRADED if allow_degraded else FAIL


def run_checks(base: str, *, api_key: str, timeout: float, allow_degraded: bool) -> list[Check]:
    """Every scope's check; raises Unreachable when the deployment does not answer /health/live at all."""
    checks: list[Check] = []
    with httpx.Client(verify=shared_tls_context(), base_url=base, timeout=timeout) as client:
        response, ms, rid, error = _get(client, "/health/live")
        if response is None:
            raise Unreachable(f"{base} does not answer /health/live: {error}")
        body = _json(response)
        good = response.status_code == 200 and body.get("status") == "alive"
        detail = f"{response.status_code} version={body.get('version')} started_at={body.get('started_at')}"
        checks.append(Check("live", OK if good else FAIL, detail, ms, rid, response.status_code))

        checks.append(ready := _check_ready(client, allow_degraded))
        checks.extend(_dependency_scopes(ready.body, allow_degraded, readiness_answered=ready.http_status is not None))

        api = _check_api(client, api_key, allow_degraded)
        checks.append(_check_auth(client, api))
        checks.append(api)
    return checks


@dataclass
class _Ready(Check):
    body: dict[str, Any] | None = None


def _check_ready(client: httpx.Client, allow_degraded: bool) -> _Ready:
    response, ms, rid, error = _get(client, "/health/ready")
    if response is None:
        return _Ready("ready", FAIL, error or "no response", ms, rid, body={})
    body = _json(response)
    state = body.get("status")
    if response.status_code == 200 and state == "ready":
        status = OK
    elif response.status_code == 503 and state == "degraded":
        status = _tolerable(allow_degraded)
    else:  # `draining` (the instance is going away) or anything off-contract
        status = FAIL
    failed = ",".join(body.get("failed_checks", [])) or "-"
    detail = f"{response.status_code} status={state} failed_checks={failed} schema={body.get('schema_revision')}"
    if body.get("expected_schema_revision") not in (None, body.get("schema_revision")):
        detail += f" (this release expects {body['expected_schema_revision']})"
    return _Ready("ready", status, detail, ms, rid, response.status_code, body=body)


def _dependency_scopes(
    ready_body: dict[str, Any] | None, allow_degraded: bool, *, readiness_answered: bool
) -> list[Check]:
    reported = (ready_body or {}).get("checks")
    reported = reported if isinstance(reported, dict) else {}
    scopes: list[Check] = []
    for scope in [*SCOPE_ORDER, *sorted(set(reported) - set(SCOPE_ORDER))]:
        found = reported.get(scope)
        if not isinstance(found, dict):
            in_memory = scope == "redis" and (ready_body or {}).get("rate_limit_backend") == "memory"
            if in_memory:
                scopes.append(Check(scope, NOT_USED, "rate limits in memory"))
            else:
                why = "not reported by readiness" if readiness_answered else "readiness did not answer"
                scopes.append(Check(scope, UNCHECKED, why))
            continue
        up = found.get("status") == "up"
        detail = f"{found.get('status')}" + (f" ({found['error']})" if found.get("error") else "")
        scopes.append(Check(scope, OK if up else _tolerable(allow_degraded), detail, found.get("latency_ms")))
    return scopes


def _check_api(client: httpx.Client, api_key: str, allow_degraded: bool) -> Check:
    response, ms, rid, error = _get(client, "/api/v1/events", params={"limit": 1}, headers={"X-API-Key": api_key})
    if response is None:
        return Check("api", FAIL, error or "no response", ms, rid)
    code = _json(response).get("code")
    if response.status_code == 200:
        status, detail = OK, "200 GET /api/v1/events"
    elif response.status_code in (401, 403):
        status, detail = FAIL, f"{response.status_code} {code}: not past authentication (see auth)"
    elif response.status_code == 503 and "retry-after" in response.headers:
        status, detail = _tolerable(allow_degraded), f"503 {code} (Retry-After {response.headers['retry-after']})"
    else:
        status, detail = FAIL, f"{response.status_code} {code}"
    return Check("api", status, detail, ms, rid, response.status_code)


def _check_auth(client: httpx.Client, api: Check) -> Check:
    """Both halves of authentication: the anonymous request is refused, and the API key is accepted.

    The key counts as accepted when the keyed request got past authentication, whatever came after it
    (a 503 during a database outage is an answer from behind the check)."""
    response, ms, rid, error = _get(client, "/api/v1/events", params={"limit": 1})
    if response is None:
        return Check("auth", FAIL, error or "no response", ms, rid)
    challenged = response.status_code == 401 and "www-authenticate" in response.headers
    detail = f"{response.status_code} without credentials" + ("" if challenged else " (expected 401 + challenge)")
    if api.http_status in (401, 403):
        status, detail = FAIL, f"{detail}; the API key is REFUSED ({api.detail.split(':')[0]})"
    elif api.http_status is None or api.http_status == 429:  # no answer, or throttled before authentication
        status, detail = (UNCHECKED if challenged else FAIL), f"{detail}; the API key could not be tried"
    else:
        status, detail = (OK if challenged else FAIL), f"{detail}; API key accepted"
    return Check("auth", status, detail, ms, rid, response.status_code)


def verdict_of(checks: list[Check]) -> tuple[Health, list[str]]:
    """HEALTHY only when no scope fails; DEGRADED when every failing scope is one degraded mode allows."""
    failing = [check.name for check in checks if check.status in FAILING]
    if any(check.status in (FAIL, UNCHECKED) for check in checks):
        return Health.UNHEALTHY, failing
    if failing:
        return Health.DEGRADED, failing
    return Health.HEALTHY, failing


def verdict_line(verdict: Health, failing: list[str], *, allow_degraded: bool) -> str:
    if verdict is Health.HEALTHY:
        return "HEALTHY"
    allowed = " (allowed by --allow-ready-degraded)" if verdict is Health.DEGRADED and allow_degraded else ""
    return f"{verdict}{allowed}: failing {', '.join(failing)}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=program_name("conformance.operator.health"),
        description=__doc__,
        allow_abbrev=False,
        epilog=exit_code_epilog(extra=secret_epilog("The API key", option="api-key", env="API_KEY")),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--base-url", required=True, help="the deployment, e.g. http://localhost:8000")
    parser.add_argument(
        "--allow-ready-degraded",
        action="store_true",
        help="accept the runbook's degraded mode: verdict DEGRADED (exit 0), naming every failing scope",
    )
    add_secret_option(parser, "the API key", option="api-key", env="API_KEY")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds per request (default 5)")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of lines")
    args = parse_without_echo(parser, argv)
    base = base_url(parser, args.base_url)
    api_key = secret_from(parser, args, option="api-key", env="API_KEY")
    if api_key is None:
        parser.error("the api and auth scopes need the API key: set API_KEY, or use --api-key-file PATH")

    allow = args.allow_ready_degraded
    checks: list[Check] = []
    failing: list[str] = []
    reason: str | None = None
    try:
        checks = run_checks(base, api_key=api_key, timeout=args.timeout, allow_degraded=allow)
    except Unreachable as unreachable:
        verdict, reason = Health.COULD_NOT_RUN, str(unreachable)
        line = f"{verdict}: {reason}; nothing was checked"
    else:
        verdict, failing = verdict_of(checks)
        line = verdict_line(verdict, failing, allow_degraded=allow)
    code = health_exit(verdict, degraded_allowed=allow)
    if args.json:
        document = {
            "verdict": str(verdict),
            "healthy": verdict is Health.HEALTHY,
            "exit_code": int(code),
            "failing": failing,
            "base_url": base,
            "checks": [{k: v for k, v in asdict(c).items() if k != "body"} for c in checks],
        }
        if reason:
            document["reason"] = reason
        print(json.dumps(document, indent=2))
    else:
        for check in checks:
            latency = f"{check.latency_ms:7.1f} ms" if check.latency_ms is not None else "          "
            request = f"  request_id={check.request_id}" if check.request_id else ""
            print(f"{check.status.upper():9} {check.name:9} {latency}  {check.detail}{request}")
        print(line)
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
