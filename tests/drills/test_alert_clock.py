"""RB-OBS-ALERTS on two clocks: the shipped rules carry production timing, and the throwaway drills' variant is
derived from them by one transform (every duration divided by DRILL_FACTOR), generated and kept in step; the
reports print the measured alert time beside its production-equivalent."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from chaos.drills import alert_clock
from chaos.drills.alert_clock import (
    DRILL_FACTOR,
    DRILL_RULES,
    DRILL_TESTS,
    PRODUCTION_RULES,
    PRODUCTION_TESTS,
    clock_factor,
    divide,
    format_duration,
    only_durations_divided,
    parse_duration,
    transform_promql,
    transform_text,
)
from chaos.drills.catalog import DRILLS
from chaos.drills.engine import ALERT_TIMEOUT_S
from chaos.drills.prometheus import DRILL_SCRAPE_TIMEOUT, AlertInterval, PrometheusServer
from chaos.drills.report.incident import render_markdown, summary
from chaos.drills.run import summary_lines
from tests.drills.drill_results import FAULT_AT, FAULT_FOR, result

REPO = Path(__file__).resolve().parents[2]
RENAMES = {PRODUCTION_RULES.name: DRILL_RULES.name}


@pytest.mark.parametrize(
    ("duration", "factor", "expected"),
    [
        ("15s", 15, "1s"),
        ("1m", 15, "4s"),
        ("1m30s", 15, "6s"),
        ("6h", 15, "24m"),
        ("1d", 15, "1h36m"),
        ("0s", 15, "0s"),
        ("1s", 2, "500ms"),
        ("1m30s", 4, "22s500ms"),
        ("1h", 1, "1h"),
    ],
)
def test_division_keeps_valid_prometheus_durations(duration: str, factor: int, expected: str) -> None:
    assert divide(duration, factor) == expected
    assert parse_duration(expected) * factor == parse_duration(duration)


@pytest.mark.parametrize(("duration", "factor"), [("1s", 3), ("1ms", 2), ("1s", 0), ("5x", 15), ("", 15), ("m", 15)])
def test_durations_a_factor_cannot_divide_into_whole_milliseconds_are_refused(duration: str, factor: int) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 — each case has its own message; the refusal is what counts
        divide(duration, factor)


def test_durations_format_as_prometheus_writes_them() -> None:
    assert format_duration(90_000) == "1m30s"
    assert format_duration(1_500) == "1s500ms"
    assert format_duration(7 * 86_400_000 + 3_600_000) == "1w1h"
    assert parse_duration("1y2w3d4h5m6s7ms") == (((((365 + 14 + 3) * 24 + 4) * 60 + 5) * 60 + 6) * 1000) + 7


def test_windows_subqueries_and_offsets_in_promql_are_divided_and_nothing_else() -> None:
    assert transform_promql('sum(rate(x{route=~"/api/.*"}[1m]))', 15) == 'sum(rate(x{route=~"/api/.*"}[4s]))'
    assert transform_promql("max_over_time(rate(x[1m])[1h:5m])", 15) == "max_over_time(rate(x[4s])[4m:20s])"
    assert transform_promql("max_over_time(x[1h:])", 15) == "max_over_time(x[4m:])"
    assert transform_promql("rate(x[1m30s] offset 5m)", 15) == "rate(x[6s] offset 20s)"
    assert transform_promql("x offset -1h", 15) == "x offset -4m"
    # Label values, recording rule names and numbers are not durations.
    unchanged = 'events_api:errors:ratio_rate5m > (14.4 * 0.001) and y{le="0.4",re=~"[5m]"}'
    assert transform_promql(unchanged, 15) == unchanged
    with pytest.raises(ValueError, match="whole number of milliseconds"):
        transform_promql("rate(x[1s])", 3)


def test_the_text_transform_keeps_comments_and_divides_every_duration_key() -> None:
    text = (
        "groups:\n"
        "  - name: g  # [5m] in a comment stays\n"
        "    interval: 15s  # for: 1m here too\n"
        "    rules:\n"
        "      # for: 1m — the reason\n"
        "      - alert: A\n"
        "        expr: rate(x[5m]) > 0\n"
        "        for: 1m30s\n"
        "        keep_firing_for: '2m'\n"
        "        annotations: {summary: the runbook's 5m gate}\n"
    )
    drill = transform_text(text, 15)
    assert drill == (
        "groups:\n"
        "  - name: g  # [5m] in a comment stays\n"
        "    interval: 1s  # for: 1m here too\n"
        "    rules:\n"
        "      # for: 1m — the reason\n"
        "      - alert: A\n"
        "        expr: rate(x[20s]) > 0\n"
        "        for: 6s\n"
        "        keep_firing_for: '8s'\n"
        "        annotations: {summary: the runbook's 5m gate}\n"
    )
    # The annotation's "5m" is text, not a duration key or PromQL window: the independent check flags it as
    # a duration-looking token left undivided, so a transform that only touches keys and windows cannot pass
    # a file whose strings carry durations unnoticed.
    assert [m.path for m in only_durations_divided(text, drill, 15)] == ["$.groups[0].rules[0].annotations.summary"]


def test_the_committed_drill_variant_is_what_the_generator_writes() -> None:
    hint = "regenerate with: .venv/bin/python -m chaos.drills.alert_clock --write"
    assert DRILL_RULES.read_text(encoding="utf-8") == alert_clock.drill_rules(), hint
    assert DRILL_TESTS.read_text(encoding="utf-8") == alert_clock.drill_tests(), hint


def test_the_drill_variant_differs_from_production_only_by_its_durations_divided() -> None:
    rules = PRODUCTION_RULES.read_text(encoding="utf-8")
    tests = PRODUCTION_TESTS.read_text(encoding="utf-8")
    assert only_durations_divided(rules, DRILL_RULES.read_text(encoding="utf-8"), DRILL_FACTOR) == []
    assert only_durations_divided(tests, DRILL_TESTS.read_text(encoding="utf-8"), DRILL_FACTOR, renames=RENAMES) == []
    # ... and the check sees a hand edit: one `for:` off by a second, or a threshold changed.
    drill = DRILL_RULES.read_text(encoding="utf-8")
    database_for = divide("1m", DRILL_FACTOR)  # EventsApiDatabaseDown's for: 1m on the drill clock
    assert f"for: {database_for}" in drill
    off_by_a_second = format_duration(parse_duration(database_for) + 1000)
    assert only_durations_divided(
        rules, drill.replace(f"for: {database_for}", f"for: {off_by_a_second}", 1), DRILL_FACTOR
    )
    assert only_durations_divided(rules, drill.replace("> 0.05", "> 0.5", 1), DRILL_FACTOR)


def test_the_header_names_the_source_the_generator_and_the_factor() -> None:
    head = DRILL_RULES.read_text(encoding="utf-8").splitlines()[0]
    assert head.startswith(
        "# GENERATED from service/alerts/events-api.rules.yml by `python -m chaos.drills.alert_clock"
    )
    assert head.endswith("do not edit.")
    assert clock_factor(DRILL_RULES) == clock_factor(DRILL_TESTS) == DRILL_FACTOR
    assert clock_factor(PRODUCTION_RULES) == 1


def _alerts(path: Path) -> dict[str, dict[str, Any]]:
    """Each alert rule by name, with its group's interval."""
    groups = yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]
    return {r["alert"]: {**r, "interval": g["interval"]} for g in groups for r in g["rules"] if "alert" in r}


