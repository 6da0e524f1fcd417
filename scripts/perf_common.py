"""Shared pieces of the performance scripts (benchmark_queries.py, bench_ingest.py, bench_pipeline.py,
run_locust.py, locustfile.py): the runbook's thresholds, where load may go, the embedded stack, the seeded
dataset, and the wrk load generator.

Load goes only to loopback addresses or to the project's own embedded stack, unless a profile in
`scripts/bench_profiles.toml` names a URL explicitly (`url` or `allowed_urls`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import math
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from chaos.stack import LocalStack

REPO_ROOT = Path(__file__).resolve().parent.parent

# asyncpg and the stack are imported where they are used, so that the locustfile (which runs under gevent)
# can use the thresholds and target checks without them.

Progress = Callable[[str], None]

DEFAULT_MEAN_THRESHOLD_MS = 250.0
DEFAULT_P95_THRESHOLD_MS = 400.0

# The embedded stack is the project's own: benchmarks measure the service, not its rate limits (which
# would answer 429 long before the database is busy) or the fault proxy (which sits between the service
# and its dependencies for the drills, and costs a hop per round trip).
# The overload gate admits DB_POOL_SIZE requests per worker at once and sheds those that wait longer than
# DB_QUEUE_TIMEOUT_S (503 DB_OVERLOADED). 32 benchmark clients put 16 on each of 2 workers; with the default
# pool of 10, a CPU stall over 250 ms on the shared 2-core machine turned queued requests into 503s (2 of
# 10,086 in one run) although the database was not the bottleneck. 20 leaves room for the whole load.
BENCH_SERVICE_ENV: dict[str, str] = {
    "RATE_LIMIT_READ": "100000000/minute",
    "RATE_LIMIT_WRITE": "100000000/minute",
    "DB_POOL_SIZE": "20",
    "LOG_LEVEL": "INFO",
}


def stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- thresholds ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Thresholds:
    """The runbook's gate: a query fails when its mean or its p95 is over these (milliseconds)."""

    mean_ms: float = DEFAULT_MEAN_THRESHOLD_MS
    p95_ms: float = DEFAULT_P95_THRESHOLD_MS

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Thresholds:
        """BENCH_FAIL_THRESHOLD_MS (mean, default 250) and BENCH_FAIL_P95_THRESHOLD_MS (default 400)."""
        env = os.environ if environ is None else environ
        return cls(
            mean_ms=_positive_ms(env, "BENCH_FAIL_THRESHOLD_MS", DEFAULT_MEAN_THRESHOLD_MS),
            p95_ms=_positive_ms(env, "BENCH_FAIL_P95_THRESHOLD_MS", DEFAULT_P95_THRESHOLD_MS),
        )


def _positive_ms(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a number of milliseconds") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name}={raw!r} must be a positive number of milliseconds")
    return value


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values (0.0 for none)."""
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


# -- where load may go --------------------------------------------------------------------------------------
def is_loopback_url(url: str) -> bool:
    """Does the URL name this machine (127.0.0.0/8, ::1 or localhost)?"""
    host = urlsplit(url).hostname
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class TargetRefused(Exception):
    """Load must not go to this target."""


def check_target(url: str, *, named_by_profile: Sequence[str] = ()) -> str:
    """The URL, when load may go there: loopback, or named explicitly by the profile; else TargetRefused."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise TargetRefused(f"{url!r} is not an http(s) URL")
    normalized = url.rstrip("/")
    if is_loopback_url(normalized) or normalized in {named.rstrip("/") for named in named_by_profile}:
        return normalized
    raise TargetRefused(
        f"refusing to send load to {normalized}: it is not a loopback address and no profile in "
        "scripts/bench_profiles.toml names it (add it as the profile's `url` or to its `allowed_urls`)"
    )


