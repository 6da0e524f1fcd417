"""The exported experiments run for real: Chaos Toolkit (.venv-ctk) against a throwaway stack, its fault proxy
driven by chaostoolkit-toxiproxy. The journal must say completed and not deviated; against a service that never
recovers from a database outage it must deviate."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from chaos.cli import main as chaos_main
from chaos.stack import make_stack
from chaos.stack.base import StackBackend
from tests.ctk.chaostoolkit import ctk_command, run_experiment

pytestmark = pytest.mark.integration
MUTANT_APP = "tests.conformance.mutant_app:app"
# Redis's return noticed within a quarter second, as on the drills' stack (chaos.drills.run.DRILL_SERVICE_ENV).
SERVICE_ENV = {"RATE_LIMIT_PROBE_INTERVAL_S": "0.25"}


@pytest.fixture(scope="module")
def stack() -> Iterator[StackBackend]:
    ctk_command()  # fail at once, before starting anything, when Chaos Toolkit is not installed
    with make_stack("local", workers=1, service_env=SERVICE_ENV) as running:
        yield running


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("experiments")
    code = chaos_main(["export", "db-down", "redis-down", "--format", "chaostoolkit", "--output", str(directory)])
    assert code == 0
    return directory


def _env(stack: StackBackend) -> dict[str, str]:
    """What `python -m chaos stack up` tells its user to export, and nothing else."""
    return {"EVENTS_API_URL": stack.api_url, "TOXIPROXY_URL": stack.endpoints.proxy_api_url, "API_KEY": stack.api_key}


def _run_named(journal: dict[str, Any], name: str) -> dict[str, Any]:
    return next(run for run in journal["run"] if run["activity"]["name"] == name)


@pytest.mark.parametrize(
    ("drill", "proxy", "check"), [("db-down", "postgres", "database"), ("redis-down", "redis", "redis")]
)
def test_exported_drill_completes_without_deviation(
    stack: StackBackend, exported: Path, tmp_path: Path, drill: str, proxy: str, check: str
) -> None:
    result = run_experiment(exported / f"{drill}.json", tmp_path, _env(stack))
    journal = result.journal
    assert journal["status"] == "completed", result.output
    assert journal["deviated"] is False, result.output
    assert result.returncode == 0, result.output
    assert journal["steady_states"]["before"]["steady_state_met"] is True
    assert journal["steady_states"]["after"]["steady_state_met"] is True
    # The fault was really in place: under it readiness said 503 degraded, naming the dependency.
    ready = _run_named(journal, f"readiness 503 degraded naming {check}")["output"]
    assert ready["status"] == 503, ready
    assert ready["body"]["status"] == "degraded", ready
    assert check in ready["body"]["failed_checks"], ready
    assert [run["status"] for run in journal["rollbacks"]] == ["succeeded"]
    proxy_state = httpx.get(f"{stack.endpoints.proxy_api_url}/proxies/{proxy}", timeout=5).json()
    assert proxy_state["enabled"] is True
    assert proxy_state["toxics"] == []


@pytest.fixture
def never_recovers(tmp_path: Path) -> Iterator[StackBackend]:
    """A service that, once it has answered DEPENDENCY_UNAVAILABLE, keeps answering 503 (tests/conformance/mutants)."""
    env = {
        **SERVICE_ENV,
        "CONFORMANCE_MUTATION": "never-recovers",
        "CONFORMANCE_MUTATION_STATE": str(tmp_path / "stuck"),
    }
    with make_stack("local", workers=1, service_env=env, application=MUTANT_APP) as running:
        yield running


def test_a_service_that_never_recovers_deviates(never_recovers: StackBackend, exported: Path, tmp_path: Path) -> None:
    result = run_experiment(exported / "db-down.json", tmp_path, _env(never_recovers))
    journal = result.journal
    assert journal["steady_states"]["before"]["steady_state_met"] is True, result.output
    assert journal["deviated"] is True, result.output
    assert journal["steady_states"]["after"]["steady_state_met"] is False
    assert journal["status"] in ("completed", "failed")  # Chaos Toolkit's status when the hypothesis deviates
    assert result.returncode == 1  # chaos run's exit code for a deviated experiment
