"""The gate of a Locust run (RB-PERF-LOAD): the host must be a loopback address or one a profile names, and at
quit (on the master, when distributed) every stats entry must meet the runbook's thresholds and the error
budget LOCUST_MAX_ERROR_RATE; the process exit code says which."""

from __future__ import annotations

import logging
import os
from typing import Any

from locust.env import Environment
from locust.runners import WorkerRunner

from conformance.perf.profiles import urls_named_by_profiles
from conformance.perf.targets import TargetRefused, check_target
from conformance.perf.thresholds import Thresholds

# The locustfile's own logger name, so that the run's log lines read as they always have.
log = logging.getLogger("locustfile")
EXIT_GATE_FAILED, EXIT_REFUSED = 1, 2


def max_error_rate() -> float:
    return float(os.environ.get("LOCUST_MAX_ERROR_RATE", "0") or 0)


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


def check_host(environment: Environment, **_: Any) -> None:
    try:
        check_target(environment.host or "", named_by_profile=urls_named_by_profiles())
    except TargetRefused as error:
        log.error("%s", error)
        environment.process_exit_code = EXIT_REFUSED
        if environment.runner is not None:
            environment.runner.quit()


def enforce_thresholds(environment: Environment, **_: Any) -> None:
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
