"""The game day on one page: a self-contained HTML file a person reviews instead of a folder of reports.

Top to bottom: the verdicts and SEVs, MTTD/MTTR with their trends across runs (inline SVG,
chaos.drills.report.charts), the resiliency matrix, each drill's section (`#drill-<name>`: its timeline picture
and its report in the runbook's template), the conformance matrix, the perf-gate figures and the cross-harness
evidence matrix. The file loads nothing: CSS is inline, pictures are data: URIs, there is no script and no
font to fetch, so it opens the same from a CI artifact, a mail or a laptop offline. Every text from a result
goes through html.escape.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

from chaos.drills.report import incident
from chaos.drills.report.charts import SERIES, trend_svg
from chaos.drills.report.markdown_subset import inline, no_image, to_html
from chaos.drills.report.page_model import TIMELINE_PNG, GamedayPage
from chaos.drills.result import DrillResult, NotApplicable, alert_clock_label

STYLE = """
:root { color-scheme: light; }
body { font-family: "DejaVu Sans", "Liberation Sans", "NanumGothic", "Noto Sans CJK KR", "Malgun Gothic",
       "Apple SD Gothic Neo", sans-serif; font-size: 15px; line-height: 1.45; color: #1b1b1b;
       background: #fafafa; margin: 0; }
main { max-width: 1180px; margin: 0 auto; padding: 16px 24px 48px; background: #fff; }
h1 { font-size: 26px; margin: 8px 0 4px; }
h2 { font-size: 21px; margin: 32px 0 8px; padding-top: 8px; border-top: 3px solid #37474f; }
h3 { font-size: 18px; margin: 20px 0 6px; }
h4 { font-size: 16px; margin: 16px 0 4px; }
h5, h6 { font-size: 15px; margin: 12px 0 4px; }
table { border-collapse: collapse; margin: 6px 0 12px; font-size: 14px; }
th, td { border: 1px solid #cfd8dc; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #eceff1; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.scroll { overflow-x: auto; }
table.conformance { width: 100%; }
table.conformance td:nth-child(1) { width: 15%; }
table.conformance td:nth-child(2) { width: 52%; }
tr.group th { background: #cfd8dc; font-size: 14px; }
code, pre { font-family: "DejaVu Sans Mono", "Liberation Mono", "NanumGothicCoding", monospace; font-size: 13px; }
code { background: #f1f3f4; padding: 0 3px; border-radius: 3px; }
pre { background: #f1f3f4; padding: 8px 10px; overflow-x: auto; white-space: pre-wrap; }
pre code { background: none; padding: 0; }
nav { font-size: 14px; margin: 8px 0 4px; }
nav a { margin-right: 12px; white-space: nowrap; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-weight: bold; font-size: 13px;
         border: 1px solid transparent; }
.pass { background: #e8f5e9; color: #1b5e20; border-color: #a5d6a7; }
.fail { background: #ffebee; color: #b71c1c; border-color: #ef9a9a; }
.warn { background: #fff8e1; color: #8d5a00; border-color: #ffe082; }
.neutral { background: #eceff1; color: #37474f; border-color: #cfd8dc; }
.sev-1 { background: #b71c1c; color: #fff; }
.sev-2 { background: #e65100; color: #fff; }
.sev-3 { background: #f9a825; color: #1b1b1b; }
.sev-none { background: #eceff1; color: #37474f; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 12px 0; }
.card { border: 1px solid #cfd8dc; border-radius: 6px; padding: 8px 14px; min-width: 200px; }
.card .what { font-size: 13px; color: #546e7a; }
.card .figure { font-size: 18px; font-weight: bold; }
.note { color: #5d4037; background: #fff8e1; padding: 2px 6px; }
.failures { border-left: 4px solid #c62828; background: #ffebee; padding: 6px 12px; margin: 8px 0; }
.charts { display: flex; flex-wrap: wrap; gap: 16px; }
figure { margin: 0; }
figcaption { font-weight: bold; font-size: 14px; margin-bottom: 2px; }
svg.trend { border: 1px solid #cfd8dc; background: #fff; }
svg.trend text { font-family: "DejaVu Sans", sans-serif; fill: #263238; }
svg.trend text.tick { font-size: 12px; }
svg.trend text.axis { font-size: 12px; fill: #546e7a; }
svg.trend text.legend { font-size: 12.5px; }
img.timeline { max-width: 100%; border: 1px solid #cfd8dc; }
section.drill { margin-top: 28px; }
.template { border-left: 3px solid #cfd8dc; padding-left: 14px; }
.muted { color: #607d8b; font-size: 13px; }
"""


def write_page(page: GamedayPage, path: Path) -> Path:
    """Write the page as one UTF-8 file at `path` (its directory is created) and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_page(page), encoding="utf-8")
    return path


def render_page(page: GamedayPage) -> str:
    title = f"Game day {page.run_id}"
    body = [
        f"<h1>{escape(title)}</h1>",
        _stamp(page),
        _navigation(page),
        _verdicts(page),
        _trends(page),
        _resiliency_matrix(page),
        _drills(page),
        _conformance(page.conformance),
        _perf(page.perf),
        _evidence(page.evidence),
    ]
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            # Nothing may be fetched, even by mistake: the policy forbids every origin but inline and data:.
            '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
            "style-src 'unsafe-inline'; img-src data:\">",
            f"<title>{escape(title)}</title>",
            f"<style>{STYLE}</style>",
            "</head>",
            "<body><main>",
            *body,
            "</main></body>",
            "</html>",
            "",
        ]
    )


# -- small pieces --------------------------------------------------------------------------------------------


def _text(value: Any) -> str:
    """Any value as escaped text: None is a dash, containers are compact JSON."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Mapping | list | tuple):
        return escape(json.dumps(value, ensure_ascii=False, default=str))
    return escape(str(value))


def badge_class(outcome: str) -> str:
    """The colour of an outcome's badge; the word itself is always printed too (colour is never alone)."""
    word = outcome.strip().lower()
    if word.startswith(("passed", "pass", "ok", "conform", "fresh")):
        return "pass"
    if word.startswith(("failed", "fail", "error", "aborted")):
        return "fail"
    if word.startswith(("stale", "not run", "not checked", "inconclusive", "could not", "incomplete", "no evidence")):
        return "warn"
    return "neutral"


def _badge(outcome: str, css: str | None = None) -> str:
    return f'<span class="badge {css or badge_class(outcome)}">{escape(outcome)}</span>'


def _sev_badge(level: str) -> str:
    css = level.lower() if level in ("SEV-1", "SEV-2", "SEV-3") else "sev-none"
    return _badge(level, css)


def _seconds(value: float | None) -> str:
    return f"{value:.2f} s" if value is not None else "—"


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], *, numeric: frozenset[int] = frozenset()) -> str:
    """A table from already escaped cells; `numeric` column indexes are right-aligned."""
    head = "".join(f"<th>{escape(cell)}</th>" for cell in header)
    body = "".join(
        "<tr>"
        + "".join(f'<td class="num">{cell}</td>' if i in numeric else f"<td>{cell}</td>" for i, cell in enumerate(row))
        + "</tr>"
        for row in rows
    )
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _section(anchor: str, heading: str, *content: str) -> str:
    return f'<section id="{escape(anchor)}"><h2>{escape(heading)}</h2>\n' + "\n".join(content) + "\n</section>"


def _verdict(result: DrillResult) -> str:
    return "PASSED" if result.passed else ("ABORTED" if result.aborted else "FAILED")


# -- the header --------------------------------------------------------------------------------------------


def _stamp(page: GamedayPage) -> str:
    facts: list[tuple[str, Any]] = [("run", page.run_id)]
    if page.provenance:
        commit = str(page.provenance.get("commit", "?"))
        facts.append(("commit", commit + (" (dirty work tree)" if page.provenance.get("dirty") else "")))
        facts += [("version", page.provenance.get("version")), ("written at", page.provenance.get("at"))]
    facts += [(f"target {key}", value) for key, value in page.target.items()]
    rows = [(f"<th>{escape(key)}</th><td>{_text(value)}</td>") for key, value in facts]
    return '<div class="scroll"><table class="facts">' + "".join(f"<tr>{row}</tr>" for row in rows) + "</table></div>"


def _navigation(page: GamedayPage) -> str:
    links = [
        ("verdicts", "Verdicts"),
        ("trends", "MTTD/MTTR"),
        ("resiliency", "Resiliency matrix"),
        ("drills", "Drills"),
        ("conformance", "Conformance"),
        ("perf", "Perf gate"),
        ("evidence", "Evidence"),
    ]
    drills = [*(r.drill.name for r in page.results), *(n.drill.name for n in page.not_applicable)]
    return (
        "<nav>"
        + "".join(f'<a href="#{anchor}">{escape(label)}</a>' for anchor, label in links)
        + "</nav><nav>Drills: "
        + "".join(f'<a href="#drill-{escape(name)}">{escape(name)}</a>' for name in drills)
        + "</nav>"
    )


# -- verdicts and SEVs -------------------------------------------------------------------------------------


def _overall_cards(page: GamedayPage) -> str:
    failed = [r.drill.name for r in page.results if not r.passed]
    cards = [
        (
            "drills",
            f"{len(page.results) - len(failed)}/{len(page.results)} passed",
            "FAILED" if failed else "PASSED",
            f"failed: {', '.join(failed)}" if failed else f"{len(page.not_applicable)} not applicable",
        )
    ]
    if page.conformance is None:
        cards.append(("conformance", "skipped", "not run", "this game day ran without the conformance suite"))
    else:
        bad = [str(i) for i in page.conformance.get("failed", [])]
        total = len(page.conformance.get("requirements", []))
        cards.append(
            ("conformance", f"{total - len(bad)}/{total} requirements", "FAILED" if bad else "PASSED", ", ".join(bad))
        )
    if page.perf is None:
        cards.append(("perf gate", "not run", "not run", "no perf-gate figures given to this game day"))
    else:
        verdict = _perf_verdict(page.perf)
        cards.append(("perf gate", f"{len(_perf_queries(page.perf))} queries", verdict, ""))
    if page.evidence is not None:
        cards.append(_evidence_card(page.evidence))
    return (
        '<div class="cards">'
        + "".join(
            f'<div class="card"><div class="what">{escape(what)}</div><div class="figure">{escape(figure)}</div>'
            f'<div>{_badge(verdict)}</div><div class="muted">{escape(detail)}</div></div>'
            for what, figure, verdict, detail in cards
        )
        + "</div>"
    )


def summary_rows(results: Sequence[DrillResult], not_applicable: Sequence[NotApplicable]) -> list[list[str]]:
    """The run's table (the same measurements as chaos.drills.run.summary_lines), as escaped HTML cells."""
    rows = []
    for result in results:
        detection = result.first_failure_signal()
        alert = result.first_alert()
        production = result.first_alert_production_equivalent()
        recovery = result.recovery_s()
        alert_cell = "—"
        if alert is not None:
            factor = production[1] if production is not None else 1
            alert_cell = f"{escape(alert_clock_label(alert[0], factor))}<br><code>{escape(alert[1])}</code>"
        notes = [*result.failures, *([f"aborted: {result.aborted}"] if result.aborted else [])]
        rows.append(
            [
                f'<a href="#drill-{escape(result.drill.name)}">{escape(result.drill.name)}</a>',
                _badge(_verdict(result)),
                _sev_badge(result.severity().level),
                escape(_seconds(detection[0]) if detection else "—")
                + (f'<br><span class="muted">{escape(detection[1])}</span>' if detection else ""),
                alert_cell,
                escape(_seconds(recovery)),
                escape(f"{result.budget().availability_consumed:.3%}"),
                "<br>".join(escape(note) for note in notes) or "—",
            ]
        )
    for skipped in not_applicable:
        rows.append(
            [
                f'<a href="#drill-{escape(skipped.drill.name)}">{escape(skipped.drill.name)}</a>',
                _badge("n/a", "neutral"),
                "—",
                "—",
                "—",
                "—",
                "—",
                escape(skipped.reason),
            ]
        )
    return rows


def _verdicts(page: GamedayPage) -> str:
    header = ["drill", "verdict", "SEV", "MTTD (signal)", "first alert", "MTTR", "budget", "failures / notes"]
    return _section(
        "verdicts",
        "Verdicts and SEVs",
        _overall_cards(page),
        "".join(f'<div class="failures">{escape(note)}</div>' for note in page.run_notes),
        _table(header, summary_rows(page.results, page.not_applicable), numeric=frozenset({5, 6})),
        '<p class="muted">MTTD: fault injected → first failing readiness or API answer. First alert: as measured '
        "on the rules' clock; a drill-clock alert also shows its production-equivalent. MTTR: repair → steady "
        "state restored. Budget: share of the 30-day availability error budget the fault window consumed.</p>",
    )


# -- trends ------------------------------------------------------------------------------------------------


def _delta(now: Any, before: Any) -> str:
    if not isinstance(now, int | float) or not isinstance(before, int | float):
        return ""
    return f' <span class="muted">({now - before:+.2f})</span>'


def _trends(page: GamedayPage) -> str:
    by_drill = page.trend_records()
    names = [*dict.fromkeys([*(r.drill.name for r in page.results), *sorted(by_drill)])]
    rows = []
    charts = []
    for name in names:
        runs = by_drill.get(name, [])
        if not runs:
            continue
        latest, previous = runs[-1], (runs[-2] if len(runs) > 1 else {})
        figures = [escape(_seconds(latest.get(s.key))) + _delta(latest.get(s.key), previous.get(s.key)) for s in SERIES]
        verdicts = " ".join("✓" if r.get("verdict") == "PASSED" else "✗" for r in runs[-12:])
        rows.append([escape(name), str(len(runs)), *figures, escape(verdicts)])
        charts.append(
            f'<figure id="trend-{escape(name)}"><figcaption>{escape(name)}</figcaption>{trend_svg(name, runs)}</figure>'
        )
    header = ["drill", "runs", *(f"{s.label} (Δ)" for s in SERIES), "recent verdicts (oldest → newest)"]
    return _section(
        "trends",
        "MTTD / MTTR across runs",
        _table(header, rows, numeric=frozenset({1, 2, 3, 4})),
        '<p class="muted">Latest run\'s figure, with the change since the previous run in brackets. Charts: the '
        "last 12 runs, seconds.</p>",
        f'<div class="charts">{"".join(charts)}</div>',
    )


# -- resiliency matrix -------------------------------------------------------------------------------------


def _resiliency_matrix(page: GamedayPage) -> str:
    rows = page.matrix_rows()
    if not rows:
        return _section("resiliency", "Resiliency matrix", "<p>No drill ran.</p>")
    header = [key for key in rows[0] if key != "verdict"] + ["verdict"]
    cells = [[_badge(str(row.get(k))) if k == "verdict" else _text(row.get(k)) for k in header] for row in rows]
    return _section(
        "resiliency",
        "Resiliency matrix",
        '<p class="muted">Dependency × fault → what each API area answered during the fault window '
        "(status ×count, p95).</p>",
        _table(header, cells),
    )


# -- drill sections ----------------------------------------------------------------------------------------


def _timeline(page: GamedayPage, name: str) -> str:
    png = page.timeline_png(name)
    if png is None:
        return f'<p class="note">No timeline picture: this page was given no run directory for {escape(name)}.</p>'
    if not png.is_file():
        return f'<p class="note">No timeline picture: {escape(str(png))} was not written.</p>'
    data = base64.b64encode(png.read_bytes()).decode("ascii")
    return (
        f'<figure><img class="timeline" alt="timeline of {escape(name)}: requests, readiness and alerts" '
        f'src="data:image/png;base64,{data}"></figure>'
    )


def _template_image(alt: str, src: str) -> str:
    """The report's own picture reference: the timeline is already shown at the top of its section."""
    if src == TIMELINE_PNG:
        return '<p class="muted">(The timeline picture is shown at the top of this drill\'s section.)</p>'
    return no_image(alt, src)


def _drill_section(page: GamedayPage, result: DrillResult) -> str:
    name = result.drill.name
    failures = [*result.failures, *([f"aborted: {result.aborted}"] if result.aborted else [])]
    failure_box = (
        '<div class="failures"><strong>Failures</strong><ul>'
        + "".join(f"<li>{escape(failure)}</li>" for failure in failures)
        + "</ul></div>"
        if failures
        else ""
    )
    report = to_html(incident.render_markdown(result, TIMELINE_PNG), heading_offset=2, image=_template_image)
    return (
        f'<section class="drill" id="drill-{escape(name)}">'
        f"<h2>{escape(name)} — {escape(result.drill.title)} {_badge(_verdict(result))} "
        f"{_sev_badge(result.severity().level)}</h2>\n"
        f"{failure_box}\n<h3>Timeline</h3>\n{_timeline(page, name)}\n"
        f'<div class="template">{report}</div>\n</section>'  # its own "# 드릴 보고서" is an h3
    )


def _not_applicable_section(skipped: NotApplicable) -> str:
    name = skipped.drill.name
    return (
        f'<section class="drill" id="drill-{escape(name)}">'
        f"<h2>{escape(name)} — {escape(skipped.drill.title)} {_badge('NOT APPLICABLE', 'neutral')}</h2>"
        f"<p>{escape(skipped.reason)}. Not a pass: this target gave no evidence for "
        f"{escape(', '.join(skipped.drill.requirements))}.</p></section>"
    )


def _drills(page: GamedayPage) -> str:
    sections = [_drill_section(page, r) for r in page.results]
    sections += [_not_applicable_section(n) for n in page.not_applicable]
    return '<div id="drills">' + "\n".join(sections) + "</div>"


# -- the other harnesses ------------------------------------------------------------------------------------


def _conformance_row(row: Mapping[str, Any]) -> str:
    tests = row.get("tests") or {}
    tests_html = "<br>".join(
        f"<code>{escape(str(test).split('::', 1)[-1])}</code> {escape(str(outcome))}" for test, outcome in tests.items()
    )
    figures = row.get("figures") or {}
    figures_html = "<br>".join(f"{escape(str(k))}: {_text(v)}" for k, v in figures.items())
    cells = [
        f"<strong>{escape(str(row.get('id', '?')))}</strong>",
        inline(str(row.get("statement", ""))),
        tests_html or "—",
        _badge(str(row.get("outcome", "?"))) + (f'<div class="muted">{figures_html}</div>' if figures else ""),
    ]
    return "<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>"


def _conformance(matrix: Mapping[str, Any] | None) -> str:
    if matrix is None:
        return _section("conformance", "Conformance matrix", "<p>Conformance was skipped in this game day.</p>")
    requirements: list[Mapping[str, Any]] = list(matrix.get("requirements", []))
    body = []
    section = None
    for row in requirements:  # the registry's order, one header row per runbook section
        if row.get("section") != section:
            section = row.get("section")
            body.append(f'<tr class="group"><th colspan="4">{_text(section)}</th></tr>')
        body.append(_conformance_row(row))
    tally: dict[str, int] = {}
    for row in requirements:
        key = str(row.get("outcome", "?")).split(" (", 1)[0]  # "not run (not selected)" counts as "not run"
        tally[key] = tally.get(key, 0) + 1
    failed = [str(i) for i in matrix.get("failed", [])]
    head = "".join(f"<th>{label}</th>" for label in ("ID", "requirement", "tests", "outcome"))
    return _section(
        "conformance",
        "Conformance matrix",
        f"<p>Target: {_text(matrix.get('target'))} · failed: {escape(', '.join(failed)) or 'none'}</p>",
        "<p>" + " · ".join(f"{_badge(outcome)} ×{n}" for outcome, n in tally.items()) + "</p>",
        '<p class="muted">An outcome that names a drill or a gate ("verified by …") points at the harness that '
        "checks the requirement; it is not an outcome of this suite. The evidence matrix gives that harness's "
        "latest result.</p>",
        f'<div class="scroll"><table class="conformance"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>",
    )


def _perf_queries(perf: Mapping[str, Any]) -> Mapping[str, Mapping[str, Any]]:
    queries = perf.get("queries", perf.get("summaries", {}))
    return queries if isinstance(queries, Mapping) else {}


def _perf_verdict(perf: Mapping[str, Any]) -> str:
    if "verdict" in perf:
        return str(perf["verdict"])
    if "passed" in perf:
        return "PASSED" if perf["passed"] else "FAILED"
    return "?"


def _perf(perf: Mapping[str, Any] | None) -> str:
    if perf is None:
        return _section("perf", "Perf gate", "<p>No perf gate ran in this game day.</p>")
    failed = perf.get("failed") if isinstance(perf.get("failed"), Mapping) else {}
    columns = ("count", "mean_ms", "p50_ms", "p95_ms", "p99_ms", "max_ms", "errors")
    rows = []
    for name, figures in _perf_queries(perf).items():
        verdict = figures.get("verdict") or ("FAIL" if failed and failed.get(name) else "ok")
        problems = failed.get(name) if failed else None
        rows.append(
            [
                f"<code>{escape(str(name))}</code>",
                *(_figure(figures.get(column)) for column in columns),
                _badge(str(verdict)) + (f'<div class="muted">{_text(problems)}</div>' if problems else ""),
            ]
        )
    thresholds = perf.get("thresholds")
    limits = (
        f"<p>Thresholds: mean ≤ {_text(thresholds.get('mean_ms'))} ms, p95 ≤ {_text(thresholds.get('p95_ms'))} ms "
        "per query.</p>"
        if isinstance(thresholds, Mapping)
        else ""
    )
    header = ["query", "count", "mean ms", "p50 ms", "p95 ms", "p99 ms", "max ms", "errors", "verdict"]
    return _section(
        "perf",
        "Perf gate",
        f"<p>Overall: {_badge(_perf_verdict(perf))}</p>",
        limits,
        _table(header, rows, numeric=frozenset(range(1, 8))),
    )


def _figure(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return _text(value)
    return f"{value:,}" if isinstance(value, int) else f"{value:,.2f}"


ID_KEYS = ("id", "requirement", "requirement_id")


def _row_id(row: Mapping[str, Any]) -> Any:
    return next((row[key] for key in ID_KEYS if key in row), "?")


def _evidence_card(rows: Sequence[Mapping[str, Any]]) -> tuple[str, str, str, str]:
    """How many requirements have fresh passing evidence from every harness that verifies them
    (conformance.evidence's `verdict`), and what the others are: "no evidence" or "stale" is never a pass."""
    verdicts = Counter(str(row.get("verdict", "no verdict")) for row in rows)
    passed = verdicts.pop("passed", 0)
    if "failed" in verdicts:
        badge = "FAILED"
    elif verdicts:
        badge = "incomplete" if len(verdicts) > 1 else next(iter(verdicts))
    else:
        badge = "PASSED"
    tally = ", ".join(f"{count} {verdict}" for verdict, count in verdicts.most_common())
    return ("evidence", f"{passed}/{len(rows)} requirements passed", badge, tally)


def _evidence_cell(key: str, value: Any) -> str:
    """A harness's evidence (a dict with outcome, at, commit, target…) as its outcome badge and its facts."""
    if key == "stale":
        return _badge("stale", "warn") if value else _badge("fresh", "pass")
    if isinstance(value, Mapping):
        outcome = value.get("outcome", value.get("verdict"))
        facts = [f"{escape(str(k))}: {_text(v)}" for k, v in value.items() if k not in ("outcome", "verdict")]
        stale = value.get("stale")
        return (
            (_badge(str(outcome)) if outcome is not None else "")
            + (" " + _badge("stale", "warn") if stale else "")
            + (f'<div class="muted">{"<br>".join(facts)}</div>' if facts else "")
        )
    if isinstance(value, str) and key in ("outcome", "verdict", "conformance", "drills", "gates"):
        return _badge(value)
    return _text(value)


def _evidence(rows: Sequence[Mapping[str, Any]] | None) -> str:
    if rows is None:
        return _section("evidence", "Evidence matrix", "<p>No cross-harness evidence matrix was built.</p>")
    keys: list[str] = []
    for row in rows:
        keys += [key for key in row if key not in keys]
    id_key = next((key for key in ID_KEYS if key in keys), None)
    header = ([id_key] if id_key else []) + [key for key in keys if key != id_key]
    cells = [
        [
            f"<strong>{_text(row.get(key))}</strong>" if key == id_key else _evidence_cell(key, row.get(key))
            for key in header
        ]
        for row in rows
    ]
    return _section(
        "evidence",
        "Evidence matrix",
        '<p class="muted">Every requirement\'s latest outcome from each harness, with when and on which '
        "commit and target it was obtained; evidence from another commit or older than the bound is stale, "
        "not passed.</p>",
        _table(header, cells) if rows else "<p>No rows.</p>",
    )