def test_production_timing_is_what_an_sre_team_runs_and_every_for_has_its_reason() -> None:
    text = PRODUCTION_RULES.read_text(encoding="utf-8")
    groups = yaml.safe_load(text)["groups"]
    assert {g["interval"] for g in groups} == {"15s"}
    for name, rule in _alerts(PRODUCTION_RULES).items():
        hold = parse_duration(str(rule["for"]))
        if rule["labels"]["kind"] == "burn":
            assert hold == 0, name  # the long window is the debounce (SRE workbook)
        else:
            assert 60_000 <= hold <= 600_000, f"{name}: for: {rule['for']}"  # no page on one failed check
    # Every `for:` line carries its reason: a comment on the line or in the rule's comment block above it.
    for match in re.finditer(r"^\s+for: \S+(?P<rest>.*)$", text, re.MULTILINE):
        block = text[: match.start()].rsplit("- alert:", 1)[1]
        assert "#" in match.group("rest") or "# for:" in block, f"no reason beside {match.group(0).strip()}"


def test_the_drill_clock_scrapes_and_evaluates_at_one_pace_and_fits_the_drills_alert_timeouts() -> None:
    drill = _alerts(DRILL_RULES)
    pace = divide("15s", DRILL_FACTOR)  # the production scrape and evaluation interval on the drill clock
    assert {rule["interval"] for rule in drill.values()} == {pace}
    server = PrometheusServer("http://127.0.0.1:1")  # not started: only its configuration is read
    try:
        assert (server.rules, server.clock_factor, server.scrape_interval) == (DRILL_RULES, DRILL_FACTOR, pace)
    finally:
        server.close()
    # A scrape waits for the readiness round, which a hung dependency stretches to the service's 0.5 s check
    # timeout (it does not scale): the scrape timeout must lie between that and the interval.
    assert 500 < parse_duration(DRILL_SCRAPE_TIMEOUT) < parse_duration(pace)
    expected = {name for d in DRILLS for name in d.expected_alerts}
    assert expected, "drills expect alerts"
    for name in expected:
        # for: + a scrape + an evaluation + the service's readiness round, within the engine's wait
        budget_s = parse_duration(str(drill[name]["for"])) / 1000 + 2 * parse_duration(pace) / 1000 + 2
        assert budget_s <= ALERT_TIMEOUT_S, f"{name}: drill for: {drill[name]['for']} leaves no room"


