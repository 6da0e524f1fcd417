"""Request-pipeline tax: the service's authenticated `GET /api/v1/events/{id}` against a bare Quart route doing
the same primary-key read with raw asyncpg, served the same way and loaded by wrk in alternating rounds."""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
from pathlib import Path

from chaos.stack.service import ServiceProcess
from conformance.perf.console import stderr
from conformance.perf.embedded import start_embedded_stack
from conformance.perf.machine import machine_description
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
) -> int:
    """Serve `bare_app` (as `python -m service --app` takes it, from the repository root) beside the service and
    print the figures (a table, or JSON); 1 when a round had errors or the ratio service/bare is below `fail_below`."""
    wrk_path()  # fail loudly before starting anything
    stderr(f"machine: {machine_description()}")
    results: dict[str, list[WrkResult]] = {"bare": [], "service": []}
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
    report = {
        "machine": machine_description(),
        "workers": workers,
        "connections": connections,
        "seconds_per_round": seconds,
        "rounds": rounds,
        "results": summary,
        "ratio_service_to_bare": round(ratio, 3),
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
        print(f"\nservice / bare throughput: {ratio:.1%}")
    if any(figures["errors"] for figures in summary.values()):
        stderr("FAIL: some requests failed")
        return 1
    if fail_below is not None and ratio < fail_below:
        stderr(f"FAIL: the service reaches {ratio:.1%} of the bare route, below {fail_below:.0%}")
        return 1
    return 0
