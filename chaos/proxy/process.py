"""`python -m chaos.proxy` as a child process: a separate daemon, as Toxiproxy is.

In a process of its own the proxy never competes with the caller for the GIL, which is what the benchmark
measures and what a busy harness may prefer; `FaultProxy` on a thread is the lighter choice otherwise. Like
every process the harness starts, it dies with its starter, and its directory is labelled (`chaos.lifecycle`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Self

from chaos.lifecycle import Lifecycle, labelled_directory, log_tail, start_process
from chaos.proxy.server import FaultProxyError

START_TIMEOUT_S = 15.0


class FaultProxyProcess(Lifecycle):
    """The fault proxy CLI on 127.0.0.1 (any free port unless `listen` says otherwise)."""

    def __init__(self, listen: str = "127.0.0.1:0", *, extra_args: tuple[str, ...] = ()) -> None:
        self.listen = listen
        self.extra_args = extra_args
        self.api_url = ""
        self._directory = labelled_directory("fault-proxy")
        self.log_path = self._directory / "fault-proxy.log"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        with self.log_path.open("wb") as log:
            self._process = start_process(
                [sys.executable, "-m", "chaos.proxy", "--listen", self.listen, *self.extra_args],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a terminal's Ctrl-C is for the parent, which stops us in order
                cwd=Path(__file__).resolve().parents[2],
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.api_url:
            for line in self.log_path.read_text(errors="replace").splitlines():
                if line.startswith("fault proxy API on "):
                    self.api_url = line.removeprefix("fault proxy API on ").strip()
            if self._process.poll() is not None:
                code = self._process.returncode
                raise FaultProxyError(f"python -m chaos.proxy exited with {code}:\n{self.log_tail()}")
            if not self.api_url and time.monotonic() > deadline:
                self.stop()
                raise FaultProxyError(f"python -m chaos.proxy did not start in {START_TIMEOUT_S}s")
            time.sleep(0.02)
        return self

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None and self._process.poll() is None else None

    def log_tail(self, lines: int = 20) -> str:
        return log_tail(self.log_path, lines)

    def stop(self, timeout: float = 10.0) -> None:
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self._process = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self._directory, ignore_errors=True)
