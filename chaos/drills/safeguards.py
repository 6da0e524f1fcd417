"""The game day's safeguards while a fault is in place: a monitor that checks the drill's abort conditions
(`chaos.drills.model.AbortConditions`) every quarter second and, when one holds, tells the drill to stop — the
engine then rolls back at once and the report says why. SIGTERM is turned into the same interruption as Ctrl-C,
so rollbacks run however a run is stopped (short of SIGKILL, which the faults' leases cover)."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

import httpx

from chaos.drills.model import DrillContext, Observation
from chaos.drills.slo import budget_use

CHECK_INTERVAL_S = 0.25
GUARD_FAILURES_TO_ABORT = 2  # one failed observation may be a blip; two in a row are not


class AbortMonitor:
    def __init__(self, ctx: DrillContext, since: float) -> None:
        self.ctx = ctx
        self.since = since
        self._stop = threading.Event()
        self._guard_failures: dict[str, int] = {}
        self._thread = threading.Thread(target=self._run, name="abort-monitor", daemon=True)

    def reason(self) -> str | None:
        """The first abort condition that holds now, or None."""
        conditions = self.ctx.drill.abort
        now = self.ctx.clock.now()
        if now - self.since > self.ctx.time_limit_s:
            return f"the fault was in place longer than {self.ctx.time_limit_s:.0f} s (the drill's time limit)"
        samples = [s for s in self.ctx.traffic.samples() if s.t >= self.since and s.kind in ("read", "write")]
        if samples:
            use = budget_use(
                requests=len(samples),
                bad=sum(1 for s in samples if s.status >= 500 or s.status == 0),
                slow=0,
                duration_s=now - self.since,
            )
            if use.availability_consumed > conditions.max_budget_consumed:
                return (
                    f"error budget consumed {use.availability_consumed:.2%} > the drill's bound "
                    f"{conditions.max_budget_consumed:.1%}"
                )
        if self.ctx.alerts is not None:
            firing = set(self.ctx.alerts.firing()) & set(conditions.stop_alerts)
            if firing:
                return f"stop-condition alert firing: {', '.join(sorted(firing))}"
        for guard in conditions.guards:
            try:
                observation = guard.observe(self.ctx)
            except (httpx.HTTPError, OSError) as error:
                observation = Observation(False, None, f"{type(error).__name__}: {error}")
            failures = 0 if observation.ok else self._guard_failures.get(guard.name, 0) + 1
            self._guard_failures[guard.name] = failures
            if failures >= GUARD_FAILURES_TO_ABORT:
                return f"a check outside the drill's scope failed: {guard.name} ({observation.detail})"
        return None

    def _run(self) -> None:
        while not self._stop.wait(CHECK_INTERVAL_S):
            try:
                reason = self.reason()
            except Exception as error:  # the monitor must never be what breaks a drill
                reason = None
                self.ctx.result.notes.append(f"abort monitor error: {type(error).__name__}: {error}")
            if reason is not None:
                self.ctx.progress(f"  ‼ abort: {reason}; rolling back")
                self.ctx.abort(reason)
                return

    def start(self) -> AbortMonitor:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """While inside: SIGTERM raises KeyboardInterrupt in the main thread, as Ctrl-C does, so every `finally`
    (the drills' rollbacks, the stacks' teardown) runs. Outside the main thread: nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class Interruption:
    """Ctrl-C or SIGTERM for drills that run outside the main thread (the lanes of chaos.drills.lanes): the
    signal reaches the main thread only, which calls `interrupt`; every drill being watched then raises
    KeyboardInterrupt at its next wait, as the signal itself would, and rolls back. A drill that starts after
    the interruption is interrupted at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._watched: set[DrillContext] = set()
        self.reason: str | None = None

    @property
    def is_set(self) -> bool:
        return self.reason is not None

    def interrupt(self, reason: str) -> None:
        with self._lock:
            self.reason = self.reason or reason
            for ctx in self._watched:
                ctx.interrupt(self.reason)

    def watch(self, ctx: DrillContext) -> None:
        with self._lock:
            self._watched.add(ctx)
            if self.reason is not None:
                ctx.interrupt(self.reason)

    def unwatch(self, ctx: DrillContext) -> None:
        """Before the rollbacks: they run to the end, interrupted or not."""
        with self._lock:
            self._watched.discard(ctx)
