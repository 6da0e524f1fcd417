"""Probes drills are built from: small observations of the API, readiness, limits and alerts."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import httpx

from chaos.drills.model import DrillContext, Observation, Probe
from conformance.tls import shared_tls_context

# RB-DB-FAILFAST's bound (DB_REQUEST_TIMEOUT_S default 2 s) plus the network; a slower answer is a failure.
FAIL_FAST_BOUND_S = 2.5


def _ready(ctx: DrillContext) -> tuple[int, dict[str, object]]:
    with ctx.client(timeout=2) as client:
        response = client.get("/health/ready")
    return response.status_code, response.json()


def ready_ok() -> Probe:
    def observe(ctx: DrillContext) -> Observation:
        status, body = _ready(ctx)
        return Observation(status == 200 and body.get("status") == "ready", status, f"{status} {body.get('status')}")

    return Probe("readiness 200 ready", "GET /health/ready → 200, status ready", observe, timeout_s=20)


# Behind a load balancer acting on readiness, a fault every replica shares takes every replica out of rotation,
# and the balancer answers 503 NO_READY_REPLICA (with Retry-After) itself: the service's own 503, one hop earlier.
NO_READY_REPLICA = "NO_READY_REPLICA"


def _code_of(response: httpx.Response) -> str | None:
    if not response.headers.get("content-type", "").startswith("application/problem+json"):
        return None
    return str(response.json().get("code"))


def _replicas_ready(ctx: DrillContext) -> list[tuple[str, int, dict[str, object]]] | None:
    """Each replica's own readiness, asked directly; None when the target cannot reach replicas directly."""
    if not ctx.stack.supports("replicas"):
        return None
    replicas = [replica for replica in ctx.stack.fleet().replicas() if replica.url]
    if not replicas:
        return None
    answers = []
    with httpx.Client(verify=shared_tls_context(), timeout=2) as client:
        for replica in replicas:
            response = client.get(f"{replica.url}/health/ready")
            answers.append((replica.name, response.status_code, response.json()))
    return answers


def ready_degraded(check: str) -> Probe:
    def degraded(status: int, body: dict[str, object]) -> bool:
        failed = body.get("failed_checks") or []
        return status == 503 and body.get("status") == "degraded" and check in failed  # type: ignore[operator]

    def observe(ctx: DrillContext) -> Observation:
        status, body = _ready(ctx)
        if ctx.stack.behind_balancer and status == 503 and body.get("code") == NO_READY_REPLICA:
            replicas = _replicas_ready(ctx)
            if replicas is None:
                return Observation(True, status, "503 NO_READY_REPLICA: the balancer has every replica out of rotation")
            ok = all(degraded(code, answer) for _, code, answer in replicas)
            states = ", ".join(f"{name}: {code} {answer.get('failed_checks')}" for name, code, answer in replicas)
            return Observation(ok, status, f"balancer 503 NO_READY_REPLICA; replicas {states}")
        failed = body.get("failed_checks") or []
        return Observation(degraded(status, body), status, f"{status} {body.get('status')} failed={failed}")

    return Probe(f"readiness 503 degraded naming {check}", f"503, status degraded, failed_checks ∋ {check}", observe)


def live_ok() -> Probe:
    def observe(ctx: DrillContext) -> Observation:
        with ctx.client(timeout=2) as client:
            response = client.get("/health/live")
        status = response.status_code
        if ctx.stack.behind_balancer and status == 503 and _code_of(response) == NO_READY_REPLICA:
            # Liveness is the process's, but the balancer routes by readiness: with every replica out of rotation
            # it answers itself. Ask the replicas directly where the target lets us.
            if not ctx.stack.supports("replicas"):
                return Observation(True, status, "503 NO_READY_REPLICA: liveness not observable through the balancer")
            replicas = [r for r in ctx.stack.fleet().replicas() if r.url]
            with httpx.Client(verify=shared_tls_context(), timeout=2) as client:
                codes = {r.name: client.get(f"{r.url}/health/live").status_code for r in replicas}
            ok = bool(codes) and all(code == 200 for code in codes.values())
            return Observation(ok, status, f"balancer 503 NO_READY_REPLICA; replicas {codes}")
        return Observation(status == 200, status, str(status))

    return Probe("liveness 200", "GET /health/live → 200", observe)


def _request(ctx: DrillContext, kind: str, timeout: float) -> tuple[int, str | None, float]:
    started = time.monotonic()
    with ctx.client(timeout=timeout) as client:
        if kind == "read":
            response = client.get("/api/v1/events", params={"limit": 1}, headers=ctx.auth)
        else:
            body = {
                "id": str(uuid.uuid4()),
                "source": "drill-probe",
                "type": "drill.probe",
                "occurred_at": datetime.now(UTC).isoformat(),
            }
            response = client.post("/api/v1/events", json=body, headers=ctx.auth)
    code = None
    if response.headers.get("content-type", "").startswith("application/problem+json"):
        code = response.json().get("code")
    return response.status_code, code, time.monotonic() - started


