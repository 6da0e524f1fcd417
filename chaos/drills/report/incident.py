"""Drill reports in the runbook's incident template (RB-INC-TEMPLATE), Markdown and JSON with the same
content: 영향, 원인 (추정/확정), 임시조치 (and its risk), 복구검증, then the scenario's own field, with the
severity (RB-INC-SEV), the SEV report skeleton and its cadence (RB-INC-CADENCE), measured detection and
recovery (RB-INC-MTTD-MTTR) and the error budget consumed (RB-SLO-BUDGET)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from chaos.drills.model import SCENARIO_TEMPLATE
from chaos.drills.prometheus import AlertInterval
from chaos.drills.report import fleet_view
from chaos.drills.result import DrillResult, alert_clock_label, drill_time
from chaos.drills.sev import SEV_REPORT_FIELDS, Severity
from chaos.drills.slo import objectives


def _seconds(value: float | None) -> str:
    return f"{value:.2f} s" if value is not None else "—"


def summary(result: DrillResult) -> dict[str, Any]:
    """Everything the report says, as data (the JSON report)."""
    drill = result.drill
    severity = result.severity()
    budget = result.budget()
    detection = result.first_failure_signal()
    alert = result.first_alert()
    production_alert = result.first_alert_production_equivalent()
    impact = result.impact()
    template, scenario_field = SCENARIO_TEMPLATE[drill.scenario]
    start, end = result.fault_window
    next_update = severity.next_update_due(result.started_at)
    review = alert_review(result)
    return {
        "drill": drill.name,
        "title": drill.title,
        "template": template,
        "requirements": list(drill.requirements),
        "verdict": "PASSED" if result.passed else "FAILED",
        "failures": result.failures,
        "started_at": result.started_at.isoformat(),
        "affected_version": {"app": result.version, "schema_revision": result.schema_revision},
        "severity": {"level": severity.level, "rule": severity.rule, "workaround": severity.workaround},
        "impact": {
            "fault_window_s": round(end - start, 2),
            "requests_by_status": result.status_counts(),
            "read_failure_ratio": round(impact.read_failure_ratio, 4),
            "write_failure_ratio": round(impact.write_failure_ratio, 4),
            "p95_ms": round(impact.p95_s * 1000, 1) if impact.p95_s is not None else None,
            "degraded_signals": list(impact.degraded_signals),
        },
        "cause": {"suspected": drill.suspected_cause, "confirmed": drill.confirmed_cause},
        "mitigation": {"action": drill.mitigation.description, "risk": drill.mitigation.risk},
        "recovery_verification": {
            "marks": {name: round(t - start, 3) for name, t in result.marks.items()},
            "detection_signal_s": round(detection[0], 3) if detection else None,
            "detection_signal": detection[1] if detection else None,
            "detection_alert_s": round(alert[0], 3) if alert else None,
            "detection_alert": alert[1] if alert else None,
            # The rules' clock: 1 = production timing; N = the drill variant, N times faster (alert_clock).
            "detection_alert_clock_factor": production_alert[1] if production_alert else None,
            "detection_alert_production_equivalent_s": round(production_alert[0], 1) if production_alert else None,
            "recovery_s": round(value, 3) if (value := result.recovery_s()) is not None else None,
            "alerts_resolved_s": round(value, 3) if (value := result.alerts_resolved_s()) is not None else None,
            "alerts": [
                asdict(a)
                | {
                    "fired_at": round(a.fired_at - start, 3),
                    "resolved_at": round(a.resolved_at - start, 3) if a.resolved_at else None,
                }
                for a in result.alerts
            ],
            "durability": asdict(result.durability) if result.durability else None,
        },
        "alert_review": review,
        scenario_field: [*review, *drill.follow_up] if drill.scenario != "release" else result.notes,
        "error_budget": {
            "slo": objectives().describe(),
            "availability_consumed": budget.availability_consumed,
            "latency_consumed": budget.latency_consumed,
            "status": budget.status(),
        },
        "sev_report": {
            "level": severity.level,
            "scope": _scope(result),
            "update_every_min": int(severity.update_every.total_seconds() // 60),
            "next_update_due": next_update.isoformat(),
            "fields": sev_update(result, severity),
        },
        "changelog_entry": changelog_entry(result) if drill.scenario == "release" else None,
        "target": result.target,
        "aborted": result.aborted,
        "measurements": result.measurements,
        "load_balancer": fleet_view.balancer_data(result),
        # Probe times: `at` on the report's origin (T0, the fault injection; the drill's start if no fault was
        # injected), `t` on the drill clock; the console prints the same values (chaos.drills.result.drill_time).
        "time_origin": "fault injected" if "fault injected" in result.marks else "drill started",
        "probes": [
            asdict(outcome)
            | {
                "at": round(outcome.at - start, 3) if outcome.at is not None else None,
                "t": round(outcome.at, 3) if outcome.at is not None else None,
                "last": asdict(outcome.last),
            }
            for outcome in result.outcomes
        ],
    }


def sev_update(result: DrillResult, severity: Severity) -> list[dict[str, str]]:
    """The SEV update for the drill's level: that level's fields from the runbook (`SEV_REPORT_FIELDS`), in
    its order, each filled from what the drill measured; what a drill cannot know stays a placeholder."""
    drill = result.drill
    start, end = result.fault_window
    impact = result.impact()
    scope = (
        f"{_scope(result)} for {end - start:.1f} s; reads failed {impact.read_failure_ratio:.0%}, writes failed "
        f"{impact.write_failure_ratio:.0%}"
    )
    recovery = result.recovery_s()
    recovery_eta = (
        f"recovered {recovery:.2f} s after the repair (measured)" if recovery is not None else "not recovered"
    )
    mitigated = result.marks.get("mitigation applied")
    if drill.mitigation.apply is None:
        detection = result.first_failure_signal()
        when = f", in force from T+{detection[0]:.2f} s" if detection else ""
        mitigation_eta = f"none needed: the service entered its degraded mode by itself{when}"
    elif mitigated is not None:
        mitigation_eta = f"applied at T{mitigated - start:+.2f} s (measured)"
    else:
        mitigation_eta = "not applied (the drill stopped before its mitigation)"
    if drill.scenario == "release":
        permanent = "fix the rolled-back change and redeploy it through the release gates"
    else:
        items = len(drill.follow_up)
        permanent = f"{items} follow-up item(s) under {SCENARIO_TEMPLATE[drill.scenario][1]}" if items else "none"
    values = {
        "scope": scope,
        "customer_impact": severity.rule,
        "workaround": ("가능 / yes: " if severity.workaround else "불가 / no: ") + severity.workaround_note,
        "workaround_path": f"{severity.workaround_note} — {drill.mitigation.description}",
        "next_update": f"due {severity.next_update_due(result.started_at).isoformat()}",
        "mitigation_eta": mitigation_eta,
        "recovery_eta": recovery_eta,
        "mitigation_recovery_eta": f"mitigation: {mitigation_eta}; recovery: {recovery_eta}",
        "permanent_fix": f"<date and owner, set at the post-incident review (사후 처리)> — {permanent}",
    }
    return [
        {"field": field.korean, "english": field.english, "value": values[field.fill]}
        for field in SEV_REPORT_FIELDS[severity.level]
    ]


def alert_review(result: DrillResult) -> list[str]:
    """The follow-up's discussion of the alerts this drill actually fired (from Prometheus), held against the
    drill's severity — the runbook pages for SEV-1/SEV-2 and files a ticket for SEV-3 — and its expectations."""
    if not result.alerts_watched:
        return ["Alerts were not evaluated (run without Prometheus): alert routing is unverified by this drill."]
    start, _ = result.fault_window
    level = result.severity().level
    during = sorted((a for a in result.alerts if a.fired_at >= start), key=lambda a: a.fired_at)
    earlier = sorted({a.name for a in result.alerts if a.fired_at < start})
    lines = [
        "Alerts fired during the fault: "
        + (", ".join(_alert_phrase(a, start) for a in during) if during else "none")
        + (
            f"; still firing from before the fault (earlier errors in their windows): {', '.join(earlier)}"
            if earlier
            else ""
        )
        + "."
    ]
    pages = [a for a in during if a.severity == "page"]
    tickets = [a for a in during if a.severity != "page"]
    if level == "SEV-3":
        for alert in pages:
            lines.append(
                f"{alert.name} paged during a SEV-3 incident (partial, with a workaround), which the runbook "
                "treats as a ticket: a page here wakes on-call for a degraded mode. Give the rule a `for:` or "
                "exclude this mode (service/alerts/events-api.rules.yml)"
                + (
                    " — a window alert, it also counts errors from before the fault."
                    if alert.kind != "symptom"
                    else "."
                )
            )
        if tickets and not pages:
            names = ", ".join(sorted({a.name for a in tickets}))
            lines.append(
                f"Routing matches SEV-3: only tickets ({names}), nobody paged. Decide whether a degraded mode "
                "that lasts longer than the next update (60 min) should escalate to a page."
            )
    elif pages:
        names = ", ".join(sorted({a.name for a in pages}))
        lines.append(f"Routing matches {level}: {names} paged; confirm the on-call rotation receives it.")
    else:
        lines.append(
            f"No paging alert fired during a {level} incident: on-call would learn of it from clients. Add or "
            "tune a page for this failure (service/alerts/events-api.rules.yml)."
        )
    fired = {a.name for a in during}
    missing = [name for name in result.drill.expected_alerts if name not in fired]
    if missing:
        lines.append(f"Expected but did not fire: {', '.join(missing)}.")
    return lines