# -- the dataset --------------------------------------------------------------------------------------------
SOURCES: tuple[str, ...] = (
    "checkout",
    "payments-api",
    "orders",
    "inventory",
    "shipping",
    "auth",
    "search",
    "catalog",
    "cart",
    "notifications",
    "billing",
    "recommendations",
    "reviews",
    "pricing",
    "fraud",
    "loyalty",
    "gateway",
    "scheduler",
    "reports",
    "ledger",
    "webhooks",
    "exports",
    "identity",
    "deploy-bot",
)
TYPES: tuple[str, ...] = tuple(
    f"{noun}.{verb}"
    for noun in ("order", "payment", "user", "item", "deploy", "job")
    for verb in (
        "created",
        "updated",
        "failed",
        "retried",
        "completed",
        "cancelled",
        "queued",
        "viewed",
        "paid",
        "sent",
    )
)


@dataclass(frozen=True)
class DatasetSpec:
    """`events` events over the `days` before `end`: each source emits `types_per_source` of the types, and
    sources are skewed (the busiest emits several times more than the quietest), as real traffic is."""

    events: int
    days: int = 30
    end: datetime = field(default_factory=lambda: datetime.now(UTC).replace(microsecond=0))
    types_per_source: int = 10
    seed: float = 0.42

    @property
    def start(self) -> datetime:
        return self.end - timedelta(days=self.days)


# Generated inside PostgreSQL: no rows cross the network, and the events table's triggers (the rollups)
# run exactly as they do for the API's own inserts.
_SEED_CHUNK = """
INSERT INTO events (id, source, type, occurred_at, received_at, attributes)
SELECT gen_random_uuid(),
       ($1::text[])[picked.source_index],
       ($2::text[])[1 + ((picked.source_index * 7 + picked.type_offset) % cardinality($2::text[]))],
       picked.occurred_at,
       picked.occurred_at + (random() * interval '2 seconds'),
       jsonb_build_object(
           'amount', (random() * 1000)::int,
           'region', (ARRAY['eu-west-1', 'us-east-1', 'ap-northeast-2'])[1 + picked.n % 3],
           'attempt', 1 + (random() * random() * 3)::int,
           'seq', picked.n)
FROM (
    SELECT n,
           1 + floor(power(random(), 1.7) * cardinality($1::text[]))::int AS source_index,
           floor(random() * $3::int)::int AS type_offset,
           $4::timestamptz - random() * $5::interval AS occurred_at
    FROM generate_series(1, $6::int) AS n
) AS picked
"""


async def seed_events(
    database_url: str, spec: DatasetSpec, *, progress: Progress = stderr, chunk: int = 100_000
) -> dict[str, Any]:
    """Bulk-insert the dataset straight into PostgreSQL (never through the API), then VACUUM ANALYZE."""
    import asyncpg

    connection = await asyncpg.connect(database_url, timeout=10)
    started = time.monotonic()
    try:
        await connection.execute(f"SELECT setseed({spec.seed})")
        done = 0
        while done < spec.events:
            size = min(chunk, spec.events - done)
            await connection.execute(
                _SEED_CHUNK,
                list(SOURCES),
                list(TYPES),
                spec.types_per_source,
                spec.end,
                timedelta(days=spec.days),
                size,
            )
            done += size
            elapsed = time.monotonic() - started
            progress(f"  seeded {done:,}/{spec.events:,} events ({done / max(elapsed, 1e-9):,.0f}/s)")
        await connection.execute("VACUUM (ANALYZE) events")
        for table in ("event_counts_minute", "event_counts_hour", "event_counts_day"):
            if await connection.fetchval("SELECT to_regclass($1) IS NOT NULL", table):
                await connection.execute(f"VACUUM (ANALYZE) {table}")
    finally:
        await connection.close()
    seconds = time.monotonic() - started
    progress(f"  dataset ready: {spec.events:,} events over {spec.days} days in {seconds:.1f} s")
    return {"events": spec.events, "days": spec.days, "seconds": round(seconds, 2)}


# -- the embedded stack -------------------------------------------------------------------------------------
def start_embedded_stack(
    *, workers: int, progress: Progress = stderr, service_env: Mapping[str, str] | None = None
) -> LocalStack:
    """chaos.stack.LocalStack with the service talking to PostgreSQL and Redis directly (not through the
    fault proxy) and rate limits far above what one load generator sends. The caller stops it."""
    from chaos.stack import LocalStack

    stack = LocalStack(workers=workers, service_env={**BENCH_SERVICE_ENV, **(service_env or {})}, progress=progress)
    stack.start()
    try:
        progress("service: restarting it with direct PostgreSQL/Redis URLs (benchmarks bypass the fault proxy)")
        stack.restart_service({"DATABASE_URL": stack.database_url, "REDIS_URL": stack.redis_url})
    except BaseException:
        stack.stop()
        raise
    return stack


