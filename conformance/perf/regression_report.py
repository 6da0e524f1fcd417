"""What a paired regression run (conformance/perf/regression.py) leaves behind: the JUnit file of the one verdict
scheme (suite `runbook-perf-gate` with the property `gate` = `perf-regression`, the way conformance.evidence
tells the perf gates apart; one testcase per query and one for all queries, requirement RB-PERF-REGRESSION) and
its record in the results history (conformance/perf/history.py).

JUnit has no "inconclusive": <skipped> means "not applicable" in this project's scheme, and an inconclusive
comparison is applicable, it just could not decide. So an inconclusive query is an <error type="inconclusive">
(conformance.junit CaseOutcome.INCONCLUSIVE) whose message names the pairs of rounds that would decide, and
every case carries its verdict as the property `verdict` (passed / regressed / inconclusive).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from conformance.junit import FIGURE_PREFIX, Case, CaseOutcome, Suite
from conformance.perf.machine import machine_description
from conformance.perf.paired import ALL_QUERIES
from conformance.perf.paired_stats import Metric, QueryComparison, Verdict
from conformance.perf.regression import PairedResult

REQUIREMENT = "RB-PERF-REGRESSION"
SUITE_NAME = "runbook-perf-gate"  # the perf gates' suite; `gate` says which (conformance/evidence reads it)
GATE = "perf-regression"
CLASSNAME = "perf-regression"


def regression_suite(result: PairedResult, target: str) -> Suite:
    candidate, baseline = result.candidate_version, result.baseline_version
    return Suite(
        SUITE_NAME,
        result.started_at,
        {
            "commit": str(candidate.get("commit")),
            "dirty": str(bool(candidate.get("dirty"))).lower(),
            "version": str(candidate.get("version")),
            "target": target,
            "gate": GATE,
            "profile": result.profile.name,
            "baseline_ref": result.baseline_ref.given,
            "baseline_commit": str(baseline.get("commit") or baseline.get("image_id") or baseline.get("version")),
            "bound": f"{result.bound:g}",
            "threshold_mean_ms": f"{result.thresholds.mean_ms:g}",
            "threshold_p95_ms": f"{result.thresholds.p95_ms:g}",
            "verdict": result.verdict.value,
        },
    )


def _figures(comparison: QueryComparison) -> dict[str, str]:
    figures = {"verdict": comparison.verdict.value, f"{FIGURE_PREFIX}pairs": str(comparison.pairs)}
    for metric in Metric:
        found = comparison.metrics[metric]
        for key, value in (("ratio", found.ratio), ("low", found.low), ("high", found.high)):
            if value is not None:
                figures[f"{FIGURE_PREFIX}{metric.value}_{key}"] = f"{value:.4f}"
    if comparison.pairs_needed is not None:
        figures[f"{FIGURE_PREFIX}pairs_needed"] = str(comparison.pairs_needed)
    return figures


def _message(comparison: QueryComparison, bound: float) -> str:
    parts = []
    for metric in Metric:
        found = comparison.metrics[metric]
        if found.verdict is not Verdict.PASSED and found.ratio is not None:
            parts.append(f"{metric.value} ratio {found.ratio:.2f} [{found.low:.2f}, {found.high:.2f}]")
    what = "; ".join(parts)
    if comparison.verdict is Verdict.REGRESSED:
        return f"regressed beyond {bound:.0%} with 95 % confidence: {what}"
    if comparison.verdict is Verdict.INCONCLUSIVE:
        return f"inconclusive: {what}; about {comparison.pairs_needed} pairs of rounds would decide"
    return ""


def regression_cases(result: PairedResult) -> list[Case]:
    """Per query (and all queries): failed when regressed or beyond the absolute gate, error when inconclusive."""
    seconds = sum(r.seconds for r in result.rounds if r.side == "candidate")
    cases = []
    shares = result.ceiling.get("candidate", {})
    for name, comparison in result.comparisons.items():
        absolute = result.absolute_failures.get(name, [])
        message = _message(comparison, result.bound)
        if absolute:
            message = "; ".join([*([message] if message else []), *(f"absolute gate: {p}" for p in absolute)])
        if comparison.verdict is Verdict.REGRESSED or absolute:
            outcome = CaseOutcome.FAILED
        elif comparison.verdict is Verdict.INCONCLUSIVE:
            outcome = CaseOutcome.INCONCLUSIVE
        else:
            outcome = CaseOutcome.PASSED
        properties = _figures(comparison)
        share = shares.get(name)
        if share is not None and share.share is not None:
            properties[f"{FIGURE_PREFIX}ceiling_share"] = f"{share.share:.4f}"
        cases.append(Case(CLASSNAME, name, seconds, outcome, (REQUIREMENT,), message, properties))
    for name, reason in result.skipped.items():
        cases.append(Case(CLASSNAME, name, 0.0, CaseOutcome.NOT_APPLICABLE, (REQUIREMENT,), reason))
    return cases


def error_cases(names: Sequence[str], error: str) -> list[Case]:
    """The run could not compare at all: every query an error with `error` as its message."""
    return [Case(CLASSNAME, name, 0.0, CaseOutcome.ERROR, (REQUIREMENT,), error) for name in names]


def regression_record(result: PairedResult, command: str) -> dict[str, Any]:
    """The run's line in the results history."""
    figures = result.candidate_summaries()
    seconds = sum(r.seconds for r in result.rounds if r.side == "candidate") or 1.0
    queries: dict[str, dict[str, Any]] = {
        name: {
            "mean_ms": summary["mean_ms"],
            "p95_ms": summary["p95_ms"],
            "per_s": round(summary["count"] / seconds, 2),
            "errors": summary["errors"],
        }
        for name, summary in figures.items()
    }
    for name, comparison in result.comparisons.items():
        entry = queries.setdefault(name, {})
        entry["verdict"] = comparison.verdict.value
        entry["ratios"] = {metric.value: comparison.metrics[metric].as_dict() for metric in Metric}
    overall = result.ceiling.get("candidate", {}).get(ALL_QUERIES)
    return {
        "kind": "regression",
        "at": result.started_at,
        "command": command,
        "profile": result.profile.name,
        "candidate": result.candidate_version,
        "baseline": result.baseline_version,
        "machine": machine_description(),
        "bound": result.bound,
        "queries": queries,
        "ceiling_share": overall.share if overall is not None else None,
        "verdict": result.verdict.value,
        "absolute_gate_failed": result.absolute_failures,
        "exit": int(result.exit_code),
    }
