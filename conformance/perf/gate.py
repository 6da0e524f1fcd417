"""The gate's verdict per query (mean, p95 and error budget against the thresholds), and the table that shows
the figures and the verdict."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from conformance.perf.profiles import Profile
from conformance.perf.thresholds import Thresholds


def verdicts(summaries: dict[str, dict[str, Any]], thresholds: Thresholds, profile: Profile) -> dict[str, list[str]]:
    """Per query, what breached the gate (empty: passed)."""
    found: dict[str, list[str]] = {}
    for name, summary in summaries.items():
        problems = []
        if summary["count"] == 0:
            problems.append("no requests completed")
        if summary["mean_ms"] > thresholds.mean_ms:
            problems.append(f"mean {summary['mean_ms']:.1f} ms > {thresholds.mean_ms:g} ms")
        if summary["p95_ms"] > thresholds.p95_ms:
            problems.append(f"p95 {summary['p95_ms']:.1f} ms > {thresholds.p95_ms:g} ms")
        if summary["error_rate"] > profile.max_error_rate:
            problems.append(
                f"errors {summary['errors']}/{summary['count']} ({summary['error_rate']:.2%}) > budget "
                f"{profile.max_error_rate:.2%} {summary['failures_by_status']}"
            )
        found[name] = problems
    return found


Say = Callable[[str], None]


def stdout(message: str) -> None:
    print(message, flush=True)


def print_table(
    summaries: dict[str, dict[str, Any]], found: dict[str, list[str]], skipped: dict[str, str], say: Say
) -> None:
    width = max(len(name) for name in [*summaries, *skipped])
    header = (
        f"{'query':{width}} {'count':>7} {'mean ms':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
        f"{'max ms':>8} {'errors':>6}  verdict"
    )
    say("\n" + header)
    say("-" * len(header))
    for name, s in summaries.items():
        verdict = "ok" if not found[name] else "FAIL"
        say(
            f"{name:{width}} {s['count']:7,} {s['mean_ms']:8.2f} {s['p50_ms']:8.2f} {s['p95_ms']:8.2f} "
            f"{s['p99_ms']:8.2f} {s['max_ms']:8.2f} {s['errors']:6}  {verdict}"
        )
    for name, reason in skipped.items():
        say(f"{name:{width}} {'—':>7} {'':8} {'':8} {'':8} {'':8} {'':8} {'':6}  {reason}")