def _alert_phrase(alert: AlertInterval, start: float) -> str:
    resolved = f", resolved T{alert.resolved_at - start:+.2f} s" if alert.resolved_at is not None else ", still firing"
    return f"{alert.name} ({alert.severity or '?'}, {alert.kind}, T{alert.fired_at - start:+.2f} s{resolved})"


def changelog_entry(result: DrillResult) -> str:
    """The external summary of a release-caused incident, for docs/CHANGELOG.md's Unreleased section
    (운영 런북 — 사후 처리: 릴리스 영향 장애인 경우 Unreleased 섹션에 외부 영향 변경 요약)."""
    start, end = result.fault_window
    impact = result.impact()
    actions = [note.split(": ", 1)[-1] for note in result.notes]
    return (
        "### Fixed\n"
        f"- {result.started_at:%Y-%m-%d}: a release ({result.drill.confirmed_cause}) affected the events API for "
        f"{end - start:.0f} s after deployment — reads failed {impact.read_failure_ratio:.0%}, writes failed "
        f"{impact.write_failure_ratio:.0%}; post-deploy verification caught it and it was rolled back "
        f"({'; '.join(actions[-3:]) or 'see the incident report'}). Clients that retried with their own event "
        "ids lost nothing; no acknowledged event was lost.\n"
    )


