"""Draining (RB-HEALTH-DRAIN): once shutdown begins, readiness says `draining` while requests finish.

The supervisor (`service.supervisor`) owns a multiprocessing Event that it sets on SIGTERM and hands to
every worker. Each worker copies it into a plain flag every `POLL_INTERVAL_S`, so the hot path (the edge
middleware adds `Connection: close` while draining) reads a bool, not a cross-process semaphore.
"""

from __future__ import annotations

import asyncio
from multiprocessing.synchronize import Event

from service import metrics

POLL_INTERVAL_S = 0.1

_shutdown_signal: Event | None = None
_draining = False


def attach_shutdown_signal(event: Event) -> None:
    """Called in each worker process by the supervisor, before the app is loaded."""
    global _shutdown_signal
    _shutdown_signal = event


def is_draining() -> bool:
    return _draining


def begin_draining() -> None:
    global _draining
    if not _draining:
        _draining = True
        metrics.DRAINING.set(1)
        metrics.READY.set(0)


async def watch_shutdown_signal() -> None:
    """Mirror the supervisor's event into the local flag until the worker stops."""
    if _shutdown_signal is None:
        return
    while not _draining:
        if _shutdown_signal.is_set():
            begin_draining()
            return
        await asyncio.sleep(POLL_INTERVAL_S)
