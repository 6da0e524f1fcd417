"""운영 점검의 판정 — RB-OPS-VERDICTS: the operator commands' verdicts never contradict what the target does.

The commands run as an operator runs them (scripts/, a subprocess, the key in the environment), against the
target; the outage check breaks the embedded stack's PostgreSQL and waits until the service itself shows
the outage before it asks the commands.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from urllib.parse import urlsplit

import pytest

from conformance.assertions import eventually
from conformance.target import Target
from conformance.verdicts import Exit

requirement = pytest.mark.requirement
needs_control = pytest.mark.needs_control

HTTP_CHECKS = ("check_runtime_health.py", "check_payload_guards.py")


def _report(result: subprocess.CompletedProcess[str]) -> dict[str, object]:
    try:
        report: dict[str, object] = json.loads(result.stdout)
    except ValueError:
        raise AssertionError(f"exit {result.returncode}, no JSON report:\n{result.stdout}{result.stderr}") from None
    return report


def _statuses(report: dict[str, object]) -> dict[str, str]:
    checks = report["checks"]
    assert isinstance(checks, list)
    return {str(check["name"]): str(check["status"]) for check in checks}


@requirement("RB-OPS-VERDICTS")
def test_a_healthy_target_is_healthy_with_exit_0(target: Target) -> None:
    lines = target.run_script("check_runtime_health.py")
    assert lines.returncode == Exit.OK, lines.stdout + lines.stderr
    assert lines.stdout.strip().splitlines()[-1] == "HEALTHY"
    report = _report(target.run_script("check_runtime_health.py", "--json"))
    assert (report["verdict"], report["exit_code"], report["failing"]) == ("HEALTHY", Exit.OK, [])
    assert set(_statuses(report).values()) <= {"ok", "not used"}, "HEALTHY only when every scope is ok"


@requirement("RB-OPS-VERDICTS")
def test_a_refused_api_key_is_never_healthy(target: Target) -> None:
    wrong = Target(target.base_url, f"not-the-key-{uuid.uuid4().hex}", None)
    result = wrong.run_script("check_runtime_health.py", "--json")
    report = _report(result)
    assert report["verdict"] == "UNHEALTHY", f"a key the target refuses: {report['verdict']}\n{result.stdout}"
    assert result.returncode == Exit.FAILED
    assert _statuses(report)["auth"] == "fail", "auth must not show ok while the key is refused"
    assert _statuses(report)["api"] == "fail"


@requirement("RB-OPS-VERDICTS")
@pytest.mark.parametrize("script", HTTP_CHECKS)
def test_usage_errors_exit_2_before_any_request(target: Target, script: str) -> None:
    without_scheme = urlsplit(target.base_url).netloc  # e.g. 127.0.0.1:8000, which parses as scheme "127.0.0.1"
    bad_url = target.run_script(script, "--base-url", without_scheme)  # the last --base-url given wins
    assert bad_url.returncode == Exit.USAGE, bad_url.stdout + bad_url.stderr
    assert "http://" in bad_url.stderr
    keyless = Target(target.base_url, None, None).run_script(script)
    assert keyless.returncode == Exit.USAGE, keyless.stdout + keyless.stderr
    assert "API_KEY" in keyless.stderr


@requirement("RB-OPS-VERDICTS")
@pytest.mark.parametrize("script", HTTP_CHECKS)
def test_an_unreachable_target_could_not_be_checked(target: Target, script: str) -> None:
    unreachable = Target("http://127.0.0.1:9", target.api_key or "any-key", None)  # the discard port
    result = unreachable.run_script(script, "--timeout", "2")
    assert result.returncode == Exit.COULD_NOT_RUN, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    [line] = result.stdout.splitlines()  # one line says why
    assert line.lower().startswith("could not run"), line


def _outage_shown(target: Target) -> bool:
    """Every worker the next connections reach says the database is down, and the API answers 503."""
    for _ in range(4):
        with target.client(timeout=3) as client:
            ready = client.get("/health/ready")
            api = client.get("/api/v1/events", params={"limit": 1}, headers=target.auth)
        if ready.status_code != 503 or "database" not in ready.json().get("failed_checks", []):
            return False
        if api.status_code != 503:
            return False
    return True


@requirement("RB-OPS-VERDICTS")
@needs_control
def test_a_database_outage_is_degraded_when_allowed_and_unhealthy_otherwise(target: Target) -> None:
    stack = target.controlled
    stack.stop_dependency("postgres")
    try:
        # Readiness reuses its results for HEALTH_CACHE_S: wait for the service to show the outage, bounded.
        eventually(lambda: _outage_shown(target), within_s=20)
        lenient = target.run_script("check_runtime_health.py", "--allow-ready-degraded", "--json")
        strict = target.run_script("check_runtime_health.py", "--json")
    finally:
        stack.start_dependency("postgres")
    allowed, refused = _report(lenient), _report(strict)
    assert allowed["verdict"] == "DEGRADED", f"a database outage with --allow-ready-degraded:\n{lenient.stdout}"
    assert lenient.returncode == Exit.OK
    failing = allowed["failing"]
    assert isinstance(failing, list)
    assert {"database", "api"} <= set(failing), f"every failing scope is named: {failing}"
    assert refused["verdict"] == "UNHEALTHY", f"the same outage without the flag:\n{strict.stdout}"
    assert strict.returncode == Exit.FAILED
