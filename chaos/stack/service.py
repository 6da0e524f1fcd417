"""The service as a real subprocess (`python -m service` under hypercorn).

Harnesses run the service exactly as operators do, so what they observe (signals, workers, timeouts,
graceful drain) is what production does. The service dies with the process that started it, however that
one dies (its workers die with it in turn), and its files live in a labelled directory that the next start
removes if nobody did (`chaos.lifecycle`).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Self

from chaos.lifecycle import Lifecycle, ServerError, answers_ok, free_port, labelled_directory, log_tail, start_process
from chaos.stack.migrations import REPO_ROOT

READY_TIMEOUT_S = 30.0
# What `python -m service` serves unless told otherwise (service/__main__.py APPLICATION).
SERVICE_APPLICATION = "service.asgi:app"


def generated_credentials() -> dict[str, str]:
    """A fresh API key and JWT secret for a throwaway stack."""
    return {"API_KEY": secrets.token_urlsafe(24), "JWT_SECRET": secrets.token_urlsafe(48)}


class ServiceProcess(Lifecycle):
    """`python -m service` on 127.0.0.1:<port> with the given environment; logs go to a file."""

    def __init__(
        self,
        env: Mapping[str, str],
        *,
        port: int | None = None,
        workers: int = 1,
        log_path: Path | None = None,
        application: str | None = None,
        code_root: Path | None = None,
        reuse_port: bool = False,
    ) -> None:
        """`application` (MODULE:ATTR) replaces the service's own ASGI app, e.g. with a broken variant;
        `code_root` runs the service from another checkout (a release drill's previous or candidate code);
        `reuse_port` lets another service started with it share the port (LISTEN_REUSE_PORT, for a rolling
        restart); without it, a taken port makes the service exit with status 3."""
        self.env = dict(env)
        self.application = application
        self.code_root = code_root or REPO_ROOT
        self.port = port or free_port()
        self.workers = workers
        self.reuse_port = reuse_port
        self._own_log_dir = log_path is None
        self.log_path = log_path or labelled_directory("service") / "service.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._metrics_dir: Path | None = None
        self._log_start = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        """The supervisor's process id (its workers are its children)."""
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> Self:
        env = {**os.environ, **self.env}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        if self.workers > 1:
            # Each instance gets its own, beside its log: a service killed before its exit handlers ran leaves
            # it in our (labelled) directory rather than loose in $TMPDIR.
            self._metrics_dir = Path(tempfile.mkdtemp(prefix="metrics-", dir=self.log_path.parent))
            env["PROMETHEUS_MULTIPROC_DIR"] = str(self._metrics_dir)
        if self.reuse_port:
            env["LISTEN_REUSE_PORT"] = "true"
        command = [
            sys.executable,
            "-m",
            "service",
            "--config",
            str(self.code_root / "hypercorn.toml"),
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            str(self.workers),
            *(["--app", self.application] if self.application else []),
        ]
        with self.log_path.open("ab") as log:
            self._log_start = log.tell()
            self._process = start_process(
                command,
                cwd=self.code_root,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.wait_live()
        return self

    def _workers_listening(self) -> int:
        """Workers of this start that listen: lines logged since it began (an earlier start may share the log)."""
        try:
            with self.log_path.open("rb") as log:
                log.seek(self._log_start)
                return log.read().count(b"Running on http")
        except OSError:
            return 0

    def wait_live(self, timeout: float = READY_TIMEOUT_S) -> None:
        """Until the port answers /health/live and a worker of this process listens (its log says so): another
        server on the port answering is not this one up, and this one will exit, refusing the taken port."""
        deadline = time.monotonic() + timeout
        while True:
            if self._process is not None and self._process.poll() is not None:
                raise ServerError(f"the service exited with {self._process.returncode}:\n{self.log_tail()}")
            if self._workers_listening() >= 1 and answers_ok(f"{self.base_url}/health/live"):
                return
            if time.monotonic() > deadline:
                tail = self.log_tail()
                self.stop()
                raise ServerError(f"the service did not come up within {timeout}s:\n{tail}")
            time.sleep(0.05)

    def wait_workers_listening(self, workers: int, timeout: float = READY_TIMEOUT_S) -> None:
        """Wait until this process's own workers listen (its log says so), whoever answers the port."""
        deadline = time.monotonic() + timeout
        while True:
            if self._workers_listening() >= workers:
                return
            if self._process is not None and self._process.poll() is not None:
                raise ServerError(f"the service exited with {self._process.returncode}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise ServerError(f"the service's workers did not start within {timeout}s:\n{self.log_tail()}")
            time.sleep(0.05)

    def log_tail(self, lines: int = 30) -> str:
        return log_tail(self.log_path, lines)

    def terminate(self) -> None:
        """SIGTERM, as an orchestrator sends it: hypercorn drains in-flight requests, then exits."""
        if self.running and self._process is not None:
            self._process.send_signal(signal.SIGTERM)

    def wait(self, timeout: float) -> int | None:
        if self._process is None:
            return None
        try:
            return self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM, then SIGKILL for the whole process group after `timeout`. Can be started again."""
        if self._process is None:
            return
        self.terminate()
        if self.wait(timeout) is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait()
        # Workers are in the same process group; make sure none outlives the supervisor.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._process.pid, signal.SIGKILL)
        if self._metrics_dir is not None:
            shutil.rmtree(self._metrics_dir, ignore_errors=True)
            self._metrics_dir = None

    def close(self) -> None:
        """Stop, and remove the log directory if this object created it."""
        self.stop()
        if self._own_log_dir:
            shutil.rmtree(self.log_path.parent, ignore_errors=True)
