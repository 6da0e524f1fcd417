"""Timeouts that hold: `within()` answers at its bound even when the cleanup of the work cannot be.

Cancelling a database or Redis call that is stuck on a hung server does not end it at once: the driver's
cleanup (rolling back, sending a cancel request, closing) can wait on the same hung server, so a plain
`asyncio.timeout` around a query on a stopped PostgreSQL answers well after its bound (docs/BENCHMARKS.md).
`within()` runs the work as its own task and answers the caller at the bound; the cancelled task finishes
its cleanup in the background, where nobody waits for it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
log = logging.getLogger("service.timeouts")

# Strong references to abandoned tasks, so they are not garbage-collected while they clean up.
_abandoned: set[asyncio.Task[Any]] = set()


def _forget(task: asyncio.Task[Any]) -> None:
    _abandoned.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.debug("abandoned work failed while cleaning up", exc_info=task.exception())


def _abandon(task: asyncio.Task[Any]) -> None:
    task.cancel()
    _abandoned.add(task)
    task.add_done_callback(_forget)


async def within(seconds: float, work: Coroutine[Any, Any, T]) -> T:
    """The result of `work`, or TimeoutError after `seconds` with the work cancelled but not awaited.

    (What `asyncio.wait_for(asyncio.shield(task), seconds)` does, with one future and one timer instead of
    the four futures and callbacks those two build: it runs twice on every API request.)"""
    task = asyncio.ensure_future(work)
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[None] = loop.create_future()

    def wake(_: object = None) -> None:
        if not waiter.done():
            waiter.set_result(None)

    timer = loop.call_later(seconds, wake)
    task.add_done_callback(wake)
    try:
        await waiter
    except BaseException:  # the caller itself was cancelled
        timer.cancel()
        task.remove_done_callback(wake)
        if not task.done():
            _abandon(task)
        raise
    timer.cancel()
    if task.done():
        return task.result()
    task.remove_done_callback(wake)
    _abandon(task)
    raise TimeoutError(f"no answer within {seconds:.3f} s")


def abandoned_count() -> int:
    """Work still cleaning up in the background (for tests and metrics)."""
    return len(_abandoned)
