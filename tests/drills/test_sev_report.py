"""RB-INC-CADENCE: each level's SEV update has exactly the runbook's fields ("SEV 보고 형식"), parsed from
docs/RUNBOOK.md so the test fails when the code and the runbook drift apart; and RB-OBS-ALERTS in the report:
the follow-up discusses the alerts the drill actually fired, held against its severity."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from chaos.drills.report.incident import render_markdown, summary
from chaos.drills.sev import SEV_REPORT_FIELDS
from tests.drills.drill_results import alert, result

RUNBOOK = Path(__file__).resolve().parents[2] / "docs" / "RUNBOOK.md"


def runbook_sev_fields() -> dict[str, list[str]]:
    """`- SEV-n 보고:` and its sub-bullets, each a comma-separated list of fields, from "## SEV 보고 형식"."""
    text = RUNBOOK.read_text(encoding="utf-8")
    section = text.split("## SEV 보고 형식", 1)[1].split("\n## ", 1)[0]
    fields: dict[str, list[str]] = {}
    level = None
    for line in section.splitlines():
        if heading := re.fullmatch(r"- (SEV-[123]) 보고:", line.strip()):
            level = heading.group(1)
            fields[level] = []
        elif level and re.match(r"\s+- ", line):
            fields[level] += [field.strip() for field in line.strip()[2:].split(",")]
    return fields


def rendered_sev_fields(markdown: str) -> tuple[str, list[str]]:
    """The level and the field names of the report's SEV section (`- <field> / <English>: <value>` lines)."""
    section = markdown.split("## SEV 보고 / SEV update skeleton", 1)[1].split("\n## ", 1)[0]
    level = re.search(r"^(SEV-[123]) 보고:$", section, re.MULTILINE)
    assert level, section
    names = []
    for line in section.splitlines():
        if line.startswith("- "):
            name, _, rest = line[2:].partition(" / ")
            assert rest.split(": ", 1)[1].strip(), f"empty value: {line}"
            names.append(name)
    return level.group(1), names


def test_the_runbook_section_parses_into_three_levels() -> None:
    fields = runbook_sev_fields()
    assert set(fields) == {"SEV-1", "SEV-2", "SEV-3"}
    assert "영구 조치 일정" in fields["SEV-3"]
    assert "임시 우회 경로" in fields["SEV-3"]


def test_the_code_lists_each_levels_fields_in_the_runbooks_words_and_order() -> None:
    assert {level: [f.korean for f in fields] for level, fields in SEV_REPORT_FIELDS.items()} == runbook_sev_fields()


@pytest.mark.parametrize(
    ("made", "level"),
    [
        (lambda: result("db-down", lost=1), "SEV-1"),
        (lambda: result("db-down", failing=0.5), "SEV-2"),
        (lambda: result("redis-down"), "SEV-3"),
    ],
)
def test_each_levels_report_renders_exactly_the_runbooks_fields(made: object, level: str) -> None:
    drill_result = made()  # type: ignore[operator]
    assert drill_result.severity().level == level
    rendered_level, names = rendered_sev_fields(render_markdown(drill_result, None))
    assert (rendered_level, names) == (level, runbook_sev_fields()[level])
    fields = summary(drill_result)["sev_report"]["fields"]
    assert [f["field"] for f in fields] == names  # the JSON report carries the same fields


def test_a_sev3_update_names_the_workaround_path_and_the_permanent_fix_schedule() -> None:
    drill_result = result("redis-down")
    markdown = render_markdown(drill_result, None)
    sev = markdown.split("## SEV 보고 / SEV update skeleton", 1)[1].split("\n## ", 1)[0]
    path = next(line for line in sev.splitlines() if line.startswith("- 임시 우회 경로"))
    assert drill_result.drill.mitigation.description in path  # the degraded mode is the path, not "yes"
    assert "우회 가능" not in sev
    assert ": yes" not in sev
    assert "60분 간격 업데이트" in sev
    assert "2026-12-01T13:00:00+00:00" in sev
    assert any(line.startswith("- 영구 조치 일정") for line in sev.splitlines())


def test_a_sev1_update_says_there_is_no_workaround() -> None:
    sev = render_markdown(result("db-down", lost=1), None).split("## SEV 보고 / SEV update skeleton", 1)[1]
    line = next(line for line in sev.splitlines() if line.startswith("- 우회 불가 여부"))
    assert "불가 / no" in line
    assert "2026-12-01T12:15:00+00:00" in sev


def follow_up(markdown: str) -> str:
    return markdown.split("## 후속조치 / Follow-up", 1)[1].split("\n## ", 1)[0]


def test_the_follow_up_flags_a_page_during_a_sev3_drill() -> None:
    fired = (
        alert("EventsApiRedisDown", "ticket", 0.3),
        alert("EventsApiRateLimitFallback", "ticket", 0.4),
        alert("EventsApiNotReady", "page", 0.2),
    )
    text = follow_up(render_markdown(result("redis-down", alerts=fired), None))
    assert "EventsApiNotReady (page, symptom, T+0.20 s" in text
    assert "EventsApiNotReady paged during a SEV-3 incident" in text
    assert "Routing matches" not in text


def test_the_follow_up_confirms_tickets_only_for_a_sev3_drill() -> None:
    fired = (alert("EventsApiRedisDown", "ticket", 0.3), alert("EventsApiRateLimitFallback", "ticket", 0.4))
    text = follow_up(render_markdown(result("redis-down", alerts=fired), None))
    assert "EventsApiRedisDown (ticket" in text
    assert "EventsApiRateLimitFallback (ticket" in text
    assert "Routing matches SEV-3: only tickets" in text
    assert "paged during" not in text


def test_the_follow_up_flags_a_sev1_drill_that_paged_nobody_and_a_missing_expected_alert() -> None:
    text = follow_up(render_markdown(result("db-down", lost=1), None))
    assert "Alerts fired during the fault: none" in text
    assert "No paging alert fired during a SEV-1 incident" in text
    assert "Expected but did not fire: EventsApiDatabaseDown" in text


def test_the_follow_up_confirms_a_page_for_a_sev2_drill() -> None:
    fired = (alert("EventsApiDatabaseDown", "page", 0.8),)
    text = follow_up(render_markdown(result("db-down", failing=0.5, alerts=fired), None))
    assert "Routing matches SEV-2: EventsApiDatabaseDown paged" in text
    assert "Expected but did not fire" not in text
