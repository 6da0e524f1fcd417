"""Which database failures mean "the database cannot serve now" (503, retry later) rather than a bug (500).

`Database.run` (service/db.py) answers an unavailable database with 503 DEPENDENCY_UNAVAILABLE and retries a
read once when its connection was lost under it; everything else is the request's or the code's fault.
"""

from __future__ import annotations

import asyncpg
from sqlalchemy.exc import DBAPIError

from service.errors import ApiError

RETRY_AFTER_UNAVAILABLE_S = 2

# SQLSTATE classes that mean "the database cannot serve now", not "this request is wrong":
# 08 connection exception, 53 insufficient resources, 57 operator intervention (shutdown, query
# cancelled by statement_timeout, cannot connect now), 58 system error.
_UNAVAILABLE_SQLSTATE_CLASSES = frozenset({"08", "53", "57", "58"})


def is_unavailable(error: BaseException) -> bool:
    """Is this failure the database being unavailable (down, refusing, hung, shutting down)?"""
    if isinstance(error, OSError | TimeoutError):
        return True
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        sqlstate = getattr(current, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate[:2] in _UNAVAILABLE_SQLSTATE_CLASSES:
            return True
        if isinstance(current, OSError | TimeoutError | asyncpg.ConnectionDoesNotExistError) or _unusable(current):
            return True
        current = current.__cause__ or current.__context__
    return False


def _unusable(error: BaseException) -> bool:
    """asyncpg found the connection unusable before the statement reached the server: closed ("connection is
    closed", it went away between taking it and using it), or left mid-operation by the failure of the one
    before it (InternalClientError "cannot switch to state 12; another operation (2) is in progress", seen in
    drills right after a database crash)."""
    if isinstance(error, asyncpg.InternalClientError):
        return True
    return isinstance(error, asyncpg.InterfaceError) and "connection is closed" in str(error)


def connection_lost(error: BaseException) -> bool:
    """The connection died under the statement (not a timeout, not the server refusing work)."""
    return isinstance(error, asyncpg.ConnectionDoesNotExistError | ConnectionError) or _unusable(error)


def unavailable_error() -> ApiError:
    return ApiError(
        503,
        "DEPENDENCY_UNAVAILABLE",
        "The database is unavailable; retry later.",
        headers={"Retry-After": str(RETRY_AFTER_UNAVAILABLE_S)},
        extra={"dependency": "database"},
    )
