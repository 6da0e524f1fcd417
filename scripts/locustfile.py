"""Mixed ingest and query traffic for Locust (RB-PERF-LOAD), failing the run on the runbook's thresholds.

Each simulated client (FastHttpUser) ingests batches and single events (with `occurred_at` now) and runs the
queries clients run: list latest, list by source over an hour, get by id (ids found in the data or just
ingested), stats per minute over an hour, per hour over a day, per day over 30 days. Statistics are grouped
per query name, not per URL.

When the run ends (on the master, when distributed) every entry must meet the gate: mean <=
BENCH_FAIL_THRESHOLD_MS (default 250), p95 <= BENCH_FAIL_P95_THRESHOLD_MS (default 400), and failures at most
LOCUST_MAX_ERROR_RATE (default 0) of its requests; otherwise the process exits 1 and names the breaching
entries. A host that is not a loopback address and not named by scripts/bench_profiles.toml is refused (exit 2).
The API key comes from API_KEY.

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

import json
import logging
import os
import random
import sys
import threading
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from locust import FastHttpUser, between, events, task
from locust.env import Environment
from locust.runners import WorkerRunner

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.perf_common import SOURCES, TYPES, TargetRefused, Thresholds, check_target, urls_named_by_profiles

log = logging.getLogger("locustfile")
EXIT_GATE_FAILED, EXIT_REFUSED = 1, 2
INGEST_BATCH = 100


def max_error_rate() -> float:
    return float(os.environ.get("LOCUST_MAX_ERROR_RATE", "0") or 0)


# -- what the queries need, found once per process through the API --------------------------------------------
class Known:
    """Ids, sources, types and the time span of the target's data, shared by the users of this process."""

    lock = threading.Lock()
    ready = False
    ids: list[str] = []  # noqa: RUF012 (process-wide state on purpose)
    sources: list[str] = list(SOURCES)  # noqa: RUF012
    types: list[str] = list(TYPES)  # noqa: RUF012
    newest = datetime.now(UTC)
    span = timedelta(days=30)

    @classmethod
    def discover(cls, host: str, api_key: str) -> None:
        with cls.lock:
            if cls.ready:
                return
            request = urllib.request.Request(  # noqa: S310 (host checked by check_target at test start)
                f"{host.rstrip('/')}/api/v1/events?{urlencode({'limit': 500})}", headers={"X-API-Key": api_key}
            )
            try:
                with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                    items = json.loads(response.read())["items"]
            except (OSError, ValueError) as error:
                log.warning("discovery failed (%s); queries use generated names", error)
                items = []
            cls.ids = [item["id"] for item in items]
            if items:
                cls.newest = datetime.fromisoformat(items[0]["occurred_at"])
                cls.sources = sorted({item["source"] for item in items}) or cls.sources
                cls.types = sorted({item["type"] for item in items}) or cls.types
            cls.ready = True

    @classmethod
    def remember(cls, ids: list[str]) -> None:
        with cls.lock:
            cls.ids.extend(ids)
            if len(cls.ids) > 5000:
                del cls.ids[:1000]


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _event(rng: random.Random) -> dict[str, Any]:
    source_index = min(int(rng.random() ** 1.7 * len(SOURCES)), len(SOURCES) - 1)
    return {
        "source": SOURCES[source_index],
        "type": TYPES[(source_index * 7 + rng.randrange(10)) % len(TYPES)],
        "occurred_at": _iso(datetime.now(UTC) - timedelta(seconds=rng.uniform(0, 5))),
        "attributes": {"amount": rng.randrange(1000), "source": "locust"},
    }


