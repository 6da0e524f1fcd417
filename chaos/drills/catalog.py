"""The drills: the runbook's DB, Redis/rate_limit_backend and overload scenarios, each tied to the
requirement IDs it exercises."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt

from chaos.drills import probes
from chaos.drills.engine import DrillContext
from chaos.drills.model import INCIDENT_REQUIREMENTS, Drill, Mitigation, Observation, Probe
from chaos.drills.traffic import Sample
from chaos.stack import DEPENDENCIES

FaultActions = tuple[Callable[["DrillContext"], None], Callable[["DrillContext"], None]]  # (inject, remove)


# -- shared actions ----------------------------------------------------------------------------------------
def restore_dependencies(ctx: DrillContext) -> None:
    """Rollback: every proxy enabled with no toxics, every server resumed and running."""
    with contextlib.suppress(Exception):
        ctx.stack.toxiproxy().reset()
    for name in DEPENDENCIES:
        ctx.stack.resume_dependency(name)
        ctx.stack.start_dependency(name)


def proxy_down(dependency: str) -> FaultActions:
    def inject(ctx: DrillContext) -> None:
        ctx.stack.proxy(dependency).disable()  # type: ignore[arg-type]

    def remove(ctx: DrillContext) -> None:
        ctx.stack.proxy(dependency).enable()  # type: ignore[arg-type]

    return inject, remove


def toxic(dependency: str, kind: str, attributes: dict[str, int]) -> FaultActions:
    def inject(ctx: DrillContext) -> None:
        ctx.state["toxic"] = ctx.stack.proxy(dependency).add_toxic(  # type: ignore[arg-type]
            type=kind, attributes=attributes, name=f"drill-{kind}"
        )

    def remove(ctx: DrillContext) -> None:
        ctx.stack.proxy(dependency).destroy_toxic(ctx.state.pop("toxic", f"drill-{kind}"))  # type: ignore[arg-type]

    return inject, remove


def server_action(dependency: str, inject_name: str, remove_name: str) -> FaultActions:
    def inject(ctx: DrillContext) -> None:
        getattr(ctx.stack, f"{inject_name}_dependency")(dependency)

    def remove(ctx: DrillContext) -> None:
        getattr(ctx.stack, f"{remove_name}_dependency")(dependency)

    return inject, remove


# -- DB drills -----------------------------------------------------------------------------------------------
DB_MITIGATION = Mitigation(
    description="강등 모드 (automatic): readiness 503 `degraded` takes the instance out of rotation; requests "
    "that need the database fail fast with 503 DEPENDENCY_UNAVAILABLE and Retry-After; health stays up.",
    risk="Writes during the outage are refused (clients must retry with their own ids); a load balancer acting "
    "on readiness removes every instance at once.",
)
DB_EXPECTED = (
    probes.ready_degraded("database"),
    probes.api_fails_fast("read"),
    probes.api_fails_fast("write"),
    probes.live_ok(),
)
DB_REQUIREMENTS = (
    "RB-HEALTH-READY-DEGRADED",
    "RB-DB-FAILFAST",
    "RB-DB-RECOVER",
    "RB-HEALTH-LIVE",
    *INCIDENT_REQUIREMENTS,
)
# Alert routing is not a fixed line here: the report's alert review (chaos.drills.report.alert_review)
# discusses the alerts each run actually fired against its severity and `expected_alerts`.
DB_FOLLOW_UP = ("Client guidance: honour Retry-After and send client ids so retried writes stay idempotent.",)


def _db_drill(
    name: str,
    title: str,
    inject_remove: FaultActions,
    *,
    confirmed: str,
    fault: str,
    expected: tuple[Probe, ...] = DB_EXPECTED,
    **extra: Any,
) -> Drill:
    inject, remove = inject_remove
    return Drill(
        name=name,
        title=title,
        scenario="db",
        requirements=DB_REQUIREMENTS,
        description=confirmed,
        inject=inject,
        remove=remove,
        expected=expected,
        mitigation=DB_MITIGATION,
        suspected_cause="readiness `database` check down and API 503 DEPENDENCY_UNAVAILABLE point at PostgreSQL "
        "or the path to it",
        confirmed_cause=confirmed,
        follow_up=DB_FOLLOW_UP + tuple(extra.pop("follow_up", ())),
        expected_alerts=("EventsApiDatabaseDown",),
        rollbacks=(restore_dependencies,),
        tags={"dependency": "postgres", "fault": fault},
        **extra,
    )


DB_DRILLS = (
    _db_drill(
        "db-down",
        "DB 장애 / database down (proxy disabled)",
        proxy_down("postgres"),
        confirmed="fault proxy `postgres` disabled: connections refused and live ones dropped",
        fault="down",
    ),
    _db_drill(
        "db-refusing",
        "DB 장애 / database resets connections (reset_peer)",
        toxic("postgres", "reset_peer", {"timeout": 0}),
        confirmed="reset_peer toxic on `postgres`: every connection reset (TCP RST)",
        fault="down",
    ),
    _db_drill(
        "db-slow",
        "DB 장애 / database slower than its check timeout (latency 600 ms)",
        toxic("postgres", "latency", {"latency": 600}),
        confirmed="latency toxic on `postgres`: +600 ms per response, above the 500 ms readiness check timeout",
        fault="slow",
        expected=(
            probes.ready_degraded("database"),
            probes.api_bounded("read"),
            probes.api_bounded("write"),
            probes.live_ok(),
        ),
        follow_up=("Capacity: a slow database stretches every request towards DB_REQUEST_TIMEOUT_S; watch p95.",),
    ),
    _db_drill(
        "db-hung",
        "DB 장애 / database hung (timeout toxic: accepts, never answers)",
        toxic("postgres", "timeout", {"timeout": 0}),
        confirmed="timeout toxic (0 = forever) on `postgres`: data stops, connections stay open",
        fault="hung",
    ),
    _db_drill(
        "db-hung-sigstop",
        "DB 장애 / database hung (SIGSTOP to every PostgreSQL process)",
        server_action("postgres", "pause", "resume"),
        confirmed="SIGSTOP to the postmaster and every backend: nothing answers, sockets stay open",
        fault="hung",
    ),
    _db_drill(
        "db-crash-restart",
        "DB 장애 / database crash and restart (SIGKILL, then start)",
        server_action("postgres", "kill", "start"),
        confirmed="SIGKILL to every PostgreSQL process (a crash), then the server started again",
        fault="down",
        follow_up=(
            "Durability: verify WAL/fsync settings in production (the throwaway cluster runs "
            "fsync=off, which survives process crashes but not machine crashes).",
        ),
    ),
)


# -- Redis drills ---------------------------------------------------------------------------------------------
REDIS_MITIGATION = Mitigation(
    description="강등 모드 (automatic): rate limits fall back to in-process counters (fail open with local "
    "limits), requests keep being served, readiness says `degraded` naming redis; the service returns to "
    "Redis by itself.",
    risk="While degraded each worker counts separately, so the effective limit is multiplied by the number "
    "of worker processes and instances; abusive clients get more room.",
)
REDIS_REQUIREMENTS = ("RB-RL-DEGRADED", "RB-RL-REDIS", "RB-HEALTH-READY-DEGRADED", *INCIDENT_REQUIREMENTS)
REDIS_FOLLOW_UP = (
    "Consider per-worker fallback limits divided by the worker count if abuse during Redis outages matters.",
)
REDIS_EXPECTED = (
    probes.api_served_within("read", 1.0),
    probes.api_served_within("write", 1.0),
    probes.ready_degraded("redis"),
    probes.rate_limit_backend("memory"),
)


def _redis_drill(
    name: str,
    title: str,
    inject_remove: FaultActions,
    *,
    confirmed: str,
    fault: str,
    expected: tuple[Probe, ...] = REDIS_EXPECTED,
    # Redis down is the SEV-3 degraded mode: both expected alerts are tickets, and no rule pages for it
    # (EventsApiNotReady excludes readiness failing on Redis alone; the rules' promtool tests prove it).
    expected_alerts: tuple[str, ...] = ("EventsApiRedisDown", "EventsApiRateLimitFallback"),
    **extra: Any,
) -> Drill:
    inject, remove = inject_remove
    return Drill(
        name=name,
        title=title,
        scenario="redis",
        requirements=REDIS_REQUIREMENTS,
        description=confirmed,
        inject=inject,
        remove=remove,
        expected=expected,
        mitigation=REDIS_MITIGATION,
        suspected_cause="readiness `redis` check down and the rate_limit_backend gauge on memory point at Redis",
        confirmed_cause=confirmed,
        follow_up=REDIS_FOLLOW_UP,
        expected_alerts=expected_alerts,
        rollbacks=(restore_dependencies,),
        steady_state_extra=(probes.rate_limit_backend("redis"),),
        tags={"dependency": "redis", "fault": fault},
        **extra,
    )


FLAP_PERIOD_S = 0.5
FLAP_DURATION_S = 6.0


def _flap(ctx: DrillContext) -> None:
    stop = threading.Event()
    proxy = ctx.stack.proxy("redis")

    def run() -> None:
        deadline = time.monotonic() + FLAP_DURATION_S  # bounded in time
        enabled = True
        while not stop.is_set() and time.monotonic() < deadline:
            (proxy.disable if enabled else proxy.enable)()
            enabled = not enabled
            stop.wait(FLAP_PERIOD_S)
        proxy.enable()

    thread = threading.Thread(target=run, name="redis-flapper", daemon=True)
    ctx.state["flapper"] = (stop, thread)
    thread.start()


def _stop_flapping(ctx: DrillContext) -> None:
    stop, thread = ctx.state.pop("flapper", (None, None))
    if stop is not None:
        stop.set()
        thread.join(5)
    ctx.stack.proxy("redis").enable()


def _served_while_flapping() -> Probe:
    def observe(ctx: DrillContext) -> Observation:
        time.sleep(FLAP_DURATION_S)  # let the flapping run its course
        since = ctx.result.marks["fault injected"]
        answered = ctx.traffic.samples("read", since=since) + ctx.traffic.samples("write", since=since)
        failed = [s for s in answered if s.status >= 500 or s.status == 0]
        return Observation(
            bool(answered) and not failed,
            len(failed),
            f"{len(answered)} API requests during flapping, {len(failed)} failed",
        )

    return Probe(
        "API served throughout the flapping",
        "no 5xx and no unanswered request while Redis flaps",
        observe,
        timeout_s=FLAP_DURATION_S + 2,
    )


REDIS_DRILLS = (
    _redis_drill(
        "redis-down",
        "Redis/rate_limit_backend 장애 / Redis down (proxy disabled)",
        proxy_down("redis"),
        confirmed="fault proxy `redis` disabled: connections refused",
        fault="down",
    ),
    _redis_drill(
        "redis-slow",
        "Redis/rate_limit_backend 장애 / Redis slow (latency 800 ms)",
        toxic("redis", "latency", {"latency": 800}),
        confirmed="latency toxic on `redis`: +800 ms, above the 100 ms rate-limit timeout and the 500 ms "
        "readiness check timeout",
        fault="slow",
    ),
    _redis_drill(
        "redis-hung",
        "Redis/rate_limit_backend 장애 / Redis hung (SIGSTOP)",
        server_action("redis", "pause", "resume"),
        confirmed="SIGSTOP to redis-server: connections stay open, nothing answers",
        fault="hung",
    ),
    _redis_drill(
        "redis-flapping",
        "Redis/rate_limit_backend 장애 / Redis flapping (down/up every 0.5 s)",
        (_flap, _stop_flapping),
        confirmed=f"fault proxy `redis` disabled and enabled every {FLAP_PERIOD_S} s for {FLAP_DURATION_S} s",
        fault="flapping",
        expected=(_served_while_flapping(),),
        expected_alerts=(),
    ),
)


# -- overload -------------------------------------------------------------------------------------------------
SPIKE_SECONDS = 6.0
SPIKE_CONCURRENCY = 24
SPIKE_MAX_REQUESTS = 1500
LOWERED_BODY_BYTES = 262_144
LOWERED_BATCH_ITEMS = 200


async def _spike(ctx: DrillContext) -> None:
    """A bounded burst from one client: normal batches, oversized bodies and over-limit batches."""
    with ctx.client() as probe:
        limits = probe.get("/health/live").json()["limits"]
    secret = ctx.stack.service_env["JWT_SECRET"]
    token = jwt.encode(
        {"sub": "spike-client", "scope": "events:write", "exp": int(time.time()) + 600}, secret, algorithm="HS256"
    )
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    now = "2026-11-26T00:00:00Z"
    normal = json.dumps({"items": [{"source": "drill-spike", "type": "spike", "occurred_at": now}] * 20}).encode()
    oversized = b'{"items": [' + b" " * limits["max_request_body_bytes"] + b"]}"
    over_limit = json.dumps(
        {
            "items": [{"source": "drill-spike", "type": "spike", "occurred_at": now}]
            * (limits["ingest_max_batch_items"] + 1)
        }
    ).encode()
    bodies = [
        ("spike-normal", normal, 0.7),
        ("spike-oversized", oversized, 0.15),
        ("spike-overlimit", over_limit, 0.15),
    ]
    deadline = time.monotonic() + SPIKE_SECONDS
    sent = 0
    rng = random.Random(7)  # noqa: S311 - traffic mix, not security

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal sent
        while time.monotonic() < deadline and sent < SPIKE_MAX_REQUESTS:
            sent += 1
            kind, body, _ = rng.choices(bodies, weights=[w for *_, w in bodies])[0]
            at = ctx.clock.now()
            started = time.perf_counter()
            try:
                response = await client.post("/api/v1/events", content=body, headers=headers)
                code = response.json().get("code") if response.status_code >= 400 else None
                status = response.status_code
                if status == 503 and "retry-after" not in response.headers:
                    code = f"{code} WITHOUT Retry-After"
            except (httpx.HTTPError, ValueError):
                status, code = 0, "NO_RESPONSE"
            ctx.traffic.record(Sample(at, kind, status, time.perf_counter() - started, code))

    async with httpx.AsyncClient(base_url=ctx.base_url, timeout=10) as spike_client:
        await asyncio.gather(*(worker(spike_client) for _ in range(SPIKE_CONCURRENCY)))


def _run_spike(ctx: DrillContext) -> None:
    ctx.state["spike_started"] = ctx.clock.now()
    ctx.traffic.run_coroutine(_spike(ctx), timeout=SPIKE_SECONDS + 30)
    ctx.state["spike_ended"] = ctx.clock.now()


def _spike_samples(ctx: DrillContext, kind: str) -> list[Sample]:
    return ctx.traffic.samples(kind, since=ctx.state["spike_started"], until=ctx.state["spike_ended"] + 1)


def _spike_probe(name: str, tolerance: str, check: Callable[[DrillContext], Observation]) -> Probe:
    return Probe(name, tolerance, check, timeout_s=0.5)


def _guards_refused(ctx: DrillContext) -> Observation:
    oversized = _spike_samples(ctx, "spike-oversized")
    over_limit = _spike_samples(ctx, "spike-overlimit")
    bad_oversized = [s for s in oversized if (s.status, s.code) != (413, "PAYLOAD_TOO_LARGE")]
    bad_over_limit = [
        s for s in over_limit if (s.status, s.code) not in {(413, "INGEST_BATCH_TOO_LARGE"), (429, "RATE_LIMITED")}
    ]
    ok = bool(oversized) and bool(over_limit) and not bad_oversized and not bad_over_limit
    return Observation(
        ok,
        None,
        f"oversized: {len(oversized)} sent, {len(bad_oversized)} not 413; "
        f"over-limit batches: {len(over_limit)} sent, {len(bad_over_limit)} not 413/429",
    )


def _throttled(ctx: DrillContext) -> Observation:
    samples = [s for kind in ("spike-normal", "spike-overlimit") for s in _spike_samples(ctx, kind)]
    limited = [s for s in samples if s.status == 429]
    return Observation(bool(limited), len(limited), f"{len(limited)} of {len(samples)} spike requests got 429")


def _no_unexpected_5xx(ctx: DrillContext) -> Observation:
    since, until = ctx.state["spike_started"], ctx.state["spike_ended"] + 1
    samples = ctx.traffic.samples(since=since, until=until)
    bad = [
        s
        for s in samples
        if s.kind != "ready" and (s.status == 0 or (s.status >= 500 and (s.status, s.code) != (503, "DB_OVERLOADED")))
    ]
    return Observation(
        not bad,
        len(bad),
        f"{len(samples)} requests, {len(bad)} failed other than 503 DB_OVERLOADED"
        + (f" (e.g. {bad[0].kind} {bad[0].status} {bad[0].code})" if bad else ""),
    )


def _normal_traffic_p95(ctx: DrillContext) -> Observation:
    since, until = ctx.state["spike_started"], ctx.state["spike_ended"]
    latencies = sorted(s.latency_s for kind in ("read", "write") for s in ctx.traffic.samples(kind, since, until))
    if not latencies:
        return Observation(False, None, "no normal traffic recorded during the spike")
    p95 = latencies[int(0.95 * (len(latencies) - 1))]
    return Observation(
        p95 <= 0.4, p95, f"normal traffic p95 {p95 * 1000:.0f} ms over {len(latencies)} requests (runbook gate 400 ms)"
    )


def _lower_limits(ctx: DrillContext) -> None:
    ctx.state["previous_limits"] = {
        name: ctx.stack.service_env.get(name, default)
        for name, default in (("MAX_REQUEST_BODY_BYTES", "1048576"), ("INGEST_MAX_BATCH_ITEMS", "1000"))
    }
    rollout(
        ctx, {"MAX_REQUEST_BODY_BYTES": str(LOWERED_BODY_BYTES), "INGEST_MAX_BATCH_ITEMS": str(LOWERED_BATCH_ITEMS)}
    )


def _restore_limits(ctx: DrillContext) -> None:
    previous = ctx.state.pop("previous_limits", None)
    if previous:
        rollout(ctx, previous)


def rollout(ctx: DrillContext, env: dict[str, str]) -> None:
    """A rolling restart with a changed environment where the backend supports it, else a restart."""
    ctx.stack.rolling_restart_service(env)


def _new_limits_refuse(ctx: DrillContext) -> Observation:
    now = "2026-11-26T00:00:00Z"
    item = {"source": "drill-limits", "type": "limits", "occurred_at": now}
    with ctx.client() as client:
        batch = client.post("/api/v1/events", json={"items": [item] * (LOWERED_BATCH_ITEMS + 1)}, headers=ctx.auth)
        body = client.post(
            "/api/v1/events",
            content=b"{" + b" " * LOWERED_BODY_BYTES + b"}",
            headers={**ctx.auth, "Content-Type": "application/json"},
        )
    codes = (batch.status_code, batch.json().get("code"), body.status_code, body.json().get("code"))
    ok = codes == (413, "INGEST_BATCH_TOO_LARGE", 413, "PAYLOAD_TOO_LARGE")
    return Observation(
        ok,
        None,
        f"batch of {LOWERED_BATCH_ITEMS + 1}: {codes[0]} {codes[1]}; "
        f"{LOWERED_BODY_BYTES + 2} B body: {codes[2]} {codes[3]}",
    )


OVERLOAD = Drill(
    name="overload-spike",
    title="과부하(트래픽 급증) / ingest spike with oversized and over-limit payloads",
    scenario="overload",
    requirements=(
        "RB-GUARD-BODY-413",
        "RB-GUARD-BATCH",
        "RB-GUARD-ROLLOUT",
        "RB-RL-REDIS",
        "RB-DB-OVERLOAD",
        *INCIDENT_REQUIREMENTS,
    ),
    description=f"{SPIKE_CONCURRENCY} concurrent connections for {SPIKE_SECONDS:.0f} s (≤ {SPIKE_MAX_REQUESTS} "
    "requests) from one client: 70 % normal batches, 15 % oversized bodies, 15 % over-limit batches",
    inject=_run_spike,
    remove=lambda ctx: None,  # the spike ends by itself (bounded)
    expected=(
        _spike_probe(
            "guards refused oversized payloads",
            "oversized body → 413 PAYLOAD_TOO_LARGE; over-limit batch "
            "→ 413 INGEST_BATCH_TOO_LARGE (or 429 once throttled)",
            _guards_refused,
        ),
        _spike_probe("spike throttled with 429", "the spiking client is rate limited (429 RATE_LIMITED)", _throttled),
        _spike_probe(
            "no 5xx beyond DB_OVERLOADED", "no 5xx other than 503 DB_OVERLOADED with Retry-After", _no_unexpected_5xx
        ),
        _spike_probe(
            "normal traffic p95 under the gate", "other clients' p95 ≤ 400 ms during the spike", _normal_traffic_p95
        ),
    ),
    mitigation=Mitigation(
        description=f"Runbook: ingest 급증 시 INGEST_MAX_BATCH_ITEMS, MAX_REQUEST_BODY_BYTES 임시 하향 롤아웃 — "
        f"rolled out INGEST_MAX_BATCH_ITEMS={LOWERED_BATCH_ITEMS} and MAX_REQUEST_BODY_BYTES={LOWERED_BODY_BYTES}.",
        risk="Legitimate large batches are refused with 413 until the limits are raised again; clients must "
        "split batches.",
        apply=_lower_limits,
        verify=(
            probes.limits_are(LOWERED_BODY_BYTES, LOWERED_BATCH_ITEMS),
            Probe("lowered limits enforced", "over the new limits → 413", _new_limits_refuse, timeout_s=5),
        ),
    ),
    suspected_cause="a burst of ingest requests from one client, many oversized: 413 and 429 counts jump",
    confirmed_cause="the drill's spike client (JWT sub `spike-client`)",
    follow_up=(
        "Capacity: set per-client write limits from measured ingest throughput (docs/BENCHMARKS.md).",
        "Restore the limits after the spike (the drill's rollback does) and announce the temporary limits.",
    ),
    rollbacks=(_restore_limits,),
    dwell_s=0.5,
    tags={"dependency": "traffic", "fault": "spike"},
)

# The release drills build on the actions above, so they live in their own module.
from chaos.drills.release import RELEASE_DRILLS  # noqa: E402

DRILLS: tuple[Drill, ...] = (*DB_DRILLS, *REDIS_DRILLS, OVERLOAD, *RELEASE_DRILLS)