def api_ok(kind: str) -> Probe:
    def observe(ctx: DrillContext) -> Observation:
        status, code, elapsed = _request(ctx, kind, 5)
        return Observation(status in (200, 201), status, f"{status} {code or ''} in {elapsed * 1000:.0f} ms".strip())

    return Probe(f"API {kind} succeeds", f"{kind} → 2xx", observe, timeout_s=20)


def api_fails_fast(kind: str, code: str = "DEPENDENCY_UNAVAILABLE", bound_s: float = FAIL_FAST_BOUND_S) -> Probe:
    def observe(ctx: DrillContext) -> Observation:
        status, got, elapsed = _request(ctx, kind, bound_s + 5)
        accepted = {code, NO_READY_REPLICA} if ctx.stack.behind_balancer else {code}
        ok = status == 503 and got in accepted and elapsed <= bound_s
        return Observation(ok, elapsed, f"{status} {got} in {elapsed * 1000:.0f} ms")

    return Probe(
        f"API {kind} answers 503 {code} within {bound_s} s",
        f"503 {code}, Retry-After, ≤ {bound_s} s",
        observe,
        timeout_s=12,
    )


def api_served_within(kind: str, bound_s: float) -> Probe:
    def observe(ctx: DrillContext) -> Observation:
        status, code, elapsed = _request(ctx, kind, bound_s + 5)
        return Observation(
            status in (200, 201) and elapsed <= bound_s,
            elapsed,
            f"{status} {code or ''} in {elapsed * 1000:.0f} ms".strip(),
        )

    return Probe(f"API {kind} served (2xx) within {bound_s} s", f"2xx in ≤ {bound_s} s, never a 5xx", observe)


def api_bounded(kind: str, bound_s: float = FAIL_FAST_BOUND_S) -> Probe:
    """Answered within the bound, either served or refused as unavailable; never a 500, never a hang."""

    def observe(ctx: DrillContext) -> Observation:
        status, code, elapsed = _request(ctx, kind, bound_s + 5)
        refusals = (
            {"DEPENDENCY_UNAVAILABLE", NO_READY_REPLICA} if ctx.stack.behind_balancer else {"DEPENDENCY_UNAVAILABLE"}
        )
        ok = elapsed <= bound_s and (status in (200, 201) or (status == 503 and code in refusals))
        return Observation(ok, elapsed, f"{status} {code or ''} in {elapsed * 1000:.0f} ms".strip())

    return Probe(f"API {kind} answered within {bound_s} s (2xx or 503)", "2xx or 503 DEPENDENCY_UNAVAILABLE", observe)


def rate_limit_backend(expected: str) -> Probe:
    def observe(ctx: DrillContext) -> Observation:
        _, body = _ready(ctx)
        backend = body.get("rate_limit_backend")
        return Observation(backend == expected, backend, f"rate_limit_backend={backend}")

    return Probe(f"rate limits on {expected}", f"readiness reports rate_limit_backend={expected}", observe)


def limits_are(body_bytes: int, batch_items: int) -> Probe:
    def observe(ctx: DrillContext) -> Observation:
        with ctx.client() as client:
            limits = client.get("/health/live").json().get("limits", {})
        ok = limits == {"max_request_body_bytes": body_bytes, "ingest_max_batch_items": batch_items}
        return Observation(ok, limits, str(limits))

    return Probe(
        f"limits in force: body {body_bytes} B, batch {batch_items}", "/health/live limits", observe, timeout_s=20
    )


def alert_firing(name: str, timeout_s: float) -> Probe:
    def observe(ctx: DrillContext) -> Observation:
        firing = ctx.alerts.firing() if ctx.alerts is not None else []
        return Observation(name in firing, firing, f"firing: {', '.join(firing) or 'none'}")

    return Probe(
        f"alert {name} firing", f"Prometheus reports {name} firing", observe, timeout_s=timeout_s, interval_s=0.1
    )


def no_symptom_alerts() -> Probe:
    def observe(ctx: DrillContext) -> Observation:
        firing = ctx.alerts.firing("symptom") if ctx.alerts is not None else []
        return Observation(not firing, firing, f"firing: {', '.join(firing) or 'none'}")

    return Probe("no symptom alert firing", "Prometheus: no alert with kind=symptom firing", observe, timeout_s=20)


def symptom_alerts_resolved(timeout_s: float) -> Probe:
    probe = no_symptom_alerts()
    return Probe("symptom alerts resolved (알림 해소)", probe.tolerance, probe.observe, timeout_s=timeout_s)


def prometheus_scraping() -> Probe:
    """Prometheus's first scrape comes several seconds after it starts (its target discovery batches updates
    every 5 s); alerts can only be measured once it scrapes."""

    def observe(ctx: DrillContext) -> Observation:
        if ctx.alerts is None:
            return Observation(True, None, "no Prometheus")
        series = ctx.alerts.prometheus.query('up{job="events-api"} == 1')
        return Observation(bool(series), len(series), "scraping" if series else "not scraping yet")

    return Probe("Prometheus scrapes the service", 'up{job="events-api"} == 1', observe, timeout_s=30, interval_s=0.25)


def steady_state(*, with_alerts: bool) -> tuple[Probe, ...]:
    state = (ready_ok(), live_ok(), api_ok("read"), api_ok("write"))
    return (prometheus_scraping(), *state, no_symptom_alerts()) if with_alerts else state
