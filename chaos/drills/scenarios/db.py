"""DB 장애 drills: PostgreSQL down, resetting, slow, hung and crashed, each through the fault proxy or the
server itself; the service answers with its degraded mode (RB-HEALTH-READY-DEGRADED, RB-DB-FAILFAST)."""

from __future__ import annotations

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
from chaos.drills.model import INCIDENT_REQUIREMENTS, Drill, Mitigation, Probe

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
# Alert routing is not a fixed line here: the report's alert review (chaos.drills.report.incident.alert_review)
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
    extra.setdefault("requires", PROXY_FAULTS)
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
        requires=SERVER_FAULTS,
        confirmed="SIGSTOP to the postmaster and every backend: nothing answers, sockets stay open",
        fault="hung",
    ),
    _db_drill(
        "db-crash-restart",
        "DB 장애 / database crash and restart (SIGKILL, then start)",
        server_action("postgres", "kill", "start"),
        requires=SERVER_FAULTS,
        confirmed="SIGKILL to every PostgreSQL process (a crash), then the server started again",
        fault="down",
        follow_up=(
            "Durability: verify WAL/fsync settings in production (the throwaway cluster runs "
            "fsync=off, which survives process crashes but not machine crashes).",
        ),
    ),
)
