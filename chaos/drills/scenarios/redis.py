"""Redis/rate_limit_backend 장애 drills: Redis down, slow, hung and flapping; rate limits fall back to
in-process counters and requests keep being served (RB-RL-DEGRADED, RB-RL-REDIS)."""

from __future__ import annotations

import threading
import time
from typing import Any

from chaos.drills import probes
from chaos.drills.actions import (
    PROXY_FAULTS,
    SERVER_FAULTS,
    FaultActions,
    proxy_down,
    restore_dependencies,
    server_action,
    toxic,
)
from chaos.drills.model import INCIDENT_REQUIREMENTS, Drill, DrillContext, Mitigation, Observation, Probe

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
    extra.setdefault("requires", PROXY_FAULTS)
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
            if enabled:  # each down phase carries the drill's lease, like every fault (actions.py)
                proxy.disable(lease_s=ctx.fault_lease_s, require_lease=ctx.stack.fault_leases)
            else:
                proxy.enable()
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
        _, thread = ctx.state.get("flapper", (None, None))
        if thread is not None:  # let the flapping run its course (it is bounded in time)
            thread.join(FLAP_DURATION_S + 1)
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
        requires=SERVER_FAULTS,
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