def _scope(result: DrillResult) -> str:
    counts = result.status_counts()
    areas = []
    for kind, label in (("read", "GET /api/v1/events"), ("write", "POST /api/v1/events"), ("ready", "/health/ready")):
        failing = sum(n for status, n in counts.get(kind, {}).items() if not status.startswith("2"))
        if failing:
            areas.append(f"{label} ({failing} non-2xx)")
    return ", ".join(areas) or "no endpoint failed"


def render_markdown(result: DrillResult, timeline_png: str | None) -> str:
    data = summary(result)
    drill = result.drill
    scenario_field = SCENARIO_TEMPLATE[drill.scenario][1]
    rv = data["recovery_verification"]
    sev = data["severity"]
    impact = data["impact"]
    lines = [
        f"# 드릴 보고서 / Drill report — {drill.title} (`{drill.name}`)",
        "",
        f"- 시작 시각 / Started: {data['started_at']}   · 영향 받은 버전 / Affected version: "
        f"{result.version or '?'}, schema {result.schema_revision or '?'}",
        f"- 심각도 / Severity: **{sev['level']}** — {sev['rule']}",
        f"- 결과 / Verdict: {data['verdict']}" + (f": {result.failures[0]}" if result.failures else ""),
        f"- Requirements: {', '.join(drill.requirements)}",
        *([line] if (line := fleet_view.target_line(result)) else []),
        *([f"- 중단 / Aborted: {result.aborted}"] if result.aborted else []),
        *fleet_view.measurement_lines(result),
        "",
        "## 영향 / Impact",
        "",
        f"Fault window {impact['fault_window_s']} s. Affected: {data['sev_report']['scope']}. "
        f"Reads failed {impact['read_failure_ratio']:.1%}, writes failed {impact['write_failure_ratio']:.1%}, "
        f"p95 {impact['p95_ms']} ms. Degraded signals: {', '.join(impact['degraded_signals']) or 'none'}.",
        "",
        "| traffic | responses during the fault |",
        "|---|---|",
        *[
            f"| {kind} | {', '.join(f'{status} ×{n}' for status, n in statuses.items())} |"
            for kind, statuses in impact["requests_by_status"].items()
        ],
        "",
        "## 원인 / Cause",
        "",
        f"- 추정 / Suspected: {drill.suspected_cause}"
        + (
            f" (first signal: {rv['detection_signal']} at {_t_rel(rv['detection_signal_s'])})"
            if rv["detection_signal"]
            else ""
        ),
        f"- 확정 / Confirmed: {drill.confirmed_cause} (injected at T+0.00 s)",
        "",
        "## 임시조치 / Mitigation",
        "",
        drill.mitigation.description,
        "",
        f"Risk: {drill.mitigation.risk}",
        "",
        "## 복구검증 / Recovery verification",
        "",
        "| signal | time |",
        "|---|---|",
        f"| first failing readiness/API answer ({rv['detection_signal'] or 'none'}) | "
        f"{_t_rel(rv['detection_signal_s'])} |",
        f"| first alert firing ({rv['detection_alert'] or 'none'}) | {_alert_time(rv, relative=True)} |",
        *[f"| {name} | T{value:+.2f} s |" for name, value in rv["marks"].items() if name != "fault injected"],
    ]
    durability = rv["durability"]
    if durability:
        lines.append(
            f"| acknowledged events verified present / duplicated | "
            f"{durability['acknowledged'] - durability['missing']} of {durability['acknowledged']} / "
            f"{durability['duplicated']} (partial batches: {durability['partial_batches']}) |"
        )
    budget = data["error_budget"]
    lines += [
        "",
        f"MTTD {_seconds(rv['detection_signal_s'])} (readiness/API) / {_alert_time(rv, relative=False)} (alert) · "
        f"MTTR {_seconds(rv['recovery_s'])} (alerts resolved {_seconds(rv['alerts_resolved_s'])}) · error budget "
        f"consumed {budget['availability_consumed']:.3%} (availability), {budget['latency_consumed']:.3%} (latency) "
        f"of {budget['slo']} — {budget['status']}",
        "",
    ]
    if rv["alerts"]:
        lines += ["| alert | severity | kind | fired | resolved |", "|---|---|---|---|---|"]
        lines += [
            f"| {a['name']} | {a['severity'] or '?'} | {a['kind']} | T{a['fired_at']:+.2f} s | "
            f"{_t_rel(a['resolved_at']) if a['resolved_at'] is not None else 'still firing at the end'} |"
            for a in rv["alerts"]
        ]
        lines.append("")
    english = "Rollback/redeploy record" if drill.scenario == "release" else "Follow-up"
    lines += [f"## {scenario_field} / {english}", ""]
    lines += [f"- {item}" for item in data[scenario_field]] or ["- none"]
    if drill.scenario == "release":  # the release template has no follow-up field: the alert review follows
        lines += ["", "알림 검토 / Alert review:", "", *[f"- {item}" for item in data["alert_review"]]]
    if data["changelog_entry"]:
        lines += [
            "",
            "CHANGELOG (`docs/CHANGELOG.md`, `Unreleased`) entry text:",
            "",
            "```markdown",
            data["changelog_entry"].rstrip(),
            "```",
        ]
    lines += ["", *fleet_view.balancer_section(result)]
    lines += [
        "## SEV 보고 / SEV update skeleton",
        "",
        *render_sev_update(sev["level"], data["sev_report"]["fields"]),
        "",
        "## 타임라인 / Timeline",
        "",
    ]
    if timeline_png:
        lines += [f"![timeline]({timeline_png})", ""]
    fault_injected = result.marks.get("fault injected")
    lines += [
        "T: seconds since the fault was injected (T0); t: the drill clock, seconds since the drill started. "
        "The console prints T once the fault is injected and t before it, for the same moments.",
        "",
        "| T | t | phase | probe | met | detail |",
        "|---|---|---|---|---|---|",
    ]
    for outcome in result.outcomes:  # the console's own labels (result.drill_time) of the same instants
        at_t = drill_time(outcome.at, fault_injected) if outcome.at is not None and fault_injected else "—"
        at_clock = drill_time(outcome.at, None) if outcome.at is not None else "—"
        lines.append(
            f"| {at_t} | {at_clock} | {outcome.phase} | {outcome.probe} | {'yes' if outcome.met else '**no**'} | "
            f"{outcome.last.detail} |"
        )
    lines += ["", "Every probe attempt with its timestamp: `journal.json`.", ""]
    return "\n".join(lines)


