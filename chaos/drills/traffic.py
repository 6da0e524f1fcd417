"""Background traffic during a drill, recorded request by request.

Readers list events, writers ingest batches with client-chosen ids (so every acknowledged event can be
looked for afterwards), and a poller asks readiness every 100 ms. Every loop is bounded in count and time,
and only ever talks to the stack's own loopback API.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from conformance.tls import shared_tls_context

MAX_REQUESTS = 20_000
MAX_SECONDS = 600.0


class DrillClock:
    """Seconds since the drill started (monotonic), convertible to wall-clock UTC."""

    def __init__(self) -> None:
        self.zero = time.monotonic()
        self.wall_zero = datetime.now(UTC)

    def now(self) -> float:
        return time.monotonic() - self.zero

    def wall(self, t: float) -> datetime:
        return self.wall_zero + timedelta(seconds=t)


@dataclass(frozen=True, slots=True)
class Sample:
    t: float  # seconds on the drill clock when the request was sent
    kind: str  # read | write | ready | live | spike-normal | spike-oversized | spike-overlimit | …
    status: int  # 0: no HTTP answer (refused, reset, timed out)
    latency_s: float
    code: str | None = None  # problem code, or readiness status


@dataclass
class Acknowledgements:
    """Ingest outcomes: ids acknowledged with a 2xx, and batches that were not (stored whole or not at all)."""

    acknowledged: list[str] = field(default_factory=list)
    unacknowledged_batches: list[list[str]] = field(default_factory=list)


def _code(response: httpx.Response) -> str | None:
    if response.headers.get("content-type", "").startswith(("application/problem+json", "application/json")):
        try:
            body = response.json()
        except ValueError:
            return None
        if isinstance(body, dict):
            value = body.get("code") or body.get("status")
            return str(value) if value is not None else None
    return None


class TrafficRecorder:
    """Steady, recorded traffic against the API from a background thread with its own event loop."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        clock: DrillClock,
        *,
        source: str,
        read_interval_s: float = 0.05,
        write_interval_s: float = 0.5,
        ready_interval_s: float = 0.1,
        live_interval_s: float = 0.25,
        batch_size: int = 5,
        timeout_s: float = 5.0,
    ) -> None:
        self.base_url = base_url
        self.api_key = api_key
        self.clock = clock
        self.source = source
        self.read_interval_s = read_interval_s
        self.write_interval_s = write_interval_s
        self.ready_interval_s = ready_interval_s
        self.live_interval_s = live_interval_s
        self.batch_size = batch_size
        self.timeout_s = timeout_s
        self.writes = Acknowledgements()
        self._samples: list[Sample] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="drill-traffic", daemon=True)
        self._stopping: asyncio.Event | None = None
        self._tasks: list[concurrent.futures.Future[None]] = []
        self._sent = 0
        self._deadline = 0.0

    # -- recording ---------------------------------------------------------------------------------------
    def record(self, sample: Sample) -> None:
        with self._lock:
            self._samples.append(sample)

    def samples(self, kind: str | None = None, since: float = 0.0, until: float = float("inf")) -> list[Sample]:
        with self._lock:
            return [s for s in self._samples if (kind is None or s.kind == kind) and since <= s.t < until]

    def _budget_left(self) -> bool:
        return self._sent < MAX_REQUESTS and time.monotonic() < self._deadline

    async def timed(self, client: httpx.AsyncClient, kind: str, method: str, url: str, **kwargs: Any) -> None:
        self._sent += 1
        sent_at = self.clock.now()
        started = time.perf_counter()
        try:
            response = await client.request(method, url, **kwargs)
        except httpx.HTTPError:
            self.record(Sample(sent_at, kind, 0, time.perf_counter() - started, "NO_RESPONSE"))
            return
        self.record(Sample(sent_at, kind, response.status_code, time.perf_counter() - started, _code(response)))

    # -- loops -------------------------------------------------------------------------------------------
    async def _every(self, interval_s: float, step: Callable[[], Coroutine[Any, Any, None]]) -> None:
        assert self._stopping is not None
        while not self._stopping.is_set() and self._budget_left():
            await step()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), interval_s)

    async def _read(self, client: httpx.AsyncClient) -> None:
        await self.timed(client, "read", "GET", "/api/v1/events", params={"limit": 5})

    async def _write(self, client: httpx.AsyncClient) -> None:
        ids = [str(uuid.uuid4()) for _ in range(self.batch_size)]
        now = datetime.now(UTC).isoformat()
        body = {"items": [{"id": i, "source": self.source, "type": "drill.traffic", "occurred_at": now} for i in ids]}
        self._sent += 1
        sent_at = self.clock.now()
        started = time.perf_counter()
        try:
            response = await client.post("/api/v1/events", json=body)
        except httpx.HTTPError:
            self.record(Sample(sent_at, "write", 0, time.perf_counter() - started, "NO_RESPONSE"))
            self.writes.unacknowledged_batches.append(ids)
            return
        self.record(Sample(sent_at, "write", response.status_code, time.perf_counter() - started, _code(response)))
        if response.status_code in (200, 201):
            self.writes.acknowledged.extend(ids)
        else:
            self.writes.unacknowledged_batches.append(ids)

    async def _ready(self, client: httpx.AsyncClient) -> None:
        await self.timed(client, "ready", "GET", "/health/ready")

    async def _live(self, client: httpx.AsyncClient) -> None:
        await self.timed(client, "live", "GET", "/health/live")

    async def _run(self) -> None:
        self._stopping = asyncio.Event()
        headers = {"X-API-Key": self.api_key}
        async with (
            httpx.AsyncClient(
                verify=shared_tls_context(), base_url=self.base_url, headers=headers, timeout=self.timeout_s
            ) as reads,
            httpx.AsyncClient(
                verify=shared_tls_context(), base_url=self.base_url, headers=headers, timeout=self.timeout_s
            ) as writes,
            httpx.AsyncClient(verify=shared_tls_context(), base_url=self.base_url, timeout=self.timeout_s) as probes,
        ):
            await asyncio.gather(
                self._every(self.read_interval_s, lambda: self._read(reads)),
                self._every(self.write_interval_s, lambda: self._write(writes)),
                self._every(self.ready_interval_s, lambda: self._ready(probes)),
                self._every(self.live_interval_s, lambda: self._live(probes)),
            )

    # -- control -----------------------------------------------------------------------------------------
    def start(self, max_seconds: float = MAX_SECONDS) -> TrafficRecorder:
        self._deadline = time.monotonic() + max_seconds
        self._thread.start()
        self._tasks.append(asyncio.run_coroutine_threadsafe(self._run(), self._loop))
        return self

    def run_coroutine(self, coroutine: Coroutine[Any, Any, Any], timeout: float) -> Any:
        """Run extra traffic (e.g. a spike) on the recorder's loop and wait for it."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def stop(self) -> None:
        if not self._thread.is_alive():  # never started (e.g. the drill's setup failed)
            self._loop.close()
            return
        if self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        for task in self._tasks:
            with contextlib.suppress(Exception):  # traffic errors are recorded as samples, not raised
                task.result(timeout=15)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()