# -- wrk ------------------------------------------------------------------------------------------------------
WRK_INSTALL_HINT = "wrk is not installed: `apt-get install -y wrk` (Debian's package), then run this again"


def wrk_path() -> str:
    """The wrk binary, or SystemExit with how to install it (the benchmark cannot run without it)."""
    found = shutil.which("wrk")
    if found is None:
        raise SystemExit(f"error: {WRK_INSTALL_HINT}")
    return found


WRK_REPORT_MARKER = "WRK-JSON "

# Picks paths/bodies round-robin from files, and prints its summary as one JSON line.
WRK_SCRIPT = r"""
local paths, bodies = {}, {}
local path_file = os.getenv("WRK_PATHS_FILE")
local body_dir = os.getenv("WRK_BODY_DIR")
for line in io.lines(path_file) do paths[#paths + 1] = line end
if body_dir ~= nil and body_dir ~= "" then
  local index = 0
  while true do
    local handle = io.open(body_dir .. "/" .. index .. ".json", "rb")
    if handle == nil then break end
    bodies[#bodies + 1] = handle:read("*a")
    handle:close()
    index = index + 1
  end
end
local api_key = os.getenv("WRK_API_KEY")
if api_key ~= nil and api_key ~= "" then wrk.headers["X-API-Key"] = api_key end
local method = os.getenv("WRK_METHOD") or "GET"
if method == "POST" then wrk.headers["Content-Type"] = "application/json" end
local counter = 0
local thread_offset = 0

function setup(thread)
  thread:set("thread_offset", thread_offset)
  thread_offset = thread_offset + 7919
end

function init(args)
  counter = thread_offset or 0
end

function request()
  counter = counter + 1
  local path = paths[(counter % #paths) + 1]
  if method == "POST" then
    return wrk.format("POST", path, nil, bodies[(counter % #bodies) + 1])
  end
  return wrk.format("GET", path)
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    "WRK-JSON {\"requests\": %d, \"duration_us\": %d, \"bytes\": %d, \"connect_errors\": %d, " ..
    "\"read_errors\": %d, \"write_errors\": %d, \"status_errors\": %d, \"timeout_errors\": %d, " ..
    "\"latency_mean_us\": %.1f, \"latency_p50_us\": %d, \"latency_p95_us\": %d, \"latency_p99_us\": %d, " ..
    "\"latency_max_us\": %d}\n",
    summary.requests, summary.duration, summary.bytes, errors.connect, errors.read, errors.write,
    errors.status, errors.timeout, latency.mean, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), latency.max))
end
"""


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    errors: int
    latency_mean_ms: float
    latency_p50_ms: float
    latency_p95_ms: float
    latency_p99_ms: float

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def run_wrk(
    base_url: str,
    *,
    paths: Sequence[str],
    work_dir: Path,
    seconds: float,
    connections: int,
    threads: int = 1,
    api_key: str | None = None,
    bodies: Sequence[bytes] = (),
    timeout_s: float = 5.0,
) -> WrkResult:
    """Run wrk against base_url (loopback only) and return its summary."""
    check_target(base_url)
    work_dir.mkdir(parents=True, exist_ok=True)
    script = work_dir / "wrk.lua"
    script.write_text(WRK_SCRIPT)
    path_file = work_dir / "paths.txt"
    path_file.write_text("\n".join(paths) + "\n")
    body_dir = work_dir / "bodies"
    if bodies:
        body_dir.mkdir(exist_ok=True)
        for index, body in enumerate(bodies):
            (body_dir / f"{index}.json").write_bytes(body)
    env = {
        **os.environ,
        "WRK_PATHS_FILE": str(path_file),
        "WRK_BODY_DIR": str(body_dir) if bodies else "",
        "WRK_API_KEY": api_key or "",
        "WRK_METHOD": "POST" if bodies else "GET",
    }
    command = [
        wrk_path(),
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        f"{max(1, round(timeout_s))}s",
        "-s",
        str(script),
        base_url,
    ]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=seconds + 60, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"wrk failed ({result.returncode}): {result.stderr.strip() or result.stdout.strip()}")
    for line in result.stdout.splitlines():
        if line.startswith(WRK_REPORT_MARKER):
            data = json.loads(line[len(WRK_REPORT_MARKER) :])
            errors = sum(
                int(data[name])
                for name in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeout_errors")
            )
            return WrkResult(
                requests=int(data["requests"]),
                seconds=int(data["duration_us"]) / 1e6,
                errors=errors,
                latency_mean_ms=float(data["latency_mean_us"]) / 1000,
                latency_p50_ms=int(data["latency_p50_us"]) / 1000,
                latency_p95_ms=int(data["latency_p95_us"]) / 1000,
                latency_p99_ms=int(data["latency_p99_us"]) / 1000,
            )
    raise RuntimeError(f"wrk printed no summary:\n{result.stdout}\n{result.stderr}")


