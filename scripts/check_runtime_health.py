"""Runtime health check of a deployment, as the runbook's 운영 점검 asks (RB-OPS-HEALTHCHECK, RB-TRIAGE-SCOPE).

    python scripts/check_runtime_health.py --base-url http://localhost:8000
    python scripts/check_runtime_health.py --base-url http://localhost:8000 --allow-ready-degraded

Checks `/health/live` and `/health/ready`, then reports one status per impact scope of the runbook's triage
(영향 범위: /api/*, auth, DB, Redis):

  api       GET /api/v1/events?limit=1 with the API key (needs $API_KEY or --api-key-file; else "unchecked")
  auth      a request without credentials is refused 401 with a challenge; the API key is accepted
  database  the readiness check `database`
  redis     the readiness check `redis` (or "not used" when the rate limiter keeps counters in memory)

Exit status 0 when live and ready are 200 and no scope is failing; with --allow-ready-degraded, a ready 503
whose status is `degraded` is also accepted, and so are scopes failing only because a dependency is
unavailable (503 with Retry-After). Live must always be 200. Exit 1 otherwise, 2 on bad usage.
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

from conformance.secret_options import add_secret_option, parse_without_echo, secret_epilog, secret_from

OK, DEGRADED, FAIL, UNCHECKED, NOT_USED = "ok", "degraded", "fail", "unchecked", "not used"


@dataclass
class Check:
    name: str
    status: str
    detail: str
    latency_ms: float | None = None
    request_id: str | None = None
    http_status: int | None = None


def _get(client: httpx.Client, path: str, **kwargs: Any) -> tuple[httpx.Response | None, float, str, str | None]:
    request_id = f"healthcheck-{uuid.uuid4().hex[:12]}"
    headers = {"X-Request-Id": request_id, **kwargs.pop("headers", {})}
    started = time.perf_counter()
    try:
        response = client.get(path, headers=headers, **kwargs)
    except httpx.HTTPError as error:
        return None, (time.perf_counter() - started) * 1000, request_id, f"{type(error).__name__}: {error}"
    return response, (time.perf_counter() - started) * 1000, response.headers.get("x-request-id", request_id), None


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def run_checks(base_url: str, *, api_key: str | None, timeout: float, allow_degraded: bool) -> list[Check]:
    checks: list[Check] = []
    with httpx.Client(base_url=base_url, timeout=timeout) as client:
        response, ms, rid, error = _get(client, "/health/live")
        if response is None:
            checks.append(Check("live", FAIL, error or "no response", ms, rid))
        else:
            body = _json(response)
            good = response.status_code == 200 and body.get("status") == "alive"
            detail = f"{response.status_code} version={body.get('version')} started_at={body.get('started_at')}"
            checks.append(Check("live", OK if good else FAIL, detail, ms, rid, response.status_code))

        response, ms, rid, error = _get(client, "/health/ready")
        ready_body: dict[str, Any] = {}
        if response is None:
            checks.append(Check("ready", FAIL, error or "no response", ms, rid))
        else:
            ready_body = _json(response)
            state = ready_body.get("status")
            if response.status_code == 200 and state == "ready":
                status = OK
            elif response.status_code == 503 and state == "degraded":
                status = DEGRADED if allow_degraded else FAIL
            else:
                status = FAIL
            failed = ",".join(ready_body.get("failed_checks", [])) or "-"
            schema = ready_body.get("schema_revision")
            detail = f"{response.status_code} status={state} failed_checks={failed} schema={schema}"
            checks.append(Check("ready", status, detail, ms, rid, response.status_code))

        dependency_checks = ready_body.get("checks", {}) if isinstance(ready_body.get("checks"), dict) else {}
        for scope in ("database", "redis"):
            found = dependency_checks.get(scope)
            if found is None:
                used = scope != "redis" or ready_body.get("rate_limit_backend") != "memory"
                status, detail = (
                    (UNCHECKED, "not reported by readiness") if used else (NOT_USED, "rate limits in memory")
                )
                checks.append(Check(scope, status, detail))
                continue
            up = found.get("status") == "up"
            detail = f"{found.get('status')}" + (f" ({found['error']})" if found.get("error") else "")
            checks.append(
                Check(scope, OK if up else (DEGRADED if allow_degraded else FAIL), detail, found.get("latency_ms"))
            )

        api = _check_api(client, api_key, allow_degraded)
        checks.append(_check_auth(client, api_key_accepted=api.status == OK))
        checks.append(api)
    return checks


def _check_auth(client: httpx.Client, *, api_key_accepted: bool) -> Check:
    response, ms, rid, error = _get(client, "/api/v1/events", params={"limit": 1})
    if response is None:
        return Check("auth", FAIL, error or "no response", ms, rid)
    challenged = response.status_code == 401 and "www-authenticate" in response.headers
    detail = f"{response.status_code} without credentials" + ("" if challenged else " (expected 401 + challenge)")
    if api_key_accepted:
        detail += "; API key accepted"
    return Check("auth", OK if challenged else FAIL, detail, ms, rid, response.status_code)


def _check_api(client: httpx.Client, api_key: str | None, allow_degraded: bool) -> Check:
    if api_key is None:
        return Check("api", UNCHECKED, "no API key (set API_KEY or use --api-key-file)")
    response, ms, rid, error = _get(client, "/api/v1/events", params={"limit": 1}, headers={"X-API-Key": api_key})
    if response is None:
        return Check("api", FAIL, error or "no response", ms, rid)
    code = _json(response).get("code")
    if response.status_code == 200:
        status, detail = OK, "200 GET /api/v1/events"
    elif response.status_code in (401, 403):
        status, detail = FAIL, f"{response.status_code} {code}: the API key is not accepted"
    elif response.status_code == 503 and "retry-after" in response.headers:
        status, detail = (DEGRADED if allow_degraded else FAIL), f"503 {code}"
    else:
        status, detail = FAIL, f"{response.status_code} {code}"
    return Check("api", status, detail, ms, rid, response.status_code)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__,
        allow_abbrev=False,
        epilog=secret_epilog("The API key", option="api-key", env="API_KEY"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--base-url", required=True, help="the deployment, e.g. http://localhost:8000")
    parser.add_argument("--allow-ready-degraded", action="store_true", help="accept readiness 503 `degraded`")
    add_secret_option(parser, "the API key", option="api-key", env="API_KEY")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds per request (default 5)")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of lines")
    args = parse_without_echo(parser, argv)
    api_key = secret_from(parser, args, option="api-key", env="API_KEY")

    checks = run_checks(
        args.base_url.rstrip("/"), api_key=api_key, timeout=args.timeout, allow_degraded=args.allow_ready_degraded
    )
    by_name = {check.name: check for check in checks}
    healthy = by_name["live"].status == OK and all(check.status != FAIL for check in checks)
    if args.json:
        print(
            json.dumps({"healthy": healthy, "base_url": args.base_url, "checks": [asdict(c) for c in checks]}, indent=2)
        )
    else:
        for check in checks:
            latency = f"{check.latency_ms:7.1f} ms" if check.latency_ms is not None else "          "
            request = f"  request_id={check.request_id}" if check.request_id else ""
            print(f"{check.status.upper():9} {check.name:9} {latency}  {check.detail}{request}")
        print("HEALTHY" if healthy else "UNHEALTHY")
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
