"""RB-INC-SEV, RB-INC-CADENCE, RB-SLO-BUDGET rules, and RB-OBS-ALERTS: the shipped alert rules (production timing)
and their drill-clock variant pass `promtool check rules` and their unit tests, and use the SLO numbers from
slo.yml (tests/drills/test_alert_clock.py holds the variant to the production file)."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from chaos.drills.sev import Impact, classify
from chaos.drills.slo import budget_use, objectives

ALERTS = Path(__file__).resolve().parents[2] / "service" / "alerts"


def impact(read: float = 0.0, write: float = 0.0, p95: float | None = 0.05, lost: int = 0, dup: int = 0) -> Impact:
    return Impact(read, write, p95, lost, dup, ())


@pytest.mark.parametrize(
    ("observed", "level", "workaround"),
    [
        (impact(lost=1), "SEV-1", False),
        (impact(dup=2), "SEV-1", False),
        (impact(read=1.0, write=0.95), "SEV-1", False),
        (impact(read=0.0, write=1.0), "SEV-2", True),
        (impact(read=0.2, write=0.0), "SEV-2", True),
        (impact(p95=0.9), "SEV-2", True),
        (impact(read=0.05, write=0.0), "SEV-3", True),
        (impact(), "SEV-3", True),
    ],
)
def test_severity_rules(observed: Impact, level: str, workaround: bool) -> None:
    severity = classify(observed)
    assert (severity.level, severity.workaround) == (level, workaround)
    assert severity.rule


def test_update_cadence_follows_the_runbook() -> None:
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    assert classify(impact(lost=1)).next_update_due(now) == now + timedelta(minutes=15)
    assert classify(impact(read=0.5)).next_update_due(now) == now + timedelta(minutes=30)
    assert classify(impact()).next_update_due(now) == now + timedelta(minutes=60)


def test_error_budget_arithmetic() -> None:
    slo = objectives()
    assert slo.availability_target == 0.999
    assert slo.window_days == 30
    outage = budget_use(requests=100, bad=100, slow=0, duration_s=60)
    assert outage.availability_consumed == pytest.approx(60 / (0.001 * 30 * 86400))  # ≈ 2.3 %
    assert outage.status() == "within budget"
    half = budget_use(requests=100, bad=50, slow=100, duration_s=60)
    assert half.availability_consumed == pytest.approx(outage.availability_consumed / 2)
    assert half.latency_consumed == pytest.approx(60 / (0.05 * 30 * 86400))
    assert budget_use(requests=10, bad=10, slow=0, duration_s=30 * 86400).status().startswith("exhausted")


def promtool() -> str:
    found = shutil.which("promtool")
    assert found, "promtool is missing: install Debian's `prometheus` package (make test does)"
    return found


RULE_FILES = pytest.mark.parametrize(
    ("rules_file", "tests_file"),
    [
        ("events-api.rules.yml", "events-api.rules.test.yml"),  # production timing
        ("events-api.drill.rules.yml", "events-api.drill.rules.test.yml"),  # the drill clock (generated)
    ],
)


@RULE_FILES
def test_alert_rules_pass_promtool_check_and_unit_tests(rules_file: str, tests_file: str) -> None:
    check = subprocess.run(
        [promtool(), "check", "rules", rules_file], cwd=ALERTS, capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stdout + check.stderr
    tests = subprocess.run(
        [promtool(), "test", "rules", tests_file],
        cwd=ALERTS,
        capture_output=True,
        text=True,
        check=False,
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert f"- {rules_file}" in (ALERTS / tests_file).read_text(), "the tests load the rules file beside them"


@RULE_FILES
def test_alert_rules_use_the_slo_numbers(rules_file: str, tests_file: str) -> None:
    slo = objectives()
    rules = yaml.safe_load((ALERTS / rules_file).read_text())
    by_name = {rule.get("alert") or rule.get("record"): rule for group in rules["groups"] for rule in group["rules"]}
    availability_budget = round(1 - slo.availability_target, 6)
    latency_budget = round(1 - slo.latency_target, 6)
    for name in ("EventsApiErrorBudgetBurnFast", "EventsApiErrorBudgetBurnSlow"):
        budgets = {float(x) for x in re.findall(r"\* ([0-9.]+)\)", by_name[name]["expr"])}
        assert budgets == {availability_budget}, name
    assert {float(x) for x in re.findall(r"\* ([0-9.]+)\)", by_name["EventsApiLatencyBudgetBurnFast"]["expr"])} == {
        latency_budget
    }
    threshold = f'le="{slo.latency_threshold_s}"'
    assert threshold in by_name["events_api:slow:ratio_rate5m"]["expr"]
    assert f"> {slo.latency_threshold_s}" in by_name["EventsApiLatencyP95High"]["expr"]
    for rule in by_name.values():
        if "alert" in rule:
            assert rule["labels"]["kind"] in {"symptom", "window", "burn"}
            assert rule["labels"]["severity"] in {"page", "ticket"}
