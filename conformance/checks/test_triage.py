"""초기 분류(트리아지): 영향 범위와 영향 받은 버전 — RB-TRIAGE-*."""

from __future__ import annotations

import json

import pytest

from chaos.stack.migrations import head_revision
from conformance.assertions import eventually
from conformance.target import Target

requirement = pytest.mark.requirement
needs_control = pytest.mark.needs_control


@requirement("RB-TRIAGE-VERSION")
def test_every_response_names_the_release(target: Target) -> None:
    with target.client() as client:
        live = client.get("/health/live").json()
        responses = [
            client.get("/health/live"),
            client.get("/health/ready"),
            client.get("/api/v1/events"),  # 401
            client.get("/no/such/route"),  # 404
            client.post("/api/v1/events", content=b"{", headers={**target.auth, "Content-Type": "application/json"}),
        ]
    for response in responses:
        assert response.headers.get("x-app-version") == live["version"], response.request.url
    assert live["started_at"]


@requirement("RB-TRIAGE-VERSION")
def test_ready_reports_the_schema_revision(target: Target) -> None:
    with target.client() as client:
        body = client.get("/health/ready").json()
    assert body["schema_revision"], "readiness names the database's alembic revision"
    if target.stack is not None:
        assert body["schema_revision"] == head_revision()


@requirement("RB-TRIAGE-SCOPE")
def test_health_check_reports_each_impact_scope(target: Target) -> None:
    result = target.run_script("check_runtime_health.py", "--json")
    report = json.loads(result.stdout)
    scopes = {check["name"]: check["status"] for check in report["checks"]}
    assert {"api", "auth", "database", "redis"} <= set(scopes)
    assert scopes["api"] == scopes["auth"] == scopes["database"] == "ok"


def health_scopes(target: Target) -> dict[str, str]:
    """Each scope's status as check_runtime_health.py reports it."""
    report = json.loads(target.run_script("check_runtime_health.py", "--json").stdout)
    return {check["name"]: check["status"] for check in report["checks"]}


def scopes_once_noticed(target: Target, scope: str, status: str, within_s: float = 10) -> dict[str, str]:
    """The health check's scopes once it reports `scope` as `status`. Right after a dependency breaks, each
    worker may still answer readiness from the round it finished just before (HEALTH_CACHE_S), so the check
    is run again, bounded, until the break shows; what it then reports about the other scopes is asserted."""
    seen: list[dict[str, str]] = []

    def noticed() -> bool:
        seen.append(health_scopes(target))
        return seen[-1].get(scope) == status

    try:
        eventually(noticed, within_s=within_s, interval_s=0.2)
    except AssertionError:
        raise AssertionError(f"{scope} not reported {status!r} within {within_s} s: {seen[-1:]}") from None
    return seen[-1]


@requirement("RB-TRIAGE-SCOPE")
@needs_control
def test_health_check_points_at_the_failing_scope(target: Target) -> None:
    stack = target.controlled
    stack.stop_dependency("redis")
    try:
        scopes = scopes_once_noticed(target, "redis", "fail")
    finally:
        stack.start_dependency("redis")
    assert scopes["database"] == "ok"
    assert scopes["api"] == "ok", "reads still work while only Redis is down"
