"""The drill model, in Chaos Toolkit's vocabulary and the runbook's order.

A drill is: a steady-state hypothesis (probes with tolerances) → the method (inject the fault) → observation
under fault (the expected degraded behaviour, asserted by probes) → the mitigation (the runbook's action)
→ recovery verification (the steady state again, alerts resolved) → rollbacks that always run.

Probes are retried until met, so each transition gets a timestamp on the drill clock, and every attempt is
written to the drill's journal. `DrillContext` is what a drill's actions and probes are given while it runs.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import httpx

from chaos.drills.prometheus import AlertWatcher
from chaos.drills.traffic import DrillClock, TrafficRecorder
from chaos.stack.base import Capability, StackBackend
from conformance.tls import shared_tls_context

Progress = Callable[[str], None]

Scenario = Literal["db", "redis", "overload", "release", "fleet"]
ClientFailures = Literal["unavailable", "none", "in-flight"]

# What every drill exercises besides its scenario: the incident process and its measurements.
INCIDENT_REQUIREMENTS = (
    "RB-INC-SEV",
    "RB-INC-TEMPLATE",
    "RB-INC-CADENCE",
    "RB-INC-MTTD-MTTR",
    "RB-SLO-BUDGET",
    "RB-OBS-ALERTS",
    "RB-DATA-DURABLE",
)


# The runbook's scenario templates and the field each adds after the common four (영향, 원인, 임시조치, 복구검증).
SCENARIO_TEMPLATE: dict[Scenario, tuple[str, str]] = {
    "db": ("DB 장애", "후속조치"),
    "redis": ("Redis/rate_limit_backend 장애", "후속조치"),
    "overload": ("과부하(트래픽 급증)", "용량/성능 후속조치"),
    "release": ("배포/릴리스 장애", "롤백/재배포 기록"),
    # Not a template of the runbook: an instance lost or a release rolled across the fleet (added by this project,
    # docs/DEPLOYMENT.md); the common four fields and the follow-up.
    "fleet": ("인스턴스/플릿 (fleet)", "후속조치"),
}


@dataclass(frozen=True, slots=True)
class Observation:
    ok: bool
    value: Any = None
    detail: str = ""


@dataclass(frozen=True)
class Probe:
    """One observable fact with its tolerance; `observe` makes a single observation."""

    name: str
    tolerance: str
    observe: Callable[[DrillContext], Observation]
    timeout_s: float = 10.0
    interval_s: float = 0.1


Action = Callable[["DrillContext"], None]


@dataclass(frozen=True)
class Mitigation:
    """The runbook's stabilising action, what it costs, and (when it is not automatic) how to apply it."""

    description: str
    risk: str
    apply: Action | None = None  # None: the service mitigates by itself (강등 모드)
    verify: tuple[Probe, ...] = ()  # probes that show the mitigation is in force


@dataclass(frozen=True)
class AbortConditions:
    """When the engine stops a drill at once and rolls back (the game day's safeguards): checked every quarter
    second from the fault's injection until its removal."""

    # Share of the SLO window's availability budget the drill's traffic may consume (chaos.drills.slo): 5 % is
    # about two minutes of full outage against 99.9 % over 30 days.
    max_budget_consumed: float = 0.05
    stop_alerts: tuple[str, ...] = ()  # alerts outside the drill's scope: one firing aborts
    guards: tuple[Probe, ...] = ()  # checks outside the drill's scope that must keep holding
    max_duration_s: float = 300.0  # from the injection: a drill that hangs is stopped and rolled back

    def describe(self) -> list[str]:
        lines = [
            f"error budget consumed > {self.max_budget_consumed:.1%}",
            f"fault in place > {self.max_duration_s:.0f} s",
        ]
        lines += [f"alert {name} firing" for name in self.stop_alerts]
        lines += [f"check failing: {guard.name}" for guard in self.guards]
        return lines


FAULT_LEASE_MARGIN_S = 60.0  # a lease outlasts the drill's time limit by this much: time for the rollback
FAULT_LEASE_MAX_S = 3600.0  # the fault proxy's largest lease


# What a fault of each scenario reaches, unless the drill says otherwise (`Drill.blast_radius`).
SCENARIO_BLAST_RADIUS: dict[Scenario, str] = {
    "db": "every replica's PostgreSQL connections: reads and writes answer 503 while the fault lasts",
    "redis": "every replica's Redis connections: rate limits fall back to in-process counters",
    "overload": "ingest from one client (the spike), the service's limits for everyone while lowered",
    "release": "the service's code, configuration and schema (rolled back by the drill)",
    "fleet": "one replica at a time; the balancer routes around it",
}


