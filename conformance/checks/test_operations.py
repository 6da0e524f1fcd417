"""운영 점검 — RB-OPS-HEALTHCHECK, RB-OPS-PAYLOAD-CHECK."""

from __future__ import annotations

import json
import subprocess

import pytest

from conformance.assertions import eventually
from conformance.target import Target

requirement = pytest.mark.requirement
needs_control = pytest.mark.needs_control


@requirement("RB-OPS-HEALTHCHECK")
def test_health_check_passes_and_shows_each_check_with_latency_and_request_id(target: Target) -> None:
    result = target.run_script("check_runtime_health.py")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for name in ("live", "ready", "database", "redis", "auth", "api"):
        assert any(f" {name} " in f" {line} " for line in lines), name
    assert "request_id=" in result.stdout
    assert " ms " in result.stdout
    as_json = target.run_script("check_runtime_health.py", "--json")
    report = json.loads(as_json.stdout)
    assert report["healthy"] is True
    _assert_key_not_shown(target, result, as_json)


@requirement("RB-OPS-HEALTHCHECK", "RB-OPS-PAYLOAD-CHECK")
@pytest.mark.parametrize("script", ["check_runtime_health.py", "check_payload_guards.py"])
def test_checks_take_the_api_key_from_the_environment_or_a_file_never_the_command_line(
    target: Target, script: str
) -> None:
    # A dummy value: even a refused option must not put the real key where `ps` shows it.
    refused = target.run_script(script, "--api-key", "not-the-key")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "--api-key-file" in refused.stderr
    assert "not-the-key" not in refused.stdout + refused.stderr


@requirement("RB-OPS-HEALTHCHECK")
@needs_control
def test_health_check_fails_when_degraded_unless_allowed(target: Target) -> None:
    stack = target.controlled
    stack.stop_dependency("redis")
    try:
        # Readiness may answer from the round each worker finished just before the stop (HEALTH_CACHE_S):
        # wait, bounded, until the check reports the outage, then ask again allowing degraded mode.
        strict: list[subprocess.CompletedProcess[str]] = []

        def strict_fails() -> bool:
            strict.append(target.run_script("check_runtime_health.py"))
            return strict[-1].returncode == 1

        try:
            eventually(strict_fails, within_s=10, interval_s=0.2)
        except AssertionError:
            raise AssertionError(f"still exit {strict[-1].returncode} with Redis down: {strict[-1].stdout}") from None
        lenient = target.run_script("check_runtime_health.py", "--allow-ready-degraded")
    finally:
        stack.start_dependency("redis")
    assert lenient.returncode == 0, lenient.stdout


@requirement("RB-OPS-HEALTHCHECK")
@needs_control
def test_health_check_fails_when_the_service_is_down(target: Target) -> None:
    unreachable = Target("http://127.0.0.1:9", target.api_key, None)  # the discard port: nothing listens
    result = unreachable.run_script("check_runtime_health.py", "--timeout", "1", "--allow-ready-degraded")
    assert result.returncode == 3, result.stdout  # could not run (conformance/verdicts.py): never 0


@requirement("RB-OPS-PAYLOAD-CHECK")
def test_payload_guard_check_passes_without_writing(target: Target) -> None:
    with target.client() as client:
        before = client.get("/api/v1/events", params={"source": "payload-check"}, headers=target.auth).json()
    result = target.run_script("check_payload_guards.py", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert [r["guard"] for r in report["results"]] == ["body", "batch"]
    assert all(r["passed"] for r in report["results"])
    _assert_key_not_shown(target, result)
    with target.client() as client:
        after = client.get("/api/v1/events", params={"source": "payload-check"}, headers=target.auth).json()
    assert after["items"] == before["items"], "the check wrote nothing"


def _assert_key_not_shown(target: Target, *results: subprocess.CompletedProcess[str]) -> None:
    for result in results:
        assert not target.api_key or target.api_key not in result.stdout + result.stderr, "the API key was printed"
