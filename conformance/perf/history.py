"""The perf results history: one JSON line per run of a perf command (the gate, the paired regression run, the
pipeline benchmark), so that a release's figures sit beside the previous ones.

    reports/perf/history.jsonl      (default; BENCH_HISTORY=FILE or --history FILE elsewhere, --no-history off)

A record holds what ran (`kind`, the command line, the profile), which builds (the candidate's provenance and,
for a paired run, the baseline's commit), on what machine, the figures and the verdicts. The file is local to
the machine it was measured on (reports/ is not committed): figures from another machine would not compare.

The gate prints the previous record of the same kind and profile beside this run's figures, labelled as
another run: two runs minutes or days apart saw different load on a shared machine (+/-20 %,
docs/BENCHMARKS.md), so the difference between them is not a measured change; only a paired run
(`--baseline REF`) measures one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from conformance.provenance import CHECKOUT

DEFAULT_HISTORY = CHECKOUT / "reports" / "perf" / "history.jsonl"
HISTORY_ENV = "BENCH_HISTORY"
# The figures shown beside the previous run's, per query: (record key, label, format).
COMPARED = (("mean_ms", "mean ms", "{:.2f}"), ("p95_ms", "p95 ms", "{:.2f}"), ("per_s", "req/s", "{:,.1f}"))


def history_path(given: Path | None, *, disabled: bool = False) -> Path | None:
    """--history FILE, else $BENCH_HISTORY, else reports/perf/history.jsonl; None with --no-history."""
    if disabled:
        return None
    if given is not None:
        return given
    from_env = os.environ.get(HISTORY_ENV, "").strip()
    return Path(from_env) if from_env else DEFAULT_HISTORY


def read_records(path: Path) -> list[dict[str, Any]]:
    """Every record of the file, oldest first; a line that is not a JSON object is passed over (a run killed
    while writing leaves at most its own line broken)."""
    if not path.is_file():
        return []
    records: list[dict[str, Any]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def previous_record(path: Path, kind: str, profile: str) -> dict[str, Any] | None:
    """The newest record of the same kind and profile (before this run's is appended), or None."""
    matching = [r for r in read_records(path) if r.get("kind") == kind and r.get("profile") == profile]
    return matching[-1] if matching else None


def append_record(path: Path, record: Mapping[str, Any]) -> Path:
    """Append one line (a single write, so concurrent runs do not interleave within a record)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record, ensure_ascii=False, separators=(",", ":"), sort_keys=True) + "\n"
    with path.open("a+b") as handle:
        # A run killed mid-write left its line without an end: start on a line of our own, or both are lost.
        if handle.tell() > 0:
            handle.seek(-1, os.SEEK_END)
            if handle.read(1) != b"\n":
                line = "\n" + line
        handle.write(line.encode("utf-8"))
    return path


def _commit(record: Mapping[str, Any]) -> str:
    candidate = record.get("candidate") or {}
    commit = str(candidate.get("commit") or "unknown")
    return commit[:10] + ("+dirty" if candidate.get("dirty") else "")


def render_beside_previous(previous: Mapping[str, Any] | None, current: Mapping[str, Any]) -> list[str]:
    """This run's per-query figures beside the previous record's, clearly labelled as another run."""
    if previous is None:
        return ["previous run: none recorded for this command and profile (this run is the first in the history)"]
    width = max([len(name) for name in current.get("queries", {})] + [len("query")])
    lines = [
        f"beside the previous run (ANOTHER RUN, not a paired comparison: {previous.get('at')}, commit "
        f"{_commit(previous)}; the machine's load differed, so differences here are not measured changes)",
    ]
    header = f"{'query':{width}}" + "".join(f" {label + ' now':>13} {label + ' then':>13}" for _, label, _ in COMPARED)
    lines += [header, "-" * len(header)]
    before = previous.get("queries", {})
    for name, figures in current.get("queries", {}).items():
        row = f"{name:{width}}"
        for key, _, shown in COMPARED:
            then = before.get(name, {}).get(key)
            now = figures.get(key)
            row += f" {'—' if now is None else shown.format(now):>13} {'—' if then is None else shown.format(then):>13}"
        lines.append(row)
    for key, label in (("ceiling_share", "share of the raw-SQL ceiling"), ("ratio_service_to_bare", "service/bare")):
        if current.get(key) is not None or previous.get(key) is not None:
            lines.append(f"{label}: now {_percent(current.get(key))}, then {_percent(previous.get(key))}")
    return lines


def _percent(value: object) -> str:
    return f"{value:.1%}" if isinstance(value, int | float) else "—"
