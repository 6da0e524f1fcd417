"""The drill model, in Chaos Toolkit's vocabulary and the runbook's order.

A drill is: a steady-state hypothesis (probes with tolerances) → the method (inject the fault) → observation
under fault (the expected degraded behaviour, asserted by probes) → the mitigation (the runbook's action)
→ recovery verification (the steady state again, alerts resolved) → rollbacks that always run.

Probes are retried until met, so each transition gets a timestamp on the drill clock, and every attempt is
written to the drill's journal. `DrillContext` is what a drill's actions and probes are given while it runs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import httpx

from chaos.drills.prometheus import AlertWatcher
from chaos.drills.traffic import DrillClock, TrafficRecorder
from chaos.stack.base import Capability, StackBackend

Progress = Callable[[str], None]

Scenario = Literal["db", "redis", "overload", "release"]

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
    dwell_s: float = 2.0  # keep the fault in place this long after it is observed, so impact is measured
    during_fault: Action | None = None  # extra traffic while the fault is in place (e.g. a spike)
    rollbacks: tuple[Action, ...] = ()  # run after `remove`, always, even when the drill failed
    steady_state_extra: tuple[Probe, ...] = ()
    setup: Action | None = None  # before the steady state (e.g. deploy the previous release); undone by rollbacks
    server_errors_expected: bool = False  # a broken release answers 500 while it is deployed; faults never should
    tags: dict[str, str] = field(default_factory=dict)  # dependency, fault kind: for the resiliency matrix
    requires: frozenset[Capability] = frozenset()  # what the stack backend must offer beyond the basic contract


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

    @property
    def base_url(self) -> str:
        return self.stack.api_url

    @property
    def auth(self) -> dict[str, str]:
        return {"X-API-Key": self.stack.api_key}

    @contextlib.contextmanager
    def client(self, timeout: float = 5.0) -> Iterator[httpx.Client]:
        with httpx.Client(base_url=self.base_url, timeout=timeout) as client:
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
