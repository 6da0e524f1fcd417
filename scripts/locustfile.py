"""Mixed ingest and query traffic for Locust (RB-PERF-LOAD), failing the run on the runbook's thresholds.

Each simulated client (FastHttpUser) ingests batches and single events (with `occurred_at` now) and runs the
queries clients run: list latest, list by source over an hour, get by id (ids found in the data or just
ingested), stats per minute over an hour, per hour over a day, per day over 30 days. Statistics are grouped
per query name, not per URL.

When the run ends (on the master, when distributed) every entry must meet the gate: mean <=
BENCH_FAIL_THRESHOLD_MS (default 250), p95 <= BENCH_FAIL_P95_THRESHOLD_MS (default 400), and failures at most
LOCUST_MAX_ERROR_RATE (default 0) of its requests; otherwise the process exits 1 and names the breaching
entries. A host that is not a loopback address and not named by conformance/perf/profiles.toml is refused
(exit 2). The API key comes from API_KEY.

Against the embedded stack (starts it, seeds it, runs headless, stops it):

    .venv/bin/python scripts/run_locust.py --users 20 --seconds 30
    .venv/bin/python scripts/run_locust.py --users 40 --seconds 60 --distributed 2

Against a running service, headless:

    API_KEY=... locust -f scripts/locustfile.py --headless -u 20 -r 10 -t 60s --host http://127.0.0.1:8000

Distributed (one master, N workers; the master aggregates and enforces the thresholds):

    API_KEY=... locust -f scripts/locustfile.py --master --master-bind-host 127.0.0.1 --expect-workers 2 \\
        --headless -u 40 -r 20 -t 60s --host http://127.0.0.1:8000
    API_KEY=... locust -f scripts/locustfile.py --worker --master-host 127.0.0.1     # run N times
"""

from __future__ import annotations

from locust import events

from conformance.perf.locust_gate import check_host, enforce_thresholds
from conformance.perf.locust_traffic import EventsApiUser

__all__ = ["EventsApiUser"]  # Locust runs the User classes it finds in this module

events.test_start.add_listener(check_host)  # type: ignore[no-untyped-call]
events.quitting.add_listener(enforce_thresholds)  # type: ignore[no-untyped-call]
