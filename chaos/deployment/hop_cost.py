"""The load balancer's cost per request: the same read through the balancer and straight to one replica,
interleaved in one run (this machine is shared and noisy: only a side-by-side comparison means anything)."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import httpx

from conformance.tls import shared_tls_context

REQUESTS = 300  # per path; bounded in count and time
MAX_SECONDS = 60.0


@dataclass(frozen=True)
class HopCost:
    requests: int
    balancer_p50_ms: float
    balancer_p95_ms: float
    direct_p50_ms: float
    direct_p95_ms: float

    def line(self) -> str:
        return (
            f"balancer hop: {self.requests} reads each way, interleaved — through the balancer p50 "
            f"{self.balancer_p50_ms:.2f} ms / p95 {self.balancer_p95_ms:.2f} ms; direct to a replica p50 "
            f"{self.direct_p50_ms:.2f} ms / p95 {self.direct_p95_ms:.2f} ms; the hop costs "
            f"{self.balancer_p50_ms - self.direct_p50_ms:+.2f} ms at the median"
        )


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1)))] * 1000


def measure(balancer_url: str, replica_url: str, api_key: str, requests: int = REQUESTS) -> HopCost:
    """Alternate a keep-alive read through each path; only successful reads count."""
    timings: dict[str, list[float]] = {"balancer": [], "direct": []}
    headers = {"X-API-Key": api_key}
    deadline = time.monotonic() + MAX_SECONDS
    with (
        httpx.Client(verify=shared_tls_context(), base_url=balancer_url, headers=headers, timeout=5) as balancer,
        httpx.Client(verify=shared_tls_context(), base_url=replica_url, headers=headers, timeout=5) as direct,
    ):
        for _ in range(requests):
            if time.monotonic() > deadline:
                break
            for name, client in (("balancer", balancer), ("direct", direct)):
                started = time.perf_counter()
                response = client.get("/api/v1/events", params={"limit": 1})
                if response.status_code == 200:
                    timings[name].append(time.perf_counter() - started)
    if not timings["balancer"] or not timings["direct"]:
        raise RuntimeError("no successful read on one of the paths")
    count = min(len(timings["balancer"]), len(timings["direct"]))
    return HopCost(
        count,
        statistics.median(timings["balancer"]) * 1000,
        _p(timings["balancer"], 0.95),
        statistics.median(timings["direct"]) * 1000,
        _p(timings["direct"], 0.95),
    )
