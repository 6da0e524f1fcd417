"""The raw-SQL ceiling (conformance/perf/ceiling.py) measures the same queries as the HTTP suite: on the real
embedded stack, every query of the suite, run as the repository call the ceiling makes of it, gives the answer
the API gives for the same parameters (the same page of ids, the same event, the same buckets); and the share
is the service's throughput over the raw calls' (and the latency share the raw mean over the service's)."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import uvloop

from conformance.perf.ceiling import RAW, RawCalls, shares
from conformance.perf.discovery import discover, skipped_queries
from conformance.perf.embedded import start_embedded_stack
from conformance.perf.paired import ALL_QUERIES, Round
from conformance.perf.runner import QueryStats
from conformance.perf.seeding import DatasetSpec, seed_events
from conformance.perf.suite import SUITE

if TYPE_CHECKING:
    from chaos.stack.local import LocalStack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    started = start_embedded_stack(workers=1)
    try:
        uvloop.run(seed_events(started.database_url, DatasetSpec(events=3000, days=30)))
        yield started
    finally:
        started.stop()


def _same_answer(path: str, http: dict[str, Any], raw: Any) -> tuple[object, object]:
    """What must agree between the API's JSON and the repository's return value, as (HTTP, raw)."""
    if path == "/api/v1/events":
        page, _ = raw
        return [item["id"] for item in http["items"]], [str(event["id"]) for event in page]
    if path == "/api/v1/events/stats":
        total, buckets = raw
        return (http["total"], http["buckets"]), (total, json.loads(buckets))
    return http["id"], str(raw["id"])


async def _compare_every_query(stack: LocalStack) -> dict[str, tuple[object, object]]:
    from service.db import create_pool

    headers = {"X-API-Key": stack.api_key}
    calls = RawCalls(stack.service_env)
    pool = await create_pool(calls.settings)
    found: dict[str, tuple[object, object]] = {}
    try:
        async with httpx.AsyncClient(base_url=stack.api_url, headers=headers, timeout=10) as client:
            data = await discover(client, 30, random.Random(3))
            assert not skipped_queries(data), skipped_queries(data)
            for name, make in SUITE.items():
                path, params = make(data, random.Random(name))
                response = await client.get(path, params=params)
                assert response.status_code == 200, (name, response.text)
                async with pool.acquire() as connection:
                    raw = await calls.operation(path, params)(connection)
                found[name] = _same_answer(path, response.json(), raw)
        with pytest.raises(ValueError, match="no repository call"):
            calls.operation("/api/v1/other", {})
    finally:
        await pool.close()
    return found


def test_every_suite_query_as_a_repository_call_answers_what_the_api_answers(stack: LocalStack) -> None:
    found = uvloop.run(_compare_every_query(stack))
    assert set(found) == set(SUITE)
    for name, (http, raw) in found.items():
        assert http == raw, name
    # A random hour of one source may hold no event of 3,000; these always have some, so they compare something.
    for name in ("list latest 50", "list next page (cursor)", "get by id", "stats type/day, all 30 days"):
        assert found[name][0], f"{name}: an empty answer compares nothing"


def _round(index: int, side: str, per_query: int, latency_ms: float) -> Round:
    stats = {"q": QueryStats(latencies_ms=[latency_ms] * per_query)}
    return Round(index, index // 2, side, float(index), 1.0, stats)  # type: ignore[arg-type]


def test_the_share_is_the_service_throughput_over_the_raw_calls() -> None:
    rounds = []
    for pair, (service_n, raw_n) in enumerate([(100, 200), (110, 200), (90, 190), (100, 210)]):
        rounds += [_round(2 * pair, "service", service_n, 8.0), _round(2 * pair + 1, RAW, raw_n, 2.0)]
    found = shares(rounds, "service")
    overall = found[ALL_QUERIES]
    assert overall.pairs == 4
    assert overall.share == pytest.approx(400 / 800)
    assert overall.low is not None
    assert overall.high is not None
    assert overall.low <= 0.5 <= overall.high
    assert overall.high - overall.low > 0.01  # the pairs disagree a little: the interval says so
    assert overall.latency is not None
    assert overall.latency[0] == pytest.approx(2.0 / 8.0)
    assert found["q"].as_dict()["share"] == pytest.approx(0.5)
