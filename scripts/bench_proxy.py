"""Measure what the fault proxy adds: round-trip latency and throughput, proxied vs direct.

Starts a throwaway PostgreSQL and Redis on 127.0.0.1, a fault proxy (as `python -m chaos.proxy` in its
own process, and/or on a thread of this process), one proxy per server, and then times, alternating
direct and proxied in blocks so drift hits both alike:

- round trips, one at a time: `SELECT 1` over asyncpg, `PING` over redis-py (asyncio);
- throughput: concurrent workers on a connection pool (asyncpg pool, redis-py pool) for a fixed time;
- bulk: GET of a 1 MB Redis value.

    .venv/bin/python scripts/bench_proxy.py                 # both modes, default sizes
    .venv/bin/python scripts/bench_proxy.py --mode process --iterations 20000

Prints the figures; asserts nothing (see docs/BENCHMARKS.md for recorded runs).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import importlib.metadata
import os
import platform
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

import asyncpg
import redis.asyncio as redis_asyncio
import uvloop

from chaos.proxy import FaultProxy, FaultProxyProcess
from chaos.proxy.client import ToxiproxyClient
from chaos.stack.servers import PostgresServer, RedisServer

BLOCK = 250  # round trips per block before switching between direct and proxied


@dataclass
class Endpoints:
    postgres: str
    redis: str


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--mode",
        choices=["process", "thread", "both"],
        default="both",
        help="run the proxy as a subprocess, on a thread of this process, or both (default)",
    )
    parser.add_argument("--iterations", type=int, default=10000, help="round trips per target (default 10000)")
    parser.add_argument("--concurrency", type=int, default=16, help="workers in the throughput runs (default 16)")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each throughput run (default 3)")
    return parser


def _proxied(url: str, port: int) -> str:
    prefix, rest = url.split("@", 1) if "@" in url else ("", url.split("//", 1)[1])
    path = rest.split("/", 1)[1] if "/" in rest else ""
    scheme = url.split("//", 1)[0]
    auth = prefix.split("//", 1)[1] + "@" if prefix else ""
    return f"{scheme}//{auth}127.0.0.1:{port}/{path}"


async def _timed_blocks(
    direct: Callable[[], Awaitable[object]], proxied: Callable[[], Awaitable[object]], iterations: int
) -> tuple[list[float], list[float]]:
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(200):  # warm both paths up
        await direct()
        await proxied()
    done = 0
    while done < iterations:
        for samples, call in zip(times, (direct, proxied), strict=True):
            for _ in range(BLOCK):
                started = time.perf_counter_ns()
                await call()
                samples.append((time.perf_counter_ns() - started) / 1000)
        done += BLOCK
    return times


def _row(label: str, direct: list[float], proxied: list[float]) -> str:
    def q(values: list[float], fraction: float) -> float:
        return sorted(values)[int(fraction * (len(values) - 1))]

    added_median = statistics.median(proxied) - statistics.median(direct)
    added_mean = statistics.fmean(proxied) - statistics.fmean(direct)
    return (
        f"  {label:<22} direct p50 {statistics.median(direct):7.1f} µs  p99 {q(direct, 0.99):7.1f}"
        f" | proxied p50 {statistics.median(proxied):7.1f} µs  p99 {q(proxied, 0.99):7.1f}"
        f" | added p50 {added_median:+6.1f} µs  mean {added_mean:+6.1f} µs"
    )


async def _round_trips(endpoints: Endpoints, direct: Endpoints, iterations: int) -> list[str]:
    rows = []
    pg_direct = await asyncpg.connect(direct.postgres)
    pg_proxied = await asyncpg.connect(endpoints.postgres)
    try:
        d, p = await _timed_blocks(
            lambda: pg_direct.fetchval("SELECT 1"), lambda: pg_proxied.fetchval("SELECT 1"), iterations
        )
        rows.append(_row("asyncpg SELECT 1", d, p))
    finally:
        await pg_direct.close()
        await pg_proxied.close()
    redis_direct = redis_asyncio.Redis.from_url(direct.redis, single_connection_client=True)
    redis_proxied = redis_asyncio.Redis.from_url(endpoints.redis, single_connection_client=True)
    try:
        d, p = await _timed_blocks(redis_direct.ping, redis_proxied.ping, iterations)
        rows.append(_row("redis-py PING", d, p))
    finally:
        await redis_direct.aclose()
        await redis_proxied.aclose()
    return rows


async def _throughput(call: Callable[[], Awaitable[object]], concurrency: int, seconds: float) -> float:
    deadline = time.perf_counter() + seconds
    counts = [0] * concurrency

    async def worker(index: int) -> None:
        while time.perf_counter() < deadline:
            await call()
            counts[index] += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(index) for index in range(concurrency)))
    return sum(counts) / (time.perf_counter() - started)


async def _throughputs(endpoints: Endpoints, direct: Endpoints, concurrency: int, seconds: float) -> list[str]:
    rows = []
    for label, target in (("direct", direct), ("proxied", endpoints)):
        pool = await asyncpg.create_pool(target.postgres, min_size=concurrency, max_size=concurrency)
        client = redis_asyncio.Redis.from_url(target.redis, max_connections=concurrency)
        try:
            pg_rate = await _throughput(functools.partial(pool.fetchval, "SELECT 1"), concurrency, seconds)
            redis_rate = await _throughput(client.ping, concurrency, seconds)
            await client.set("bench:blob", os.urandom(1 << 20))
            started = time.perf_counter()
            for _ in range(100):
                await client.get("bench:blob")
            megabytes_per_s = 100 / (time.perf_counter() - started)
        finally:
            await pool.close()
            await client.aclose()
        rows.append(
            f"  {label:<8} asyncpg pool {pg_rate:8.0f} SELECT 1/s | redis pool {redis_rate:8.0f} PING/s"
            f" | GET 1 MB value {megabytes_per_s:6.0f} MB/s"
        )
    return rows


@contextlib.contextmanager
def _fault_proxy(mode: str) -> Iterator[str]:
    if mode == "process":
        with FaultProxyProcess() as process:
            yield process.api_url
    else:
        with FaultProxy() as proxy:
            yield proxy.api_url


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    modes = ["process", "thread"] if args.mode == "both" else [args.mode]
    print(
        f"machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}, uvloop {importlib.metadata.version('uvloop')}"
    )
    with PostgresServer() as postgres, RedisServer() as redis_server:
        direct = Endpoints(postgres.url(), redis_server.url())
        for mode in modes:
            with _fault_proxy(mode) as api_url:
                client = ToxiproxyClient(api_url)
                pg_proxy = client.create(name="postgres", upstream=f"127.0.0.1:{postgres.port}")
                redis_proxy = client.create(name="redis", upstream=f"127.0.0.1:{redis_server.port}")
                proxied = Endpoints(
                    _proxied(direct.postgres, pg_proxy.listen_port), _proxied(direct.redis, redis_proxy.listen_port)
                )
                print(f"\nfault proxy on a {mode} ({api_url}); {args.iterations} sequential round trips each:")
                for row in uvloop.run(_round_trips(proxied, direct, args.iterations)):
                    print(row, flush=True)
                print(f"throughput, {args.concurrency} concurrent workers, {args.seconds:g} s each:")
                for row in uvloop.run(_throughputs(proxied, direct, args.concurrency, args.seconds)):
                    print(row, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
