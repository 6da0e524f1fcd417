"""`with` for everything the harness starts (servers, the fault proxy, the service, Prometheus), and the
guarantee that none of it outlives the harness, however the harness dies.

- **Processes die with their starter.** Every long-running process is started by `start_process`, which arms
  a parent-death signal in the child (Linux `prctl(PR_SET_PDEATHSIG, SIGKILL)`): when the process that
  started it dies — an orderly exit, an exception, `kill -9`, the OOM killer — the kernel kills the child.
  SIGKILL, because it also ends a server the harness had paused (SIGSTOP). The kernel sends it when the
  *thread* that forked the child ends, so children are forked from the main thread, or from one long-lived
  spawner thread when a start is asked for from another thread. A server's own children (PostgreSQL's
  backends, the service's workers) see their parent die and exit (the service's workers arm the same signal).
- **Temporary directories are labelled.** `labelled_directory(kind)` makes `$TMPDIR/rb-<kind>-<random>/`
  holding `.rb-owner`: JSON with the pid and the start time (from /proc) of the process that made it.
- **A new start removes what a killed run left.** Before making a labelled directory, `remove_leftovers()`
  looks at every `rb-*` directory in `$TMPDIR` that holds `.rb-owner`, and for those whose owner is dead
  (no such pid, or a pid reused by a process started at another time) kills every process still using it
  (its working directory, an open file or its command line is inside it: a PostgreSQL whose data directory
  it is, a server still writing its log there; never a process with a terminal, or one older than the owner)
  and deletes it. A directory without a readable `.rb-owner`, or whose owner runs, is never touched.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from types import TracebackType
from typing import Any, Self

LABEL_PREFIX = "rb-"
OWNER_FILE = ".rb-owner"
LEFTOVER_KILL_TIMEOUT_S = 5.0
_PR_SET_PDEATHSIG = 1


class ServerError(RuntimeError):
    """A server could not be started or stopped; the message carries the tail of its log."""


def free_port() -> int:
    """A port that is free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def answers_ok(url: str) -> bool:
    """Whether a GET on `url` answers 200 within a second (a readiness poll: errors mean "not yet")."""
    with (
        contextlib.suppress(OSError, urllib.error.URLError),
        urllib.request.urlopen(url, timeout=1) as response,  # noqa: S310 - loopback URLs the harness built
    ):
        return bool(response.status == 200)
    return False


def log_tail(path: Path, lines: int = 20) -> str:
    """The last lines of a log file, for an error message; "(no log)" when there is none."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class Lifecycle(ABC):
    """Started on entering a `with` block and closed on leaving it, also when starting fails half-way:
    a half-started server already holds a port, processes or a temporary directory."""

    @abstractmethod
    def start(self) -> Self: ...

    @abstractmethod
    def close(self) -> None:
        """Stop and remove everything the object holds; safe in any state, including half-started."""

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


# -- processes that die with their starter -------------------------------------------------------------
def _load_prctl() -> Callable[..., int] | None:
    """libc's prctl, resolved before any fork (a forked child should do as little as possible)."""
    with contextlib.suppress(OSError, AttributeError):
        prctl = ctypes.CDLL(None, use_errno=True).prctl
        prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
        prctl.restype = ctypes.c_int
        return prctl
    return None  # not Linux: children outlive a killed harness; `remove_leftovers` still cleans up


_prctl = _load_prctl()


def _die_with(parent_pid: int) -> Callable[[], None]:
    """A `preexec_fn`: runs in the child after fork (and after any user switch, which would clear the
    setting) and before exec; the setting survives exec of a binary that is not set-uid."""

    def arm_parent_death_signal() -> None:
        if _prctl is not None:
            _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent_pid:  # the parent died before the signal was armed
            os.kill(os.getpid(), signal.SIGKILL)

    return arm_parent_death_signal


