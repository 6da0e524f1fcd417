"""A Prometheus the harness did not start — a deployment's own, named by its target file — asked the same
two questions as the throwaway one (`chaos.drills.prometheus.PrometheusServer`): a query, and the alerts."""

from __future__ import annotations

import httpx

from conformance.tls import shared_tls_context

TIMEOUT_S = 2.0


class PrometheusAPI:
    def __init__(self, url: str, *, clock_factor: int = 1) -> None:
        self.url = url.rstrip("/")
        # How much faster than production its rules run (the target file's alert_clock_factor; 1: production).
        self.clock_factor = clock_factor

    def ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/-/ready", timeout=TIMEOUT_S, verify=shared_tls_context()).status_code == 200
        except httpx.HTTPError:
            return False

    def query(self, expression: str) -> list[dict[str, object]]:
        response = httpx.get(
            f"{self.url}/api/v1/query", params={"query": expression}, timeout=TIMEOUT_S, verify=shared_tls_context()
        )
        response.raise_for_status()
        result: list[dict[str, object]] = response.json()["data"]["result"]
        return result

    def alerts(self) -> list[dict[str, object]]:
        response = httpx.get(f"{self.url}/api/v1/alerts", timeout=TIMEOUT_S, verify=shared_tls_context())
        response.raise_for_status()
        alerts: list[dict[str, object]] = response.json()["data"]["alerts"]
        return alerts
