"""Which failures the service answers as 503 DEPENDENCY_UNAVAILABLE (the database cannot serve now) and which
stay errors of the request or of the code (a 4xx, or a 500 to be fixed)."""

from __future__ import annotations

import asyncpg
import pytest

from service.db_errors import is_unavailable

# Raised by asyncpg when a connection left mid-operation by a crash is used again (seen in db-crash-restart).
LEFT_MID_OPERATION = asyncpg.InternalClientError("cannot switch to state 12; another operation (2) is in progress")


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(111, "Connection refused"),
        TimeoutError(),
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.InterfaceError("cannot call Connection.fetch(): connection is closed"),
        LEFT_MID_OPERATION,
        asyncpg.AdminShutdownError("terminating connection due to administrator command"),  # 57P01
        asyncpg.CannotConnectNowError("the database system is starting up"),  # 57P03
        asyncpg.TooManyConnectionsError("sorry, too many clients already"),  # 53300
    ],
    ids=type,
)
def test_the_database_being_unable_to_serve_is_unavailable(error: BaseException) -> None:
    assert is_unavailable(error)


def test_unavailability_is_found_under_the_error_that_reported_it() -> None:
    error = RuntimeError("releasing the connection failed")
    error.__cause__ = LEFT_MID_OPERATION
    assert is_unavailable(error)


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.UniqueViolationError("duplicate key value violates unique constraint"),  # 23505
        asyncpg.UndefinedColumnError("column does not exist"),  # 42703: a bug, stays a 500
        asyncpg.InterfaceError("the server expects 2 arguments for this query, 1 was passed"),
        ValueError("bad cursor"),
    ],
    ids=type,
)
def test_errors_of_the_request_or_the_code_are_not_unavailability(error: BaseException) -> None:
    assert not is_unavailable(error)
