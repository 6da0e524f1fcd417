"""Request-pipeline tax: the service's authenticated `GET /api/v1/events/{id}` against a bare Quart route doing
the same primary-key read with raw asyncpg, served the same way and loaded by wrk in alternating rounds.

Around each wrk round it reads every process's CPU from /proc (conformance/perf/cpu_accounting.py) and prints
the µs of CPU a request cost in the app's workers, PostgreSQL, Redis and wrk, per app.

The figures (JSON with --json) carry the machine description and the build's provenance (commit, dirty, version),
and each run appends a record to the perf results history (conformance/perf/history.py), printed beside the
previous one; with 3 rounds or more the ratio also gets the paired bootstrap interval of paired_stats (each
round's bare and service runs are a pair)."""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
from pathlib import Path
from typing import Any

from chaos.stack.service import ServiceProcess
from conformance import provenance
from conformance.perf import cpu_accounting, history
from conformance.perf.console import stderr
from conformance.perf.embedded import start_embedded_stack
from conformance.perf.machine import machine_description
from conformance.perf.paired_stats import MIN_PAIRS, bootstrap_ratio
from conformance.perf.seeding import DatasetSpec, seed_events
from conformance.perf.wrk import WrkResult, run_wrk, wrk_path


async def _sample_ids(database_url: str, count: int) -> list[str]:
    import asyncpg

    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch("SELECT id FROM events TABLESAMPLE SYSTEM (10) LIMIT $1", count)
        if len(rows) < count:
            rows = await connection.fetch("SELECT id FROM events LIMIT $1", count)
    finally:
        await connection.close()
    return [str(row["id"]) for row in rows]


