"""The load balancer's view during a drill: every 100 ms, each replica's own readiness (asked directly, not
through the balancer) and whether the balancer routes to it, with every change recorded on the drill clock.

From these the report measures, per replica, the time from its readiness turning 503 to the balancer taking it
out of rotation, and from its readiness turning 200 again to the balancer putting it back (RB-FLEET-ROTATION).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import httpx

from chaos.drills.traffic import DrillClock
from chaos.stack.fleet import Fleet
from conformance.tls import shared_tls_context

POLL_INTERVAL_S = 0.1
READY_TIMEOUT_S = 1.5  # above readiness's own bound (≤ 1 s): a slow answer is still an answer
MAX_TRANSITIONS = 10_000  # a flapping replica cannot grow the record without bound


@dataclass(frozen=True, slots=True)
class Transition:
    t: float  # drill clock
    replica: str  # container name
    source: str  # "balancer" or "readiness"
    state: str  # balancer: "in" / "out" / "gone"; readiness: "200", "503 degraded", "503 draining", "no answer"


@dataclass(frozen=True, slots=True)
class Lag:
    replica: str
    direction: str  # "out" (readiness 503 → balancer out) or "in" (readiness 200 → balancer in)
    readiness_at: float
    balancer_after_s: float


class FleetWatcher:
    def __init__(self, clock: DrillClock, fleet: Fleet) -> None:
        self.clock = clock
        self.fleet = fleet
        self.errors = 0
        self._transitions: list[Transition] = []
        self._last: dict[tuple[str, str], str] = {}
        self._names: dict[str, str] = {}  # container id → name, kept after a replica is gone
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="fleet-watcher", daemon=True)

    def _observe(self, client: httpx.Client) -> dict[tuple[str, str], str]:
        states: dict[tuple[str, str], str] = {}
        replicas = self.fleet.replicas()
        for replica in replicas:
            self._names[replica.id] = replica.name
            if replica.url is None:
                continue
            try:
                response = client.get(f"{replica.url}/health/ready")
                status = "" if response.status_code == 200 else str(response.json().get("status", ""))
                states[(replica.name, "readiness")] = f"{response.status_code} {status}".strip()
            except (httpx.HTTPError, ValueError):
                states[(replica.name, "readiness")] = "no answer"
        view = self.fleet.balancer_view()
        for replica_id, name in self._names.items():
            states[(name, "balancer")] = "gone" if replica_id not in view else "in" if view[replica_id] else "out"
        return states

    def _run(self) -> None:
        with httpx.Client(verify=shared_tls_context(), timeout=READY_TIMEOUT_S) as client:
            while not self._stop.is_set():
                t = self.clock.now()
                try:
                    states = self._observe(client)
                except Exception:  # a failed poll is counted, never fatal to the drill
                    self.errors += 1
                    states = {}
                with self._lock:
                    for (name, source), state in sorted(states.items()):
                        if self._last.get((name, source)) != state and len(self._transitions) < MAX_TRANSITIONS:
                            self._transitions.append(Transition(t, name, source, state))
                        self._last[(name, source)] = state
                self._stop.wait(POLL_INTERVAL_S)

    def start(self) -> FleetWatcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)

    def transitions(self) -> list[Transition]:
        with self._lock:
            return list(self._transitions)

    def state(self, name: str, source: str) -> str | None:
        with self._lock:
            return self._last.get((name, source))


def rotation_lags(transitions: list[Transition]) -> list[Lag]:
    """Each time a replica's readiness turned 503 (or 200) and the balancer then took it out (or put it back):
    how long the balancer took. A change the balancer never followed is left out (the report lists states)."""
    lags = []
    by_replica: dict[str, list[Transition]] = {}
    for transition in transitions:
        by_replica.setdefault(transition.replica, []).append(transition)
    for replica, changes in by_replica.items():
        previous_ready: str | None = None
        for change in changes:
            if change.source != "readiness":
                continue
            turned_out = change.state != "200" and previous_ready == "200"  # 503, or no answer at all
            turned_in = change.state == "200" and previous_ready is not None and previous_ready != "200"
            previous_ready = change.state
            if not (turned_out or turned_in):
                continue
            wanted = "out" if turned_out else "in"
            followed = next(
                (x for x in changes if x.source == "balancer" and x.t >= change.t and x.state == wanted), None
            )
            before = next((x for x in reversed(changes) if x.source == "balancer" and x.t < change.t), None)
            if followed is not None and (before is None or before.state != wanted):
                lags.append(Lag(replica, wanted, change.t, followed.t - change.t))
    return lags
