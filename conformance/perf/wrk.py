"""The wrk load generator, driven by a Lua script that picks paths (and bodies) round-robin from files and
prints its summary as one JSON line; loopback targets only."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from conformance.perf.targets import check_target

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
