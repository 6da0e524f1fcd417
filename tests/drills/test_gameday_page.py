"""A real game day writes one HTML page: a drill run for real on a throwaway stack (conformance and the perf gate
left out to keep it short; their parts of the page are tested in test_html_report.py), then the page opened in
Chromium with that drill's section, its timeline picture and the cross-harness matrix, and the exit status."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chaos.drills.gameday import HTML_NAME, combined_status, run_gameday
from conformance.verdicts import Exit
from tests.browser import open_file

pytestmark = pytest.mark.integration

DRILL = "redis-down"  # the quickest drill that injects and removes a real fault


def test_a_game_day_writes_its_html_page_and_prints_where(tmp_path: Path) -> None:
    printed: list[str] = []
    status = run_gameday(tmp_path, [DRILL], skip_conformance=True, skip_perf=True, progress=printed.append)
    output = "\n".join(printed)
    assert status == Exit.OK, output
    pages = list((tmp_path / "drills").glob(f"*/{HTML_NAME}"))
    assert len(pages) == 1, output
    assert f"report: {pages[0]}" in printed
    rows = {row["id"]: row for row in json.loads((tmp_path / "evidence-matrix.json").read_text())}
    assert any(DRILL in json.dumps(row) for row in rows.values())  # the drill's evidence is in the matrix
    with open_file(pages[0]) as visit:
        page = visit.page
        assert page.locator(f"#drill-{DRILL}").is_visible()
        assert page.locator(f"#drill-{DRILL} img.timeline").count() == 1
        verdicts = page.locator("#verdicts table tbody tr").first.locator("td").all_inner_texts()
        assert [verdicts[0].strip(), verdicts[1].strip()] == [DRILL, "PASSED"]
        assert page.locator("#evidence tbody tr").count() == len(rows)
        assert visit.problems() == []


@pytest.mark.parametrize(
    ("statuses", "combined"),
    [
        ([Exit.OK, Exit.OK, Exit.OK], Exit.OK),
        ([Exit.OK, Exit.FAILED, Exit.ABORTED], Exit.FAILED),
        ([Exit.ABORTED, Exit.OK, Exit.COULD_NOT_RUN], Exit.ABORTED),
        ([Exit.OK, Exit.COULD_NOT_RUN], Exit.COULD_NOT_RUN),
        ([Exit.OK, Exit.USAGE], Exit.COULD_NOT_RUN),  # a harness refused its arguments: nothing it checked
    ],
)
def test_the_game_days_status_is_the_most_telling_of_its_harnesses(statuses: list[int], combined: Exit) -> None:
    assert combined_status(statuses) == combined