@dataclass(frozen=True)
class Drill:
    name: str
    title: str
    scenario: Scenario
    requirements: tuple[str, ...]
    description: str
    inject: Action
    remove: Action
    expected: tuple[Probe, ...]  # behaviour under fault
    mitigation: Mitigation
    suspected_cause: str
    confirmed_cause: str
    follow_up: tuple[str, ...]
    expected_alerts: tuple[str, ...] = ()
    # The fault stays in place at least this long from its injection, and until the clients' traffic has been
    # answered under it (chaos.drills.engine._dwell), so its impact is measured.
    dwell_s: float = 2.0
    during_fault: Action | None = None  # extra traffic while the fault is in place (e.g. a spike)
    rollbacks: tuple[Action, ...] = ()  # run after `remove`, always, even when the drill failed
    steady_state_extra: tuple[Probe, ...] = ()
    setup: Action | None = None  # before the steady state (e.g. deploy the previous release); undone by rollbacks
    server_errors_expected: bool = False  # a broken release answers 500 while it is deployed; faults never should
    tags: dict[str, str] = field(default_factory=dict)  # dependency, fault kind: for the resiliency matrix
    requires: frozenset[Capability] = frozenset()  # what the target must offer (chaos.stack.base.Capability)
    blast_radius: str = ""  # what the fault can reach; empty: the scenario's (SCENARIO_BLAST_RADIUS)
    abort: AbortConditions = field(default_factory=AbortConditions)
    operator_hint: str = ""  # --operator: what the person on call does (the runbook's mitigation, as a step)
    # What clients may see go wrong: "unavailable" — 503s (the degraded mode), never another 5xx; "none" — not
    # one failed request (a fault the fleet routes around); "in-flight" — only requests in flight on a replica
    # at the moment it was killed (between the marks "killing replica" and "replica killed").
    client_failures: ClientFailures = "unavailable"
    recovery_extra: tuple[Probe, ...] = ()  # after the steady state is back (e.g. the replica rejoined)
    # Its verdict depends on the machine's CPU (other clients' latency during a spike): with lanes side by side
    # (chaos.drills.lanes) it runs while no other drill does and no other lane starts or stops.
    runs_alone: bool = False

    @property
    def blast(self) -> str:
        return self.blast_radius or SCENARIO_BLAST_RADIUS[self.scenario]


class DrillAborted(Exception):
    """An abort condition held (or the run was interrupted): the drill stops and rolls back at once."""


class DrillRecord(Protocol):
    """What a drill's actions write and read while it runs: the marks on the drill clock and the action record.

    The engine passes its `chaos.drills.result.DrillResult`; naming only this much keeps the model (what a
    drill is) free of the results module, which depends on it."""

    marks: dict[str, float]
    notes: list[str]

    def time_label(self, t: float) -> str: ...


class DrillContext:
    """What a drill's actions and probes can use."""

    def __init__(
        self,
        drill: Drill,
        stack: StackBackend,
        clock: DrillClock,
        traffic: TrafficRecorder,
        alerts: AlertWatcher | None,
        result: DrillRecord,
        progress: Progress,
    ) -> None:
        self.drill = drill
        self.stack = stack
        self.clock = clock
        self.traffic = traffic
        self.alerts = alerts
        self.result = result
        self.progress = progress
        self.state: dict[str, Any] = {}  # scratch space shared by a drill's actions
        self.abort_reason: str | None = None  # set by the abort monitor; every wait of the engine checks it
        # How long the fault may stay (the abort monitor's limit; --hold and --operator extend it), and the
        # lease every injected fault carries: past the limit, with a margin for the rollback.
        self.time_limit_s = drill.abort.max_duration_s
        self._aborted = threading.Event()
        # Set by `interrupt` (Ctrl-C or SIGTERM reaching a drill that runs outside the main thread, in a lane of
        # chaos.drills.lanes): every wait then raises KeyboardInterrupt, as the signal itself would.
        self.interrupted: str | None = None

    def interrupt(self, reason: str) -> None:
        self.interrupted = reason
        self._aborted.set()

    def abort(self, reason: str) -> None:
        if self.abort_reason is None:
            self.abort_reason = reason
        self._aborted.set()

    @property
    def fault_lease_s(self) -> float:
        return min(FAULT_LEASE_MAX_S, self.time_limit_s + FAULT_LEASE_MARGIN_S)

    def clear_abort(self) -> None:
        """Before the rollbacks, which must not be aborted or interrupted themselves."""
        self.abort_reason = None
        self.interrupted = None
        self._aborted.clear()

    def check_abort(self) -> None:
        if self.interrupted is not None:
            raise KeyboardInterrupt(self.interrupted)
        if self.abort_reason is not None:
            raise DrillAborted(self.abort_reason)

    def wait(self, seconds: float) -> None:
        """Sleep, unless an abort condition holds first (then raise `DrillAborted`) or the run is interrupted
        (then raise KeyboardInterrupt)."""
        self._aborted.wait(max(0.0, seconds))
        self.check_abort()

    @property
    def base_url(self) -> str:
        return self.stack.api_url

    @property
    def auth(self) -> dict[str, str]:
        return {"X-API-Key": self.stack.api_key}

    @contextlib.contextmanager
    def client(self, timeout: float = 5.0) -> Iterator[httpx.Client]:
        with httpx.Client(verify=shared_tls_context(), base_url=self.base_url, timeout=timeout) as client:
            yield client

    def record(self, line: str) -> None:
        """A line of the drill's action record (the release drills' 롤백/재배포 기록), timestamped."""
        t = self.clock.now()
        self.result.notes.append(f"{self.clock.wall(t):%H:%M:%S.%f}"[:-3] + f" UTC: {line}")
        self.progress(f"  {self.result.time_label(t):>9}  {line}")

    def mark(self, name: str) -> float:
        t = self.clock.now()
        self.result.marks[name] = t
        origin = f" (T0 = t={t:.2f} s on the drill clock)" if name == "fault injected" else ""
        self.progress(f"  {self.result.time_label(t):>9}  {name}{origin}")
        return t
