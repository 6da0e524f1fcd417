"""The game-day HTML page, opened for real in headless Chromium: it loads nothing but itself, raises no console
or page error, and shows every drill's section, the summary table and one trend chart per drill; the
screenshot is kept in reports/test-artifacts/ for a person to look at. Unit checks: every text is escaped,
the Markdown subset, and the charts' edge cases (one run, no figure)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from chaos.drills.report import matrix
from chaos.drills.report.charts import trend_svg
from chaos.drills.report.html import render_page, write_page
from chaos.drills.report.markdown_subset import to_html
from chaos.drills.report.page_model import GamedayPage
from chaos.drills.report.timeline import draw_timeline
from chaos.drills.result import DrillResult, NotApplicable
from conformance.plugin import RequirementOutcome, build_matrix
from conformance.registry import load_registry
from tests.browser import open_file
from tests.drills.drill_results import alert, drill, result

REPO = Path(__file__).resolve().parents[2]
ARTIFACT = REPO / "reports" / "test-artifacts" / "gameday-report.png"
RUN_ID = "20261201T120000Z"
NO_PICTURE = "redis-slow"  # its timeline.png is not written: the page says so instead of failing


def _results() -> list[DrillResult]:
    db_down = result("db-down", failing=0.5, alerts=(alert("EventsApiDatabaseDown", "page", 1.2),))
    redis_down = result("redis-down", alerts=(alert("EventsApiRateLimitFallback", "ticket", 2.0),))
    db_slow = result("db-slow", failing=0.3, lost=2)
    db_slow.failures.append("2 acknowledged events are missing after recovery (RB-DATA-DURABLE) <b>bold?</b>")
    redis_slow = result(NO_PICTURE, mitigation=True)
    return [db_down, redis_down, db_slow, redis_slow]


def _history() -> list[dict[str, Any]]:
    """Four earlier runs of db-down and redis-down (one without an alert): db-slow and redis-slow ran only now."""
    records = []
    for run in range(4):
        for name, mttd, mttr in (("db-down", 0.8, 1.9), ("redis-down", 0.3, 0.7)):
            records.append(
                {
                    "run": f"2026110{run + 1}T120000Z",
                    "drill": name,
                    "started_at": f"2026-11-0{run + 1}T12:00:00+00:00",
                    "verdict": "FAILED" if run == 1 else "PASSED",
                    "severity": "SEV-2",
                    "mttd_signal_s": round(mttd + 0.15 * run, 3),
                    "mttd_alert_s": None if run == 2 else round(2.1 - 0.2 * run, 3),
                    "first_alert": "EventsApiDown",
                    "mttr_s": round(mttr - 0.15 * run, 3),
                    "alerts_resolved_s": 1.0,
                    "budget_consumed": 0.0005,
                }
            )
    return records


def _conformance() -> dict[str, Any]:
    outcomes = {
        "RB-HEALTH-LIVE": RequirementOutcome(tests={"conformance/checks/test_health.py::test_live_ok": "passed"}),
        "RB-HEALTH-READY": RequirementOutcome(
            tests={"conformance/checks/test_health.py::test_ready_checks": "failed"}, figures={"latency_ms": 3.2}
        ),
    }
    return build_matrix(load_registry(), outcomes, "embedded stack (로컬)")


PERF = {
    "verdict": "PASSED",
    "thresholds": {"mean_ms": 250, "p95_ms": 400},
    "queries": {
        "list_recent": {"count": 4210, "mean_ms": 12.4, "p50_ms": 10.1, "p95_ms": 31.0, "p99_ms": 48.2,
                        "max_ms": 90.3, "errors": 0, "verdict": "ok"},
        "counts_by_type": {"count": 3980, "mean_ms": 18.9, "p50_ms": 15.0, "p95_ms": 44.5, "p99_ms": 70.1,
                           "max_ms": 120.0, "errors": 0, "verdict": "ok"},
    },
}  # fmt: skip

EVIDENCE = [  # conformance.evidence's display rows: text cells, id first, the overall verdict last
    {
        "id": "RB-DB-FAILFAST",
        "requirement": "A database that is down, refusing or hung is answered with 503 at once…",
        "conformance": "passed (2026-12-01T11:50:00+00:00, abc1234, local)",
        "drills": "passed (db-down; 2026-12-01T12:00:00+00:00, abc1234, local)",
        "gates": "—",
        "verdict": "passed",
    },
    {
        "id": "RB-PERF-GATE",
        "requirement": "The query suite's mean and p95 within the thresholds.",
        "conformance": "—",
        "drills": "—",
        "gates": "passed (perf-queries; 2026-10-01T09:00:00+00:00, 0ld0000, staging) STALE: another commit",
        "verdict": "stale",
    },
]


def _page(tmp_path: Path, results: list[DrillResult] | None = None) -> GamedayPage:
    results = _results() if results is None else results
    run_dir = tmp_path / "drills" / RUN_ID
    for drill_result in results:
        if drill_result.drill.name != NO_PICTURE:
            draw_timeline(drill_result, run_dir / drill_result.drill.name / "timeline.png")
    return GamedayPage(
        run_id=RUN_ID,
        target={"name": "local", "kind": "local", "description": "로컬 스택: throwaway PostgreSQL and Redis"},
        results=results,
        not_applicable=[NotApplicable(drill("instance-killed"), frozenset({"replicas"}), "local")],
        run_dir=run_dir,
        history=_history(),
        matrix=matrix.build(results),
        conformance=_conformance(),
        perf=PERF,
        evidence=EVIDENCE,
        provenance={"commit": "0123456789abcdef", "dirty": True, "version": "1.4.0", "at": "2026-12-01T12:20:00+00:00"},
    )


def test_the_page_opens_in_chromium_with_every_section_and_loads_nothing(tmp_path: Path) -> None:
    page_model = _page(tmp_path)
    path = write_page(page_model, tmp_path / "gameday.html")
    names = [r.drill.name for r in page_model.results] + [n.drill.name for n in page_model.not_applicable]
    with open_file(path) as visit:
        page = visit.page
        for name in names:
            assert page.locator(f"#drill-{name}").is_visible(), name
        rows = page.locator("#verdicts table tbody tr")
        assert rows.count() == len(names)
        table = [[cell.strip() for cell in rows.nth(i).locator("td").all_inner_texts()] for i in range(rows.count())]
        assert [row[0] for row in table] == names
        assert [row[1] for row in table] == ["PASSED", "PASSED", "FAILED", "PASSED", "n/a"]
        assert table[0][2] == "SEV-2"
        assert "EventsApiDatabaseDown" in table[0][4]
        assert "acknowledged events are missing" in table[2][7]
        for drill_result in page_model.results:  # one chart per drill, with a point per run and series
            name = drill_result.drill.name
            chart = page.locator(f"#trend-{name} svg")
            assert chart.count() == 1, name
            assert chart.bounding_box() is not None
        assert page.locator("#trend-db-down svg polyline").count() >= 2  # 5 runs: lines
        assert page.locator("#trend-db-slow svg polyline").count() == 0  # 1 run: dots only
        assert page.locator("#trend-db-slow svg circle").count() >= 1
        pictures = page.locator("img.timeline")
        assert pictures.count() == len(page_model.results) - 1  # NO_PICTURE has a note instead
        assert all(page.evaluate("i => i.naturalWidth", pictures.nth(i).element_handle()) > 0 for i in range(3))
        assert "was not written" in page.locator(f"#drill-{NO_PICTURE}").inner_text()
        assert page.locator("#drill-db-down h4", has_text="영향 / Impact").is_visible()  # Korean as text
        requirements = page_model.conformance["requirements"]  # type: ignore[index]
        assert page.locator("#conformance tbody tr:not(.group)").count() == len(requirements)
        assert page.locator("#perf tbody tr").count() == 2
        assert page.locator("#evidence tbody tr").first.locator("td").first.inner_text() == "RB-DB-FAILFAST"
        evidence_card = page.locator(".card", has_text="evidence").inner_text()
        assert "1/2 requirements passed" in evidence_card
        assert "1 stale" in evidence_card  # stale is never a pass
        visit.screenshot(tmp_path / "gameday-report.png", ARTIFACT)
        assert visit.problems() == []
        assert visit.requests == [visit.url]  # the file itself, nothing else: no CDN, font or script
    assert (tmp_path / "gameday-report.png").stat().st_size > 50_000
    assert ARTIFACT.stat().st_size > 50_000


def test_a_failure_message_with_markup_stays_text(tmp_path: Path) -> None:
    hostile = result("db-down")
    hostile.failures.append('<script>alert("x")</script><img src=x onerror=alert(1)>')
    hostile.notes.append("[click](javascript:alert(1))")
    html = render_page(_page(tmp_path, [hostile]))
    assert "<script" not in html.lower()
    assert "<img src=x" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert 'href="javascript:' not in html
    assert not re.search(r"<(link|iframe|object|embed)\b", html)
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)


def test_the_markdown_subset() -> None:
    html = to_html(
        "# Title `x<y`\n\nA **bold** [link](#drill-db-down) and [bad](javascript:alert(1)).\n\n"
        "| a | b |\n|---|---|\n| one \\| two | `c` |\n\n- item *\n- second\n\n```text\n<raw> **not bold**\n```\n",
        heading_offset=2,
    )
    assert "<h3>Title <code>x&lt;y</code></h3>" in html
    assert "<strong>bold</strong>" in html
    assert '<a href="#drill-db-down">link</a>' in html
    assert "bad (javascript:alert(1))" in html
    assert "<td>one | two</td><td><code>c</code></td>" in html
    assert "<ul><li>item *</li><li>second</li></ul>" in html
    assert '<pre data-language="text"><code>&lt;raw&gt; **not bold**</code></pre>' in html


@pytest.mark.parametrize(
    ("records", "markers", "lines"),
    [
        ([{"run": "r1", "mttd_signal_s": 1.0, "mttd_alert_s": 2.0, "mttr_s": 0.5}], 3, 0),
        ([{"run": f"r{i}", "mttd_signal_s": 1.0 + i, "mttd_alert_s": None, "mttr_s": 0.5} for i in range(3)], 6, 2),
    ],
)
def test_a_chart_draws_one_marker_per_figure(records: list[dict[str, Any]], markers: int, lines: int) -> None:
    svg = trend_svg("db-down", records)
    assert svg.count('class="point"') == markers
    assert svg.count('class="key"') == 3  # the legend: one marker per series
    assert svg.count("<polyline") == lines


def test_a_chart_without_figures_says_so() -> None:
    svg = trend_svg("db-down", [{"run": "r1", "mttd_signal_s": None, "mttd_alert_s": None, "mttr_s": None}])
    assert "no MTTD/MTTR measured" in svg


def test_a_page_says_what_did_not_run_and_reads_the_query_gate_json() -> None:
    """No conformance, evidence or run directory; the perf figures as `benchmark_queries.py --json` prints them."""
    figures = {"count": 10, "mean_ms": 300.0, "p50_ms": 280.0, "p95_ms": 450.0, "p99_ms": 500.0, "max_ms": 510.0}
    perf = {"summaries": {"list_recent": figures | {"errors": 0}}, "failed": {"list_recent": ["mean 300 ms"]}}
    page = GamedayPage(
        run_id="r1",
        target={},
        results=[result("db-down")],
        perf=perf | {"passed": False},
        run_notes=["interrupted <^C>"],
    )
    html = render_page(page)
    assert '<div class="failures">interrupted &lt;^C&gt;</div>' in html
    assert "Conformance was skipped in this game day." in html
    assert "No cross-harness evidence matrix was built." in html
    assert "this page was given no run directory for db-down" in html
    assert '<span class="badge fail">FAILED</span>' in html.split('id="perf"')[1]
    assert "mean 300 ms" in html
    assert 'id="trend-db-down"' in html  # the run's own record: a first game day still has a point per drill
