"""RB-OBS-ALERTS on the service's real metrics: a real Prometheus scraping a real stack evaluates the paging
readiness rule's expression (without its `for:`) while Redis, then PostgreSQL, is cut off. Redis alone down is
the SEV-3 degraded mode and must not select anything for EventsApiNotReady; a database outage must. The promtool
tests prove the `for:` and the draining case on synthetic series; this proves the label matching on real ones."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from chaos.drills.prometheus import PrometheusServer
from chaos.stack.local import LocalStack

pytestmark = pytest.mark.integration

RULES = Path(__file__).resolve().parents[2] / "service" / "alerts" / "events-api.rules.yml"
WAIT_S = 30.0


def rule_expr(name: str) -> str:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return next(str(rule["expr"]) for group in groups for rule in group["rules"] if rule.get("alert") == name)


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(workers=2, service_env={"RATE_LIMIT_PROBE_INTERVAL_S": "0.25"}) as running:
        yield running


@pytest.fixture(scope="module")
def prometheus(stack: LocalStack) -> Iterator[PrometheusServer]:
    with PrometheusServer(stack.api_url) as server:
        yield server


def wait_for(prometheus: PrometheusServer, expression: str, *, present: bool) -> list[dict[str, object]]:
    """Poll the instant query until it returns series (present) or none; bounded by WAIT_S."""
    deadline = time.monotonic() + WAIT_S
    while True:
        series = prometheus.query(expression)
        if bool(series) == present:
            return series
        assert time.monotonic() < deadline, f"{expression!r} still {'empty' if present else series}"
        time.sleep(0.25)


@pytest.fixture
def healthy(stack: LocalStack, prometheus: PrometheusServer) -> Iterator[None]:
    wait_for(prometheus, 'ready{job="events-api"} == 1', present=True)
    yield
    stack.proxy("redis").enable()
    stack.proxy("postgres").enable()
    wait_for(prometheus, 'ready{job="events-api"} == 1', present=True)


@pytest.mark.usefixtures("healthy")
def test_readiness_failing_on_redis_alone_selects_nothing_for_the_page(
    stack: LocalStack, prometheus: PrometheusServer
) -> None:
    not_ready = rule_expr("EventsApiNotReady")
    assert not prometheus.query(not_ready)
    stack.proxy("redis").disable()
    wait_for(prometheus, 'ready{job="events-api"} == 0', present=True)  # readiness 503 degraded, scraped
    wait_for(prometheus, rule_expr("EventsApiRedisDown"), present=True)  # the ticket
    for _ in range(8):  # across several scrapes of the degraded state, never a page candidate
        assert not prometheus.query(not_ready)
        time.sleep(0.5)


@pytest.mark.usefixtures("healthy")
def test_readiness_failing_on_the_database_is_a_page_candidate(stack: LocalStack, prometheus: PrometheusServer) -> None:
    stack.proxy("postgres").disable()
    series = wait_for(prometheus, rule_expr("EventsApiNotReady"), present=True)
    instances = {str(labels.get("instance")) for s in series if isinstance(labels := s["metric"], dict)}
    assert instances == {stack.api_url.split("//", 1)[1]}
