"""Readiness checks: one per dependency, run concurrently and bounded, shared between probes (RB-HEALTH-READY).

Each check is answered within `HEALTH_CHECK_TIMEOUT_S` even when the dependency hangs. Results are shared:
while a round of checks is running, every probe waits for that round, and a finished round is reused for
`HEALTH_CACHE_S`, so a probe storm costs the database at most one `SELECT` per worker per cache period. The
database check uses a one-connection engine of its own, so a busy request pool is not mistaken for a sick
database.

The `schema` check (RB-HEALTH-SCHEMA) judges the alembic revision the database check read against the one
this release expects (service/schema.py): an unmigrated, behind or unknown schema serves 500s, so the
instance must not get traffic. It is derived from the database check's answer (no query of its own) and is
left out of a round in which the database did not answer: the revision is then unknown, and the failure is
the database's, not the schema's.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.ext.asyncio import AsyncEngine

from service import lifecycle, metrics
from service.schema import SchemaExpectation, read_still_serves
from service.timeouts import within


@dataclass(frozen=True, slots=True)
class CheckResult:
    up: bool
    latency_ms: float
    error: str | None = None
    detail: Any = None

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"status": "up" if self.up else "down", "latency_ms": self.latency_ms}
        if self.error is not None:
            body["error"] = self.error
        return body


Check = Callable[[], Coroutine[Any, Any, Any]]
# A check computed from the other checks' results of the same round; None when it cannot be judged.
DerivedCheck = Callable[[Mapping[str, CheckResult]], CheckResult | None]


async def _run_check(check: Check, limit_s: float) -> CheckResult:
    started = time.perf_counter()

    def elapsed_ms() -> float:
        return round((time.perf_counter() - started) * 1000, 2)

    try:
        detail = await within(limit_s, check())
    except TimeoutError:
        return CheckResult(False, elapsed_ms(), f"no answer within {limit_s}s")
    except Exception as error:  # any failure of the dependency is a "down", reported by its class name
        return CheckResult(False, elapsed_ms(), type(error).__name__)
    return CheckResult(True, elapsed_ms(), detail=detail)


class ReadinessProbe:
    """Single-flight, briefly cached dependency checks."""

    def __init__(
        self,
        checks: dict[str, Check],
        *,
        timeout_s: float,
        cache_s: float,
        on_down: Mapping[str, Callable[[str], None]] | None = None,
        derived: Mapping[str, DerivedCheck] | None = None,
    ) -> None:
        """`on_down[name]` is told (with the reason) whenever check `name` finds its dependency down;
        `derived[name]` judges the round's results after the checks ran (and is left out when it returns None)."""
        self._checks = checks
        self._derived = dict(derived or {})
        self._on_down = dict(on_down or {})
        self._timeout_s = timeout_s
        self._cache_s = cache_s
        self._round: asyncio.Task[dict[str, CheckResult]] | None = None
        self._finished_at = 0.0

    async def _check_all(self) -> dict[str, CheckResult]:
        names = list(self._checks)
        answers = await asyncio.gather(*(_run_check(self._checks[name], self._timeout_s) for name in names))
        results = dict(zip(names, answers, strict=True))
        for name, judge in self._derived.items():
            verdict = judge(results)
            if verdict is not None:
                results[name] = verdict
        # A derived check left out of this round keeps its gauge's last value: it was not judged.
        for name, result in results.items():
            metrics.DEPENDENCY_UP.labels(name).set(1 if result.up else 0)
            if not result.up and name in self._on_down:
                self._on_down[name](result.error or "down")
        ready = all(result.up for result in results.values()) and not lifecycle.is_draining()
        metrics.READY.set(1 if ready else 0)
        self._finished_at = time.monotonic()
        return results

    async def results(self) -> dict[str, CheckResult]:
        fresh = time.monotonic() - self._finished_at < self._cache_s
        if self._round is None or (self._round.done() and not fresh):
            self._round = asyncio.ensure_future(self._check_all())
        # shield: a probe whose client went away must not cancel the round other probes wait for.
        return await asyncio.shield(self._round)


@dataclass(frozen=True, slots=True)
class DatabaseSchema:
    """What the database check read: the alembic revision (None if unmigrated) and the earlier revisions
    whose releases its schema declares it still serves (service/schema.py)."""

    revision: str | None
    still_serves: frozenset[str] = frozenset()


# One round trip reads both: the revision and the comment the last migration run left on its table.
SCHEMA_QUERY = text(
    "SELECT version_num, obj_description('alembic_version'::regclass, 'pg_class') AS comment FROM alembic_version"
)


async def check_database(engine: AsyncEngine) -> DatabaseSchema:
    """Round trip to PostgreSQL; returns the schema the database is at."""
    async with engine.connect() as connection:
        try:
            row = (await connection.execute(SCHEMA_QUERY)).first()
        except ProgrammingError:  # no alembic_version table: reachable, but never migrated
            await connection.rollback()
            return DatabaseSchema(None)
    if row is None or row.version_num is None:
        return DatabaseSchema(None)
    revision = str(row.version_num)
    return DatabaseSchema(revision, read_still_serves(revision, row.comment))


async def check_redis(redis: Redis) -> None:
    await redis.ping()


def schema_check(expectation: SchemaExpectation) -> DerivedCheck:
    """The `schema` check: the revision the database check read, judged against this release's expectation."""

    def judge(results: Mapping[str, CheckResult]) -> CheckResult | None:
        database = results.get("database")
        if database is None or not database.up:
            return None  # no revision was read: the database check already says why
        schema: DatabaseSchema = database.detail
        problem = expectation.problem(schema.revision, schema.still_serves)
        return CheckResult(problem is None, database.latency_ms, problem, detail=schema)

    return judge
