"""Measure how fast the service notices a database fault and recovers from it (issue: resilience figures).

Starts throwaway PostgreSQL and Redis and the service (`python -m service`, 2 workers), polls
`/health/ready` every 20 ms from a background thread, and for each fault reports:

- detection: fault injected → first readiness 503;
- recovery: database back (start/resume returned) → first readiness 200;
- for a hung database (SIGSTOP), how long an API request takes to get its 503.

Usage: .venv/bin/python scripts/bench_failover.py [--rounds 3] [--json]
Prints figures; asserts nothing. Record them in docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from collections.abc import Callable

import httpx

from chaos.stack.migrations import migrate
from chaos.stack.servers import PostgresServer, RedisServer
from chaos.stack.service import ServiceProcess, generated_credentials
from conformance.tls import shared_tls_context

POLL_INTERVAL_S = 0.02


class ReadinessPoller:
    """Records (time, status) of /health/ready as fast as POLL_INTERVAL_S allows."""

    def __init__(self, base_url: str) -> None:
        self._client = httpx.Client(verify=shared_tls_context(), base_url=base_url, timeout=5)
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                status = self._client.get("/health/ready").status_code
            except httpx.HTTPError:
                status = 0
            self.samples.append((time.monotonic(), status))
            time.sleep(POLL_INTERVAL_S)

    def first(self, status: int, after: float, timeout: float = 30.0) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for at, seen in list(self.samples):
                if at >= after and seen == status:
                    return at
            time.sleep(0.005)
        raise TimeoutError(f"readiness never answered {status}")

    def __enter__(self) -> ReadinessPoller:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self._client.close()


def measure(
    poller: ReadinessPoller, inject: Callable[[], object], restore: Callable[[], object]
) -> tuple[float, float]:
    injected = time.monotonic()
    inject()
    detected = poller.first(503, injected)
    restore()
    back = time.monotonic()
    recovered = poller.first(200, back)
    return detected - injected, recovered - back


def hung_request_times(base_url: str, api_key: str, postgres: PostgresServer, count: int) -> list[float]:
    times = []
    postgres.pause()
    try:
        with httpx.Client(
            verify=shared_tls_context(), base_url=base_url, timeout=30, headers={"X-API-Key": api_key}
        ) as client:
            for _ in range(count):
                started = time.monotonic()
                response = client.get("/api/v1/events", params={"limit": 1})
                times.append(time.monotonic() - started)
                assert response.status_code == 503, response.text
    finally:
        postgres.resume()
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="repetitions of each fault (default 3)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()

    figures: dict[str, list[float]] = {}
    with PostgresServer() as postgres, RedisServer() as redis:
        url = postgres.create_database("events")
        migrate(url)
        credentials = generated_credentials()
        env = {"DATABASE_URL": url, "REDIS_URL": redis.url(), **credentials}
        with ServiceProcess(env, workers=2) as service, ReadinessPoller(service.base_url) as poller:
            poller.first(200, 0)
            faults = {
                "stop": (postgres.stop, postgres.start),
                "kill": (postgres.kill, postgres.start),
                "pause": (postgres.pause, postgres.resume),
            }
            for name, (inject, restore) in faults.items():
                for round_number in range(args.rounds):
                    detection, recovery = measure(poller, inject, restore)
                    figures.setdefault(f"{name}: detection (s)", []).append(detection)
                    figures.setdefault(f"{name}: recovery (s)", []).append(recovery)
                    print(
                        f"  {name} #{round_number + 1}: detected {detection:.3f} s, recovered {recovery:.3f} s",
                        file=sys.stderr,
                    )
                    time.sleep(0.5)
            figures["hung database: API request → 503 (s)"] = hung_request_times(
                service.base_url, credentials["API_KEY"], postgres, args.rounds * 3
            )

    if args.json:
        print(json.dumps({name: values for name, values in figures.items()}, indent=2))
        return 0
    print(f"\n{'measurement':42} {'median':>8} {'max':>8}  samples")
    for name, values in figures.items():
        print(f"{name:42} {statistics.median(values):8.3f} {max(values):8.3f}  {len(values)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