def render_sev_update(level: str, fields: list[dict[str, str]]) -> list[str]:
    """`<level> 보고` and one `- <runbook field> / <English>: <value>` line per field of that level."""
    return [f"{level} 보고:", "", *(f"- {f['field']} / {f['english']}: {f['value']}" for f in fields)]


def _t_rel(value: float | None) -> str:
    return f"T{value:+.2f} s" if value is not None else "—"


def _alert_time(rv: dict[str, Any], *, relative: bool) -> str:
    """The first alert's time, with its production-equivalent when the drill variant of the rules fired it."""
    measured: float | None = rv["detection_alert_s"]
    if measured is None:
        return "—"
    label = alert_clock_label(measured, rv["detection_alert_clock_factor"] or 1)
    return f"T+{label}" if relative else label


def write_reports(result: DrillResult, directory: Path, timeline_png: Path | None) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    markdown = directory / "report.md"
    markdown.write_text(render_markdown(result, timeline_png.name if timeline_png else None), encoding="utf-8")
    data = summary(result)
    report_json = directory / "report.json"
    report_json.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    if data["changelog_entry"]:
        (directory / "CHANGELOG-entry.md").write_text(data["changelog_entry"], encoding="utf-8")
    journal = [asdict(entry) for entry in result.journal]
    (directory / "journal.json").write_text(json.dumps(journal, indent=1, ensure_ascii=False, default=str))
    # The same run in Chaos Toolkit's journal format, for the tools that read those (docs/CHAOSTOOLKIT.md).
    from chaos.ctk.journal import chaostoolkit_journal

    ctk_journal = chaostoolkit_journal(result, data)
    (directory / "chaostoolkit-journal.json").write_text(
        json.dumps(ctk_journal, indent=2, ensure_ascii=False, default=str), encoding="utf-8"
    )
    return markdown, report_json