def test_promtool_passes_both_files_and_their_tests() -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: install Debian's `prometheus` package (make test does)"
    folder = PRODUCTION_RULES.parent
    for command in (
        ["check", "rules", PRODUCTION_RULES.name, DRILL_RULES.name],
        ["test", "rules", PRODUCTION_TESTS.name, DRILL_TESTS.name],
    ):
        run = subprocess.run([promtool, *command], cwd=folder, capture_output=True, text=True, check=False)
        assert run.returncode == 0, run.stdout + run.stderr


def test_the_production_tests_fail_on_rules_that_page_on_one_failed_check(tmp_path: Path) -> None:
    """The scenarios prove the `for:`: with every `for:` zeroed (the old drill-tuned rules) they fail."""
    promtool = shutil.which("promtool")
    assert promtool
    zeroed = re.sub(r"^(\s+)for: \S+", r"\1for: 0s", PRODUCTION_RULES.read_text(encoding="utf-8"), flags=re.MULTILINE)
    (tmp_path / PRODUCTION_RULES.name).write_text(zeroed, encoding="utf-8")
    shutil.copy(PRODUCTION_TESTS, tmp_path)
    run = subprocess.run(
        [promtool, "test", "rules", PRODUCTION_TESTS.name], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert run.returncode != 0
    for name in ("EventsApiDatabaseDown", "EventsApiRedisDown", "EventsApiDown", "EventsApiHighErrorRatio"):
        assert name in run.stdout + run.stderr, name


def test_the_generator_cli_prints_writes_and_checks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    printed = subprocess.run(
        [sys.executable, "-m", "chaos.drills.alert_clock"], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert printed.stdout == DRILL_RULES.read_text(encoding="utf-8")
    check = subprocess.run([sys.executable, "-m", "chaos.drills.alert_clock", "--check"], cwd=REPO, check=False)
    assert check.returncode == 0
    monkeypatch.setattr(alert_clock, "DRILL_RULES", tmp_path / DRILL_RULES.name)
    monkeypatch.setattr(alert_clock, "DRILL_TESTS", tmp_path / DRILL_TESTS.name)
    assert alert_clock.main(["--check"]) == 1  # missing files are stale
    assert alert_clock.main(["--write"]) == 0
    assert alert_clock.main(["--check"]) == 0
    stale = tmp_path / DRILL_RULES.name
    database_for = divide("1m", DRILL_FACTOR)
    stale.write_text(stale.read_text(encoding="utf-8").replace(f"for: {database_for}", "for: 0s"), encoding="utf-8")
    assert alert_clock.main(["--check"]) == 1


def _fired(name: str, after_s: float, factor: int) -> AlertInterval:
    return AlertInterval(name, "symptom", "page", FAULT_AT + after_s, FAULT_AT + FAULT_FOR + 0.8, clock_factor=factor)


def test_reports_give_the_measured_alert_time_and_its_production_equivalent() -> None:
    drill_clock = result("db-down", failing=1.0, alerts=(_fired("EventsApiDatabaseDown", 5.0, DRILL_FACTOR),))
    prod = f"{5.0 * DRILL_FACTOR:.1f}"  # 5 s on the drill clock, in production time
    measured, equivalent = drill_clock.first_alert(), drill_clock.first_alert_production_equivalent()
    assert measured is not None
    assert equivalent is not None
    assert (round(measured[0], 6), measured[1]) == (5.0, "EventsApiDatabaseDown")
    assert (round(equivalent[0], 6), equivalent[1]) == (5.0 * DRILL_FACTOR, DRILL_FACTOR)
    markdown = render_markdown(drill_clock, None)
    clock = f"drill clock ×1/{DRILL_FACTOR}; production-equivalent {prod} s"
    assert f"| first alert firing (EventsApiDatabaseDown) | T+5.00 s ({clock})" in markdown
    assert f"/ 5.00 s ({clock}) (alert)" in markdown
    data = summary(drill_clock)["recovery_verification"]
    assert data["detection_alert_s"] == 5.0
    assert (data["detection_alert_clock_factor"], data["detection_alert_production_equivalent_s"]) == (
        DRILL_FACTOR,
        5.0 * DRILL_FACTOR,
    )

    production = result("db-down", failing=1.0, alerts=(_fired("EventsApiDatabaseDown", 70.0, 1),))
    assert "| first alert firing (EventsApiDatabaseDown) | T+70.00 s |" in render_markdown(production, None)

    lines = summary_lines([drill_clock, production])
    header = lines[0].split()
    assert header[:8] == ["drill", "verdict", "SEV", "MTTD", "alert", "prod-eq", "MTTR", "budget"]
    rows = [line.split() for line in lines[1:3]]
    assert [(row[4], row[5], row[-1]) for row in rows] == [
        ("5.00s", f"{prod}s", "EventsApiDatabaseDown"),
        ("70.00s", "70.0s", "EventsApiDatabaseDown"),
    ]
    assert any(f"prod-eq: alert ×{DRILL_FACTOR}" in line for line in lines[3:])
