"""`--operator`: the fault is in place and a person applies the runbook's mitigation; the drill measures how
long that took.

The person is told what broke and what the runbook says to do. The drill then watches for the steady state
(readiness 200, a read and a write served) to come back — however the person brought it back — or for Enter on
the terminal ("done"), and gives up after the time limit; either way the engine removes whatever is left of the
fault and verifies recovery. Without a terminal (CI), only the steady state ends the wait.
"""

from __future__ import annotations

import select
import sys
import time
from dataclasses import dataclass

import httpx

from chaos.drills import probes
from chaos.drills.model import DrillContext

POLL_S = 0.5


def _steady(ctx: DrillContext) -> bool:
    for probe in (probes.ready_ok(), probes.api_ok("read"), probes.api_ok("write")):
        try:
            if not probe.observe(ctx).ok:
                return False
        except (httpx.HTTPError, OSError, ValueError):
            return False
    return True


def _enter_pressed() -> bool:
    if not sys.stdin.isatty():
        return False
    ready, _, _ = select.select([sys.stdin], [], [], 0)
    if ready:
        sys.stdin.readline()
        return True
    return False


@dataclass
class OperatorPrompt:
    timeout_s: float = 600.0

    def __call__(self, ctx: DrillContext) -> float | None:
        drill = ctx.drill
        ctx.progress("")
        ctx.progress(f"  ☎ OPERATOR — {drill.title}")
        ctx.progress(f"    what broke (the drill knows; find it as on call would): {drill.confirmed_cause}")
        ctx.progress(f"    runbook: {drill.operator_hint or drill.mitigation.description}")
        ctx.progress(
            f"    the drill waits up to {self.timeout_s:.0f} s for the steady state to return"
            + (" (or press Enter when done)" if sys.stdin.isatty() else "")
            + "; then it rolls back by itself"
        )
        started = time.monotonic()
        next_note = started + 30
        while (elapsed := time.monotonic() - started) < self.timeout_s:
            ctx.check_abort()
            if _steady(ctx) or _enter_pressed():
                ctx.progress(f"    operator: mitigated after {elapsed:.1f} s")
                return elapsed
            if time.monotonic() >= next_note:
                ctx.progress(f"    … waiting for the operator ({elapsed:.0f} s)")
                next_note += 30
            ctx.wait(POLL_S)
        ctx.progress(f"    operator: no mitigation within {self.timeout_s:.0f} s; rolling back")
        return None
