"""Pacing of a load run: a cap on request starts per second shared by all its clients, e.g. to stay under a
deployment's per-principal rate limit."""

from __future__ import annotations

import asyncio
import time


class Pacer:
    """At most `rate` request starts per second across all workers (None: unpaced)."""

    def __init__(self, rate: float | None) -> None:
        self._interval = 1.0 / rate if rate else 0.0
        self._next = time.monotonic()

    async def wait(self) -> None:
        if not self._interval:
            return
        now = time.monotonic()
        slot = max(self._next, now)
        self._next = slot + self._interval
        if slot > now:
            await asyncio.sleep(slot - now)
