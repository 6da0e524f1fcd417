"""Answer within a bound even when the cleanup of the work cannot be.

Cancelling a database or Redis call that is stuck on a hung server does not end it at once: the driver's
cleanup (rolling back, sending a cancel request, closing) can wait on the same hung server. Measured with
asyncpg through SQLAlchemy: a 2 s `asyncio.timeout` around a query on a SIGSTOPped PostgreSQL returned after
4 s. `within()` runs the work as its own task and answers the caller at the bound; the cancelled task
finishes its cleanup in the background, where nobody waits for it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
log = logging.getLogger("service.bounded")

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
    """The result of `work`, or TimeoutError after `seconds` with the work cancelled but not awaited."""
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.wait_for(asyncio.shield(task), seconds)
    except BaseException:  # our own timeout, or the caller itself being cancelled
        if not task.done():
            _abandon(task)
        raise


def abandoned_count() -> int:
    """Work still cleaning up in the background (for tests and metrics)."""
    return len(_abandoned)