class EventsApiUser(FastHttpUser):
    """One API client: mostly reads, some ingest, as an operations event feed sees it."""

    wait_time = between(0.01, 0.1)

    def on_start(self) -> None:
        self.api_key = os.environ.get("API_KEY", "")
        self.headers = {"X-API-Key": self.api_key}
        self.rng = random.Random()  # noqa: S311 (traffic shape, not secrets)
        Known.discover(self.host or "", self.api_key)

    def _window(self, length: timedelta) -> tuple[str, str]:
        start = (
            Known.newest - Known.span + timedelta(seconds=self.rng.uniform(0, (Known.span - length).total_seconds()))
        )
        return _iso(start), _iso(start + length)

    def _get(self, path: str, params: dict[str, str], name: str) -> None:
        target = f"{path}?{urlencode(params)}" if params else path
        self.client.get(target, headers=self.headers, name=name)

    @task(2)
    def ingest_batch(self) -> None:
        body = {"items": [_event(self.rng) for _ in range(INGEST_BATCH)]}
        with self.client.post(
            "/api/v1/events",
            json=body,
            headers=self.headers,
            name=f"ingest batch of {INGEST_BATCH}",
            catch_response=True,
        ) as response:
            if response.status_code == 201:
                Known.remember(response.json()["ids"][:5])
                response.success()
            else:
                response.failure(f"status {response.status_code}")

    @task(1)
    def ingest_one(self) -> None:
        self.client.post("/api/v1/events", json=_event(self.rng), headers=self.headers, name="ingest one")

    @task(3)
    def list_latest(self) -> None:
        self._get("/api/v1/events", {"limit": "50"}, "list latest 50")

    @task(2)
    def list_by_source(self) -> None:
        since, until = self._window(timedelta(hours=1))
        params = {"source": self.rng.choice(Known.sources), "since": since, "until": until}
        self._get("/api/v1/events", params, "list by source, 1 h")

    @task(3)
    def get_by_id(self) -> None:
        if Known.ids:
            self.client.get(f"/api/v1/events/{self.rng.choice(Known.ids)}", headers=self.headers, name="get by id")

    @task(1)
    def stats_minute(self) -> None:
        since, until = self._window(timedelta(hours=1))
        params = {"group_by": "type", "bucket": "minute", "since": since, "until": until}
        self._get("/api/v1/events/stats", params, "stats type/minute, 1 h")

    @task(1)
    def stats_hour(self) -> None:
        since, until = self._window(timedelta(days=1))
        params = {"group_by": "source", "bucket": "hour", "since": since, "until": until}
        self._get("/api/v1/events/stats", params, "stats source/hour, 1 day")

    @task(1)
    def stats_month(self) -> None:
        params = {
            "group_by": "type",
            "bucket": "day",
            "since": _iso(Known.newest - Known.span),
            "until": _iso(datetime.now(UTC) + timedelta(seconds=1)),
        }
        self._get("/api/v1/events/stats", params, "stats type/day, 30 days")


# -- the gate ------------------------------------------------------------------------------------------------
def breaches(environment: Environment, thresholds: Thresholds, error_rate: float) -> list[str]:
    """What breached the gate, one line per stats entry (empty: passed)."""
    found = []
    for entry in environment.stats.entries.values():
        if entry.num_requests == 0:
            continue
        problems = []
        if entry.avg_response_time > thresholds.mean_ms:
            problems.append(f"mean {entry.avg_response_time:.1f} ms > {thresholds.mean_ms:g} ms")
        p95 = entry.get_response_time_percentile(0.95)
        if p95 > thresholds.p95_ms:
            problems.append(f"p95 {p95:.1f} ms > {thresholds.p95_ms:g} ms")
        if entry.num_failures / entry.num_requests > error_rate:
            problems.append(f"failures {entry.num_failures}/{entry.num_requests} > {error_rate:.2%}")
        if problems:
            found.append(f"{entry.method} {entry.name}: {'; '.join(problems)}")
    if environment.stats.total.num_requests == 0:
        found.append("no requests were made")
    return found


def _check_host(environment: Environment, **_: Any) -> None:
    try:
        check_target(environment.host or "", named_by_profile=urls_named_by_profiles())
    except TargetRefused as error:
        log.error("%s", error)
        environment.process_exit_code = EXIT_REFUSED
        if environment.runner is not None:
            environment.runner.quit()


def _enforce_thresholds(environment: Environment, **_: Any) -> None:
    if isinstance(environment.runner, WorkerRunner) or environment.process_exit_code == EXIT_REFUSED:
        return  # the master (or a single process) judges the aggregated figures
    thresholds = Thresholds.from_env()
    found = breaches(environment, thresholds, max_error_rate())
    if found:
        for line in found:
            log.error("FAIL %s", line)
        environment.process_exit_code = EXIT_GATE_FAILED
    else:
        log.info(
            "PASS: every entry within mean %g ms, p95 %g ms, failures <= %.2f%%",
            thresholds.mean_ms,
            thresholds.p95_ms,
            max_error_rate() * 100,
        )
        environment.process_exit_code = 0


events.test_start.add_listener(_check_host)  # type: ignore[no-untyped-call]
events.quitting.add_listener(_enforce_thresholds)  # type: ignore[no-untyped-call]
