"""The Locust traffic of RB-PERF-LOAD: a simulated API client (FastHttpUser) that ingests batches and single
events and runs the queries clients run, with ids, sources, types and the span found once per process."""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from locust import FastHttpUser, between, task

from conformance.perf.seeding import SOURCES, TYPES

# The locustfile's own logger name, so that the run's log lines read as they always have.
log = logging.getLogger("locustfile")
INGEST_BATCH = 100


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