def urls_named_by_profiles(path: Path | None = None) -> list[str]:
    """Every URL a profile in bench_profiles.toml names explicitly (`url`, `allowed_urls`)."""
    import tomllib

    document = tomllib.loads((path or Path(__file__).resolve().parent / "bench_profiles.toml").read_text())
    named: list[str] = []
    for profile in document.get("profiles", {}).values():
        if profile.get("url"):
            named.append(str(profile["url"]))
        named += [str(url) for url in profile.get("allowed_urls", [])]
    return named


def machine_description() -> str:
    """One line: cores, CPU model, Python, PostgreSQL."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores ({model}), Python {sys.version.split()[0]}"


# -- a small HTTP/1.1 client ----------------------------------------------------------------------------------
class HttpError(Exception):
    """The request got no HTTP answer (connection refused or lost, timeout, malformed response)."""


class KeepAliveConnection:
    """One persistent HTTP/1.1 connection for GET requests, one at a time.

    The load generator shares two cores with the service it measures: httpx spends about 1.5 ms of CPU per
    request here, which would make the client the bottleneck and count its own queueing as server latency.
    This costs a small fraction of that. It reconnects when the server closes the connection."""

    def __init__(self, base_url: str, headers: Mapping[str, str], timeout_s: float) -> None:
        parts = urlsplit(base_url)
        if parts.hostname is None:
            raise ValueError(f"no host in {base_url!r}")
        self._host = parts.hostname
        self._tls = parts.scheme == "https"
        self._port = parts.port or (443 if self._tls else 80)
        self._prefix = parts.path.rstrip("/")
        host_header = parts.netloc.rsplit("@", 1)[-1]
        self._head_tail = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        self._head_tail = f"Host: {host_header}\r\n{self._head_tail}\r\n"
        self._timeout_s = timeout_s
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection(self._host, self._port, ssl=self._tls or None)
        self._reader, self._writer = reader, writer
        return reader, writer

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def get(self, path_and_query: str) -> tuple[int, bytes]:
        """(status, body); HttpError when there is no answer within the timeout."""
        try:
            async with asyncio.timeout(self._timeout_s):
                return await self._get(path_and_query)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as error:
            await self.close()
            raise HttpError(f"{type(error).__name__}: {error}") from None

    async def _get(self, path_and_query: str) -> tuple[int, bytes]:
        if self._writer is None or self._reader is None or self._writer.is_closing():
            reader, writer = await self._connect()
        else:
            reader, writer = self._reader, self._writer
        writer.write(f"GET {self._prefix}{path_and_query} HTTP/1.1\r\n{self._head_tail}".encode("latin-1"))
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length: int | None = None
        chunked = close = False
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
            elif name == "connection" and "close" in value.lower():
                close = True
        if chunked:
            body = bytearray()
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await reader.readuntil(b"\r\n")
                    break
                body += await reader.readexactly(size + 2)
                del body[-2:]
            payload = bytes(body)
        elif length is not None:
            payload = await reader.readexactly(length)
        else:
            payload = await reader.read()
            close = True
        if close:
            await self.close()
        return status, payload
