"""Throwaway PostgreSQL and Redis servers on ephemeral 127.0.0.1 ports, that can be broken on purpose.

Each server lives in its own temporary directory. Stopping, killing, pausing (SIGSTOP) and resuming reach
every one of its processes, found through /proc parent links: pausing only PostgreSQL's postmaster would
leave the backends of pooled connections answering. PostgreSQL refuses to run as root, so as root
its processes are started as the `postgres` system user.

Servers stop when their `with` block ends, and any left running stop at interpreter exit. However the
process that started them dies (`kill -9` included), the kernel kills them too, and the next start removes
their directories (`chaos.lifecycle`: parent-death signal, labelled temporary directories).
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import time
import weakref
from pathlib import Path
from typing import Self

from chaos.lifecycle import Lifecycle, ServerError, free_port, labelled_directory, log_tail, start_process

READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
_live_servers: weakref.WeakSet[_Server] = weakref.WeakSet()


def postgres_bindir() -> Path:
    """Where initdb and postgres live: `pg_config --bindir`, else the newest /usr/lib/postgresql/*/bin."""
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        found = Path(
            subprocess.run(["pg_config", "--bindir"], check=True, capture_output=True, text=True).stdout.strip()
        )
        if (found / "initdb").exists():
            return found
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name))
    for candidate in reversed(candidates):
        if (Path(candidate) / "initdb").exists():
            return Path(candidate)
    raise ServerError("PostgreSQL server binaries not found: install postgresql (initdb, postgres)")


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a process, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return fields[0], int(fields[1])


def _alive(pid: int) -> bool:
    stat = _stat(pid)
    return stat is not None and stat[0] != "Z"


class _Server(Lifecycle):
    """A server process in its own process group, with a temporary directory it owns."""

    name = "server"

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.directory = labelled_directory(self.name)
        self.log_path = self.directory / f"{self.name}.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._paused = False
        _live_servers.add(self)

    # -- lifecycle -------------------------------------------------------------------------------------
    def _command(self) -> list[str]:
        raise NotImplementedError

    # The system user the server's processes run as (None: as ourselves).
    run_as: str | None = None

    def _is_ready(self) -> bool:
        raise NotImplementedError

    def start(self) -> Self:
        if self.running:
            return self
        log = self.log_path.open("ab")
        try:
            self._process = start_process(
                self._command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a terminal's Ctrl-C is for us, not for the server
                user=self.run_as,
                group=self.run_as,
            )
        finally:
            log.close()
        self._paused = False
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not self._is_ready():
            if self._process.poll() is not None:
                raise ServerError(f"{self.name} exited with {self._process.returncode}:\n{log_tail(self.log_path)}")
            if time.monotonic() > deadline:
                self.kill()
                raise ServerError(f"{self.name} not ready after {READY_TIMEOUT_S}s:\n{log_tail(self.log_path)}")
            time.sleep(0.02)
        return self

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self.running and self._process is not None else None

    def pids(self) -> list[int]:
        """The server's live processes: the one we started and all its descendants.

        PostgreSQL's backends each call setsid(), so a process group would miss them; the parent links in
        /proc find them all."""
        if self._process is None or not _alive(self._process.pid):
            return []
        children: dict[int, list[int]] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                stat = _stat(int(entry.name))
                if stat is not None and stat[0] != "Z":
                    children.setdefault(stat[1], []).append(int(entry.name))
        found, frontier = [], [self._process.pid]
        while frontier:
            pid = frontier.pop()
            found.append(pid)
            frontier.extend(children.get(pid, ()))
        return sorted(found)

    def _signal_all(self, signum: int) -> list[int]:
        """Signal the leader first (so it cannot fork past us), then every descendant; return whom we hit."""
        if self._process is None:
            return []
        hit = [self._process.pid] if _alive(self._process.pid) else []
        with contextlib.suppress(ProcessLookupError):
            os.kill(self._process.pid, signum)
        for pid in self.pids() or []:
            if pid != self._process.pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signum)
                hit.append(pid)
        return hit

    def _wait(self, timeout: float, pids: list[int] | None = None) -> bool:
        """Wait for the leader to exit and for `pids` (default: its current descendants) to be gone."""
        if self._process is None:
            return True
        waiting_for = pids if pids is not None else self.pids()
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        deadline = time.monotonic() + timeout
        while any(_alive(pid) for pid in waiting_for) and time.monotonic() < deadline:
            time.sleep(0.02)
        return True

    def stop(self) -> None:
        """Orderly shutdown (falls back to kill)."""
        if self._process is None:
            return
        if self._paused:
            self.resume()
        processes = self.pids()
        self._graceful_stop()
        if not self._wait(STOP_TIMEOUT_S, processes):
            self.kill()

    def _graceful_stop(self) -> None:
        if self._process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._process.pid, signal.SIGTERM)

    def begin_stop(self) -> None:
        """Ask for the orderly shutdown without waiting for it (`stop` then waits, or kills): several servers
        then shut down at the same time. A paused server is left to `stop`, which resumes it first."""
        if self.running and not self._paused:
            self._graceful_stop()

    def kill(self) -> None:
        """SIGKILL to every process of the server, as a crash would."""
        hit = self._signal_all(signal.SIGKILL)
        self._wait(STOP_TIMEOUT_S, hit)
        self._paused = False

    def pause(self) -> None:
        """SIGSTOP to every process: connections stay open, nothing answers (a hung server)."""
        self._signal_all(signal.SIGSTOP)
        self._paused = True

    def resume(self) -> None:
        self._signal_all(signal.SIGCONT)
        self._paused = False

    def restart(self) -> Self:
        self.stop()
        return self.start()

    def close(self) -> None:
        """Stop the server and delete its directory."""
        try:
            self.stop()
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)
            _live_servers.discard(self)


class PostgresServer(_Server):
    """A PostgreSQL cluster initialised in a temporary directory, password-protected over TCP."""

    name = "postgres"

    def __init__(self, port: int | None = None, *, user: str = "postgres", password: str | None = None) -> None:
        super().__init__(port)
        self.user = user
        self.password = password or secrets.token_urlsafe(18)
        self.bindir = postgres_bindir()
        self.data_dir = self.directory / "data"
        self._as_root = os.geteuid() == 0
        if self._as_root:
            self.run_as = "postgres"  # PostgreSQL refuses to run as root
            account = pwd.getpwnam("postgres")
            os.chown(self.directory, account.pw_uid, account.pw_gid)
        self._initdb()

    def _initdb(self) -> None:
        password_file = self.directory / "pwfile"
        password_file.write_text(self.password + "\n")
        if self._as_root:
            account = pwd.getpwnam("postgres")
            os.chown(password_file, account.pw_uid, account.pw_gid)
        try:
            subprocess.run(
                [
                    str(self.bindir / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    self.user,
                    f"--pwfile={password_file}",
                    "--auth-host=scram-sha-256",
                    "--auth-local=trust",
                    "--encoding=UTF8",
                    "--locale=C",
                    "--no-sync",
                ],
                check=True,
                capture_output=True,
                user=self.run_as,
                group=self.run_as,
            )
        except subprocess.CalledProcessError as error:
            raise ServerError(f"initdb failed:\n{error.stderr.decode(errors='replace')}") from error
        finally:
            password_file.unlink(missing_ok=True)

    def _command(self) -> list[str]:
        return [
            str(self.bindir / "postgres"),
            "-D",
            str(self.data_dir),
            "-p",
            str(self.port),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            f"unix_socket_directories={self.directory}",
            "-c",
            "max_connections=200",
            "-c",
            "shared_buffers=128MB",
            # Throwaway data: skip fsync. A killed server still keeps every committed row (the WAL is in
            # the OS page cache), which is what the crash drills check.
            "-c",
            "fsync=off",
            "-c",
            "full_page_writes=off",
        ]

    def _is_ready(self) -> bool:
        result = subprocess.run(
            [str(self.bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-t", "1"],
            capture_output=True,
            check=False,
        )
        return result.returncode == 0

    def _graceful_stop(self) -> None:
        # SIGINT is PostgreSQL's "fast" shutdown: roll back sessions, checkpoint, exit.
        if self._process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._process.pid, signal.SIGINT)

    def stop_immediate(self) -> None:
        """SIGQUIT: PostgreSQL's "immediate" shutdown, recovery on next start (a crash, politely)."""
        if self._process is not None:
            processes = self.pids()
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._process.pid, signal.SIGQUIT)
            if not self._wait(STOP_TIMEOUT_S, processes):
                self.kill()

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}:{self.password}@127.0.0.1:{self.port}/{database}"

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run SQL over the local socket (trust auth) and return psql's unaligned output."""
        result = subprocess.run(
            [
                str(self.bindir / "psql"),
                "-h",
                str(self.directory),
                "-p",
                str(self.port),
                "-U",
                self.user,
                "-d",
                database,
                "-v",
                "ON_ERROR_STOP=1",
                "-Atc",
                sql,
            ],
            capture_output=True,
            text=True,
            check=False,
            user=self.run_as,
            group=self.run_as,
        )
        if result.returncode != 0:
            raise ServerError(f"psql failed: {result.stderr.strip()}")
        return str(result.stdout).strip()

    def create_database(self, name: str) -> str:
        self.psql(f'CREATE DATABASE "{name}"')
        return self.url(name)


class RedisServer(_Server):
    """A redis-server with no persistence, optionally password-protected."""

    name = "redis"

    def __init__(self, port: int | None = None, *, password: str | None = None) -> None:
        super().__init__(port)
        self.password = password

    def _command(self) -> list[str]:
        command = [
            "redis-server",
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.directory),
            "--protected-mode",
            "yes",
        ]
        if self.password:
            command += ["--requirepass", self.password]
        return command

    def _is_ready(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                if self.password:
                    sock.sendall(f"AUTH {self.password}\r\n".encode())
                    sock.recv(64)
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def url(self, database: int = 0) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/{database}"


@atexit.register
def _stop_leftovers() -> None:
    for server in list(_live_servers):
        with contextlib.suppress(Exception):
            server.close()