class _Spawner:
    """One daemon thread that forks on behalf of threads that may end before their children should."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def run(self, work: Callable[[], Any]) -> Any:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, name="rb-spawner", daemon=True)
                self._thread.start()
        result: Future[Any] = Future()
        self._requests.put((work, result))
        return result.result()

    def _serve(self) -> None:
        while True:
            work, result = self._requests.get()
            try:
                result.set_result(work())
            except BaseException as error:  # handed to the caller's thread
                result.set_exception(error)


_spawner = _Spawner()


def start_process(command: Sequence[str], **popen_options: Any) -> subprocess.Popen[bytes]:
    """`subprocess.Popen(command, **popen_options)` whose process is killed when this process dies."""
    parent_pid = os.getpid()

    def popen() -> subprocess.Popen[bytes]:
        # A preexec_fn is Python run in the forked child while other threads' locks may be held; this one
        # takes none (prctl was resolved at import), which keeps it safe beside the harness's threads.
        return subprocess.Popen(list(command), preexec_fn=_die_with(parent_pid), **popen_options)

    if threading.current_thread() is threading.main_thread():
        return popen()
    process: subprocess.Popen[bytes] = _spawner.run(popen)
    return process


# -- labelled temporary directories ------------------------------------------------------------------------
def _stat(pid: int) -> tuple[int, int] | None:
    """(start time in clock ticks since boot, controlling terminal) of a live process, None when gone.

    Fields 22 and 7 of /proc/<pid>/stat; a zombie has exited and counts as gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    if fields[0] == "Z":
        return None
    return int(fields[19]), int(fields[4])


def _start_time(pid: int) -> int | None:
    stat = _stat(pid)
    return stat[0] if stat is not None else None


def labelled_directory(kind: str, root: Path | None = None) -> Path:
    """A new `rb-<kind>-*` directory in `root` (default `$TMPDIR`) owned by this process; leftovers of dead
    owners there go first."""
    remove_leftovers(root)
    directory = Path(tempfile.mkdtemp(prefix=f"{LABEL_PREFIX}{kind}-", dir=root))
    owner = {"pid": os.getpid(), "start_time": _start_time(os.getpid())}
    staged = directory / f"{OWNER_FILE}.tmp"
    staged.write_text(json.dumps(owner))
    staged.replace(directory / OWNER_FILE)  # a sweeping process never reads half a label
    return directory


def _dead_owner_start_time(directory: Path) -> int | None:
    """The start time of the directory's owner when its label is readable and that process is gone
    (0 when the label has no start time); None otherwise: anything unclear counts as alive."""
    try:
        owner = json.loads((directory / OWNER_FILE).read_text())
        pid, started = int(owner["pid"]), owner["start_time"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    now_started = _start_time(pid)
    if now_started is None or (started is not None and now_started != started):
        return int(started or 0)
    return None


def _inside(link: Path, directory: str) -> bool:
    try:
        target = os.readlink(link)
    except OSError:
        return False
    return target == directory or target.startswith(directory + "/")


def processes_using(directory: Path, *, started_since: int = 0) -> list[int]:
    """Live processes whose working directory, an open file or the command line is inside `directory`
    (PostgreSQL runs in its data directory; servers keep their log open), that have no controlling terminal
    and started at `started_since` (clock ticks since boot) or later. The harness starts its servers in new
    sessions, without a terminal, after it started itself: an operator's shell that `cd`s into a leftover
    directory to read a log is none of them."""
    root = str(directory.resolve())
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        stat = _stat(int(entry.name))
        if stat is None or stat[0] < started_since or stat[1] != 0:
            continue
        try:
            command_line = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
            descriptors = list((entry / "fd").iterdir())
        except OSError:  # gone, or not ours to inspect
            continue
        if (
            _inside(entry / "cwd", root)
            or any(argument == root or argument.startswith(root + "/") for argument in command_line)
            or any(_inside(descriptor, root) for descriptor in descriptors)
        ):
            found.append(int(entry.name))
    return sorted(found)


def _kill_processes_using(directory: Path, started_since: int) -> None:
    deadline = time.monotonic() + LEFTOVER_KILL_TIMEOUT_S
    while (pids := processes_using(directory, started_since=started_since)) and time.monotonic() < deadline:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)  # also ends a stopped (paused) process
        time.sleep(0.05)


def leftover_directories(root: Path | None = None) -> dict[Path, int]:
    """Labelled directories in `root` (default `$TMPDIR`) whose owner process is dead, with the owner's
    start time."""
    base = root or Path(tempfile.gettempdir())
    try:
        candidates = sorted(path for path in base.iterdir() if path.name.startswith(LABEL_PREFIX))
    except OSError:
        return {}
    found = {}
    for path in candidates:
        if path.is_dir() and (started := _dead_owner_start_time(path)) is not None:
            found[path] = started
    return found


def remove_leftovers(root: Path | None = None) -> list[Path]:
    """Stop the processes still running from labelled directories of dead owners, delete those directories,
    and return them."""
    removed = leftover_directories(root)
    for directory, owner_started in removed.items():
        _kill_processes_using(directory, owner_started)
        shutil.rmtree(directory, ignore_errors=True)
    return list(removed)
