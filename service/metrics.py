"""Prometheus metrics. Labels use the route template, never the raw path, so cardinality stays bounded.

With several hypercorn workers, prometheus_client's multiprocess mode (PROMETHEUS_MULTIPROC_DIR, set by
`python -m service` before the workers start) makes /metrics report the sum over all workers.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

# 0.25 s and 0.4 s are the runbook's mean and p95 gates, so they are bucket edges.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.4, 0.5, 1.0, 2.0, 5.0)

REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests answered, by route template, method and status.",
    ["route", "method", "status"],
)
LATENCY = Histogram(
    "http_request_duration_seconds",
    "Time from request start to response end, by route template.",
    ["route", "method"],
    buckets=LATENCY_BUCKETS,
)
IN_FLIGHT = Gauge("http_requests_in_flight", "Requests being served right now.", multiprocess_mode="livesum")
DEPENDENCY_UP = Gauge(
    "dependency_up",
    "1 when the dependency's last readiness check passed, else 0.",
    ["dependency"],
    multiprocess_mode="livemostrecent",
)
APP_INFO = Gauge("app_info", "Always 1; labels carry the running release.", ["version"], multiprocess_mode="livemax")
CONFIGURED_LIMIT = Gauge(
    "config_limit",
    "Guard limits in force (to verify a limit rollout).",
    ["name"],
    multiprocess_mode="livemostrecent",
)

DEPENDENCY_ERRORS = Counter(
    "dependency_errors_total", "Requests answered 503 because a dependency was unavailable.", ["dependency"]
)
DB_GATE_IN_USE = Gauge(
    "db_gate_in_use",
    "Database operations running now (the overload gate's taken slots).",
    multiprocess_mode="livesum",
)
DB_GATE_REJECTED = Counter("db_gate_rejected_total", "Requests refused with 503 DB_OVERLOADED.")
RATE_LIMITED = Counter("rate_limited_total", "Requests refused with 429, by policy.", ["policy"])
RATE_LIMIT_BACKEND = Gauge(
    "rate_limit_backend",
    "1 for the rate-limit backend each worker uses now (redis or memory).",
    ["backend"],
    multiprocess_mode="liveall",
)
RATE_LIMIT_BACKEND_CHANGES = Counter(
    "rate_limit_backend_changes_total", "Switches between Redis and the in-process fallback.", ["to"]
)
DEGRADED_MODE = Gauge(
    "degraded_mode",
    "1 for the degraded mode in force (none or read_only).",
    ["mode"],
    multiprocess_mode="livemax",
)
# Readiness rounds run in whichever worker is asked, so the freshest round (any worker's) is the truth;
# a minimum over workers would keep a long-idle worker's stale failure.
READY = Gauge(
    "ready",
    "1 when the latest readiness round passed and the service is not draining.",
    multiprocess_mode="livemostrecent",
)
DRAINING = Gauge("draining", "1 once shutdown began (readiness says draining).", multiprocess_mode="livemax")


# Label children per (route, method, status): `labels()` takes a lock and builds a key on every call; the
# set of routes is bounded (templates, not paths), so these caches are too.
_request_counters: dict[tuple[str, str, int], Counter] = {}
_latency_histograms: dict[tuple[str, str], Histogram] = {}


def record_request(route: str, method: str, status: int, seconds: float) -> None:
    counter = _request_counters.get((route, method, status))
    if counter is None:
        counter = _request_counters[(route, method, status)] = REQUESTS.labels(route, method, str(status))
    counter.inc()
    histogram = _latency_histograms.get((route, method))
    if histogram is None:
        histogram = _latency_histograms[(route, method)] = LATENCY.labels(route, method)
    histogram.observe(seconds)


def render_metrics() -> tuple[bytes, str]:
    """The exposition text for every worker of this server."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
