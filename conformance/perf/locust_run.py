"""A bounded headless Locust run against the embedded stack: start and seed the stack, run Locust (one process,
or a master on 127.0.0.1 and N workers), stop everything, and answer with Locust's exit code."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

from chaos.lifecycle import free_port
from conformance.perf.console import stderr
from conformance.perf.embedded import start_embedded_stack
from conformance.perf.seeding import DatasetSpec, seed_events

GRACE_S = 60


def run_locust(
    locustfile: Path,
    *,
    users: int,
    spawn_rate: float,
    seconds: int,
    workers: int,
    events: int,
    distributed: int,
    csv: str | None,
) -> int:
    """Locust's exit code: 0 when every entry met the gate, 1 when one did not (or Locust did not finish)."""
    stack = start_embedded_stack(workers=workers)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        asyncio.run(seed_events(stack.database_url, DatasetSpec(events=events)))
        env = {**os.environ, "API_KEY": stack.api_key}
        common = [sys.executable, "-m", "locust", "-f", str(locustfile)]
        run = [
            "--headless",
            "--users",
            str(users),
            "--spawn-rate",
            str(spawn_rate),
            "--run-time",
            f"{seconds}s",
            "--stop-timeout",
            "5",
            "--host",
            stack.api_url,
            "--only-summary",
            *(["--csv", csv] if csv else []),
        ]
        if distributed > 0:
            port = free_port()
            master = [
                *common,
                "--master",
                "--master-bind-host",
                "127.0.0.1",
                "--master-bind-port",
                str(port),
                "--expect-workers",
                str(distributed),
                *run,
            ]
            stderr(f"locust: master on 127.0.0.1:{port} and {distributed} worker(s), {users} users")
            processes.append(subprocess.Popen(master, env=env))
            for _ in range(distributed):
                worker = [*common, "--worker", "--master-host", "127.0.0.1", "--master-port", str(port)]
                processes.append(subprocess.Popen(worker, env=env))
        else:
            stderr(f"locust: {users} users for {seconds} s against {stack.api_url}")
            processes.append(subprocess.Popen([*common, *run], env=env))
        deadline = time.monotonic() + seconds + GRACE_S
        try:
            code = processes[0].wait(timeout=max(deadline - time.monotonic(), 1))
        except subprocess.TimeoutExpired:
            stderr("error: locust did not finish in time; stopping it")
            code = 1
        for process in processes[1:]:
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 5))
            except subprocess.TimeoutExpired:
                process.terminate()
        stderr(f"locust exited with {code}")
        return code
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
        stack.stop()
