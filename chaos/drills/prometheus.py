"""A real Prometheus for drills (RB-OBS-ALERTS): Debian's `prometheus`, started on loopback, scraping the
service and evaluating the alert rules the service ships on the drill clock: the drill variant
(service/alerts/events-api.drill.rules.yml, every duration of the production rules divided by
`chaos.drills.alert_clock.DRILL_FACTOR`), scraped at the production scrape interval divided by the same factor
(750 ms), so an alert's time on the drill clock × the factor is its production-equivalent.

An `AlertWatcher` polls Prometheus's alert API and records, on the drill clock, when each alert started and
stopped firing, so detection can be measured as "first alert firing" and recovery as "alerts resolved".
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self
from urllib.parse import urlsplit

import httpx
import yaml

from chaos.drills.alert_clock import DRILL_RULES, PRODUCTION_SCRAPE_INTERVAL, clock_factor, divide
from chaos.drills.prometheus_api import PrometheusAPI
from chaos.drills.traffic import DrillClock
from chaos.lifecycle import Lifecycle, ServerError, free_port, labelled_directory, start_process
from conformance.tls import shared_tls_context

RULES = DRILL_RULES
READY_TIMEOUT_S = 30.0
# Not derived from production (its 10 s default divided by the factor is far below what a scrape needs): below the
# 750 ms drill scrape interval, as a scrape timeout must be, and above the service's 0.5 s readiness check timeout,
# which a scrape waits for while a dependency hangs (a hung database answers readiness in about 510 ms).
DRILL_SCRAPE_TIMEOUT = "700ms"


def prometheus_binary() -> str:
    found = shutil.which("prometheus")
    if found is None:
        raise ServerError(
            "prometheus is not installed: drills evaluate the service's alert rules on a real Prometheus. "
            "Install Debian's package (apt-get install prometheus); `make gameday` does this for you."
        )
    return found


class PrometheusServer(Lifecycle):
    """A throwaway Prometheus scraping one service target on the clock of its rules file: the production scrape
    interval divided by the file's `drill-clock-factor` (750 ms for the drill variant)."""

    def __init__(self, target_url: str, *, rules: Path = RULES) -> None:
        parts = urlsplit(target_url)
        self.target = f"{parts.hostname}:{parts.port}"
        self.rules = rules
        self.clock_factor = clock_factor(rules)  # 1 for the production rules: times are production times
        self.scrape_interval = divide(PRODUCTION_SCRAPE_INTERVAL, self.clock_factor)
        self.port = free_port()
        self.directory = labelled_directory("prometheus")  # removed by the next start if we are killed
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        binary = prometheus_binary()
        rules_copy = self.directory / self.rules.name
        shutil.copy(self.rules, rules_copy)
        config = {
            "global": {
                "scrape_interval": self.scrape_interval,
                "evaluation_interval": self.scrape_interval,  # each group sets its own; this is the default
                "scrape_timeout": DRILL_SCRAPE_TIMEOUT if self.clock_factor > 1 else "10s",
            },
            "rule_files": [str(rules_copy)],
            "scrape_configs": [{"job_name": "events-api", "static_configs": [{"targets": [self.target]}]}],
        }
        config_path = self.directory / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(config))
        log = (self.directory / "prometheus.log").open("wb")
        self._process = start_process(  # dies with us, however we die
            [
                binary,
                f"--config.file={config_path}",
                f"--storage.tsdb.path={self.directory / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--storage.tsdb.retention.time=1h",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            if self._process.poll() is not None:
                raise ServerError(f"prometheus exited: {(self.directory / 'prometheus.log').read_text()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/-/ready", timeout=1, verify=shared_tls_context()).status_code == 200:
                    return self
            if time.monotonic() > deadline:
                self.close()
                raise ServerError("prometheus did not become ready")
            time.sleep(0.1)

    def query(self, expression: str) -> list[dict[str, object]]:
        response = httpx.get(
            f"{self.url}/api/v1/query", params={"query": expression}, timeout=2, verify=shared_tls_context()
        )
        response.raise_for_status()
        result: list[dict[str, object]] = response.json()["data"]["result"]
        return result

    def alerts(self) -> list[dict[str, object]]:
        response = httpx.get(f"{self.url}/api/v1/alerts", timeout=2, verify=shared_tls_context())
        response.raise_for_status()
        alerts: list[dict[str, object]] = response.json()["data"]["alerts"]
        return alerts

    def close(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)


def _labels(alert: dict[str, object]) -> dict[str, str]:
    labels = alert.get("labels")
    if not isinstance(labels, dict) or "alertname" not in labels:
        raise KeyError("alert without labels")
    return {str(key): str(value) for key, value in labels.items()}


@dataclass
class AlertInterval:
    name: str
    kind: str  # symptom | burn
    severity: str
    fired_at: float
    resolved_at: float | None = None
    # The factor the rules that fired it run faster than production (chaos.drills.alert_clock): 1 on a
    # deployment's own Prometheus, DRILL_FACTOR on the throwaway one. Drill-clock time × factor = production time.
    clock_factor: int = 1


@dataclass
class AlertWatcher:
    """Records on the drill clock when each alert fires and resolves."""

    prometheus: PrometheusServer | PrometheusAPI  # throwaway, or a deployment's own
    clock: DrillClock
    interval_s: float = 0.2
    intervals: list[AlertInterval] = field(default_factory=list)
    errors: int = 0

    def __post_init__(self) -> None:
        # A deployment's own Prometheus runs the rules it was deployed with: production timing, factor 1.
        self._factor = self.prometheus.clock_factor
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="alert-watcher", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            now = self.clock.now()
            try:
                firing = {
                    labels["alertname"]: labels
                    for alert in self.prometheus.alerts()
                    if alert.get("state") == "firing"
                    for labels in [_labels(alert)]
                }
            except (httpx.HTTPError, KeyError, ValueError):
                self.errors += 1
                firing = None
            if firing is not None:
                self._update(now, firing)
            self._stop.wait(self.interval_s)

    def _update(self, now: float, firing: dict[str, dict[str, str]]) -> None:
        with self._lock:
            open_names = {i.name for i in self.intervals if i.resolved_at is None}
            for interval in self.intervals:
                if interval.resolved_at is None and interval.name not in firing:
                    interval.resolved_at = now
            for name, labels in firing.items():
                if name not in open_names:
                    kind, severity = labels.get("kind", "symptom"), labels.get("severity", "")
                    self.intervals.append(AlertInterval(name, kind, severity, now, clock_factor=self._factor))

    @property
    def clock_factor(self) -> int:
        """How much faster than production the rules it watches run (1: production timing)."""
        return self._factor

    def start(self) -> AlertWatcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def snapshot(self) -> list[AlertInterval]:
        with self._lock:
            return [AlertInterval(**vars(i)) for i in self.intervals]

    def firing(self, kind: str | None = None) -> list[str]:
        return sorted(i.name for i in self.snapshot() if i.resolved_at is None and (kind is None or i.kind == kind))

    def first_firing_after(self, t: float) -> AlertInterval | None:
        candidates = [i for i in self.snapshot() if i.fired_at >= t]
        return min(candidates, key=lambda i: i.fired_at) if candidates else None