def run_pipeline_benchmark(
    bare_app: str,
    *,
    workers: int,
    connections: int,
    threads: int,
    seconds: float,
    rounds: int,
    warmup: float,
    events: int,
    fail_below: float | None,
    json_output: bool,
    history_file: Path | None = None,
    command: str = "bench_pipeline.py",
) -> int:
    """Serve `bare_app` (as `python -m service --app` takes it, from the repository root) beside the service and
    print the figures (a table, or JSON); 1 when a round had errors or the ratio service/bare is below `fail_below`."""
    wrk_path()  # fail loudly before starting anything
    stderr(f"machine: {machine_description()}")
    started_at = provenance.now_iso()
    results: dict[str, list[WrkResult]] = {"bare": [], "service": []}
    accounted: list[cpu_accounting.MeasuredRound] = []
    with tempfile.TemporaryDirectory(prefix="rb-bench-pipeline-") as work:
        stack = start_embedded_stack(workers=workers)
        try:
            asyncio.run(seed_events(stack.database_url, DatasetSpec(events=events)))
            ids = asyncio.run(_sample_ids(stack.database_url, 2000))
            stderr(f"bare app: starting {bare_app} with {workers} worker(s)")
            with ServiceProcess(stack.service_env, workers=workers, application=bare_app) as bare:
                targets = {
                    "bare": (bare.base_url, [f"/bare/events/{i}" for i in ids], None),
                    "service": (stack.api_url, [f"/api/v1/events/{i}" for i in ids], stack.api_key),
                }
                for name, (url, paths, key) in targets.items():
                    stderr(f"warm-up: {name} for {warmup:.0f} s")
                    run_wrk(
                        url,
                        paths=paths,
                        work_dir=Path(work) / name,
                        seconds=warmup,
                        connections=connections,
                        threads=threads,
                        api_key=key,
                    )
                for round_number in range(rounds):
                    for name, (url, paths, key) in targets.items():
                        before = cpu_accounting.snapshot()
                        result = run_wrk(
                            url,
                            paths=paths,
                            work_dir=Path(work) / name,
                            seconds=seconds,
                            connections=connections,
                            threads=threads,
                            api_key=key,
                        )
                        results[name].append(result)
                        cpu = cpu_accounting.spent(before, cpu_accounting.snapshot())
                        accounted.append(cpu_accounting.MeasuredRound(name, result.requests, cpu))
                        stderr(
                            f"round {round_number + 1} {name:8} {result.per_second:8,.0f} req/s  "
                            f"p50 {result.latency_p50_ms:6.2f} ms  p99 {result.latency_p99_ms:6.2f} ms  "
                            f"errors {result.errors}"
                        )
        finally:
            stack.stop()

    summary = {
        name: {
            "requests_per_s": round(statistics.median(r.per_second for r in runs), 1),
            "p50_ms": round(statistics.median(r.latency_p50_ms for r in runs), 3),
            "p99_ms": round(statistics.median(r.latency_p99_ms for r in runs), 3),
            "errors": sum(r.errors for r in runs),
        }
        for name, runs in results.items()
    }
    ratio = summary["service"]["requests_per_s"] / summary["bare"]["requests_per_s"]
    interval = (
        bootstrap_ratio([r.per_second for r in results["service"]], [r.per_second for r in results["bare"]])
        if rounds >= MIN_PAIRS
        else None
    )
    report: dict[str, Any] = {
        "machine": machine_description(),
        "provenance": provenance.current().as_dict(),
        "started_at": started_at,
        "workers": workers,
        "connections": connections,
        "seconds_per_round": seconds,
        "rounds": rounds,
        "results": summary,
        "ratio_service_to_bare": round(ratio, 3),
        "ratio_interval": None if interval is None else [round(interval[1], 3), round(interval[2], 3)],
        "cpu_per_request_us": cpu_accounting.by_side(accounted),
    }
    if json_output:
        print(json.dumps(report, indent=2))
    else:
        print(f"\n{'app':28} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
        labels = {"bare": "bare Quart + asyncpg", "service": "GET /api/v1/events/{id}"}
        for name, figures in summary.items():
            print(
                f"{labels[name]:28} {figures['requests_per_s']:9,.0f} {figures['p50_ms']:8.2f} "
                f"{figures['p99_ms']:8.2f} {figures['errors']:7}"
            )
        shown = (
            ""
            if interval is None
            else f" (paired bootstrap 95 % interval of the mean ratio {interval[1]:.1%} .. {interval[2]:.1%})"
        )
        print(f"\nservice / bare throughput: {ratio:.1%}{shown}")
        if cpu_lines := cpu_accounting.render_cpu(report["cpu_per_request_us"]):
            print("")
            print("\n".join(cpu_lines))
    if history_file is not None:
        record = _record(report, command, workers, connections)
        previous = history.previous_record(history_file, "pipeline", record["profile"])
        for line in history.render_beside_previous(previous, record):
            stderr(line)
        stderr(f"history: {history.append_record(history_file, record)}")
    if any(figures["errors"] for figures in summary.values()):
        stderr("FAIL: some requests failed")
        return 1
    if fail_below is not None and ratio < fail_below:
        stderr(f"FAIL: the service reaches {ratio:.1%} of the bare route, below {fail_below:.0%}")
        return 1
    return 0


def _record(report: dict[str, Any], command: str, workers: int, connections: int) -> dict[str, Any]:
    """The run's line in the results history: the medians per app and the ratio."""
    return {
        "kind": "pipeline",
        "at": report["started_at"],
        "command": command,
        "profile": f"{workers} workers, {connections} connections",
        "candidate": report["provenance"],
        "machine": report["machine"],
        "queries": {
            name: {"per_s": figures["requests_per_s"], "p50_ms": figures["p50_ms"], "p99_ms": figures["p99_ms"]}
            for name, figures in report["results"].items()
        },
        "ratio_service_to_bare": report["ratio_service_to_bare"],
        "ratio_interval": report["ratio_interval"],
        "verdict": "failed" if any(f["errors"] for f in report["results"].values()) else "measured",
    }
