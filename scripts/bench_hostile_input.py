"""Figures of the hostile-input bounds (RB-SEC-*), for one or more builds side by side in one run.

For each build (`--code-root`, default this checkout; give a `git worktree` of an older commit to compare),
starts throwaway PostgreSQL and Redis and `python -m service` (one worker, so every request meets the same
event loop) with the default bounds, and measures:

- metric series: the number of series in /metrics before and after 1,000 requests with distinct methods
  (and distinct paths), and the growth of the exposition in bytes;
- trickled body: how long a `Content-Length: 100000` upload sending one byte every 0.5 s holds its
  connection before it is answered 408 or closed (capped at --slow-cap seconds);
- access-log cost: the latency of a request that follows, on the same keep-alive connection, one with a
  16 KB path (crafted: `://a:` repeated; plain: `a` repeated) — the log line of the first is formatted and
  redacted on the event loop after its response is sent, so its cost delays the second (median and worst
  of --rounds).

    .venv/bin/python scripts/bench_hostile_input.py
    git worktree add /tmp/before HEAD~1 && \\
        .venv/bin/python scripts/bench_hostile_input.py --code-root /tmp/before --code-root .

Prints the figures; asserts nothing (docs/BENCHMARKS.md records runs).
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import socket
import statistics
import time
from pathlib import Path

import httpx

from chaos.stack.migrations import migrate
from chaos.stack.servers import PostgresServer, RedisServer
from chaos.stack.service import ServiceProcess, generated_credentials
from conformance.tls import shared_tls_context


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--code-root",
        type=Path,
        action="append",
        help="a checkout of the build to measure (repeatable; default: this one)",
    )
    parser.add_argument("--rounds", type=int, default=30, help="access-log rounds per kind of path (default 30)")
    parser.add_argument("--slow-cap", type=float, default=40.0, help="stop waiting on a trickled body after this")
    return parser


def _series(client: httpx.Client) -> tuple[int, int]:
    text = client.get("/metrics").text
    return sum(1 for line in text.splitlines() if line and not line.startswith("#")), len(text)


def measure_series(base_url: str) -> str:
    with httpx.Client(verify=shared_tls_context(), base_url=base_url, timeout=10) as client:
        client.request("WARMUP", "/nope")
        client.get("/nope")
        _series(client)  # a scrape's own series appear in the next one
        before, before_bytes = _series(client)
        for index in range(1000):
            client.request(f"M{index:04d}" + "X" * 60, f"/nope/{index}")
        after, after_bytes = _series(client)
    return f"{before} → {after} series (+{after_bytes - before_bytes:,} bytes of exposition)"


def measure_trickle(port: int, cap_s: float) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=cap_s) as sock:
        sock.sendall(b"POST /api/v1/events HTTP/1.1\r\nHost: bench\r\nContent-Length: 100000\r\n\r\n")
        started = time.monotonic()
        sock.settimeout(0.5)
        answer = b""
        while time.monotonic() - started < cap_s:
            try:
                sock.sendall(b" ")
                answer = sock.recv(4096)
                break  # answered (or closed: b"")
            except TimeoutError:
                continue
            except OSError:
                break
        elapsed = time.monotonic() - started
    if elapsed >= cap_s:
        return f"still open after {cap_s:.0f} s (gave up)"
    status = answer.split(b" ", 2)[1].decode() if answer.startswith(b"HTTP/") else "closed"
    return f"{status} after {elapsed:.2f} s"


def _pair(port: int, path: str) -> float:
    """Send a request for `path`, read its answer, then time a /health/live on the same connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
        _read_response(sock)
        started = time.perf_counter()
        sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: bench\r\n\r\n")
        _read_response(sock)
        return (time.perf_counter() - started) * 1000


def _read_response(sock: socket.socket) -> None:
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        (int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")),
        0,
    )
    while len(body) < length:
        body += sock.recv(65536)


def measure_log_cost(port: int, rounds: int) -> dict[str, str]:
    paths = {"plain 16 KB path": "/" + "a" * 16000, "crafted 16 KB path (://a: repeated)": "/" + "://a:" * 3200}
    figures: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(rounds):  # alternating, so drift hits both alike
        for name, path in paths.items():
            figures[name].append(_pair(port, path))
    return {
        name: f"next request {statistics.median(values):.2f} ms median, {max(values):.2f} ms worst"
        for name, values in figures.items()
    }


def measure(code_root: Path, rounds: int, cap_s: float) -> dict[str, str]:
    with contextlib.ExitStack() as stack:
        postgres = stack.enter_context(PostgresServer())
        redis = stack.enter_context(RedisServer())
        database_url = postgres.create_database("events")
        migrate(database_url)
        env = {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis.url(),
            "RATE_LIMIT_ANONYMOUS": "1000000/minute",
            **generated_credentials(),
        }
        service = stack.enter_context(ServiceProcess(env, workers=1, code_root=code_root))
        results = {"metric series, 1,000 distinct methods": measure_series(service.base_url)}
        results["trickled body (1 byte per 0.5 s)"] = measure_trickle(service.port, cap_s)
        results.update(measure_log_cost(service.port, rounds))
        return results


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    roots = args.code_root or [Path(__file__).resolve().parent.parent]
    print(f"machine: {platform.node()} {platform.machine()}, Python {platform.python_version()}")
    for root in roots:
        print(f"\nbuild: {root.resolve()}")
        for name, value in measure(root.resolve(), args.rounds, args.slow_cap).items():
            print(f"  {name:44} {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
