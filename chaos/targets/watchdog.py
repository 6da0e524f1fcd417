"""Faults that expire by themselves on a deployment's containers: a detached watchdog process per fault.

The fault proxy removes a leased toxic by itself (docs/DEPLOYMENT.md, "Fault leases"); a paused, stopped or
disconnected container has nobody to undo it if the harness dies. So before such a fault is injected, a small
process is started in its own session — not tied to the harness's life, unlike everything else the harness
starts — that sleeps for the lease and then undoes the fault through the Docker Engine API (unpause, start,
reconnect). Undoing the fault normally disarms it (SIGTERM). If the harness is SIGKILLed mid-drill, the
deployment is whole again when the lease ends.

    python -m chaos.targets.watchdog --project P --after 360 --undo unpause:CONTAINER_ID
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

from chaos.targets.docker_driver import DEFAULT_SOCKET, DockerDriver, DockerDriverError

UNDO_ACTIONS = ("unpause", "start", "connect")
MAX_LEASE_S = 3600.0
DEFAULT_LEASE_S = 360.0  # above a drill's default time limit (AbortConditions.max_duration_s, 300 s)


@dataclass
class Watchdog:
    """A running watchdog; `disarm` stops it before it undoes anything."""

    process: subprocess.Popen[bytes]
    undo: str

    def disarm(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(5)

    @property
    def fired(self) -> bool:
        return self.process.poll() == 0


def arm(project: str, undo: str, *, after_s: float = DEFAULT_LEASE_S, socket: str = DEFAULT_SOCKET) -> Watchdog:
    """Start a watchdog that runs `undo` ("unpause:ID", "start:ID", "connect:ID:NETWORK") after `after_s`."""
    _parse_undo(undo)
    command = [sys.executable, "-m", "chaos.targets.watchdog", "--project", project, "--socket", socket]
    process = subprocess.Popen(
        [*command, "--after", str(after_s), "--undo", undo],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # outlives the harness on purpose: that is its whole point
    )
    return Watchdog(process, undo)


def _parse_undo(undo: str) -> tuple[str, str, str | None]:
    action, _, rest = undo.partition(":")
    container, _, network = rest.partition(":")
    if action not in UNDO_ACTIONS or not container or (action == "connect") != bool(network):
        raise ValueError(f"not an undo action: {undo!r} (unpause:ID, start:ID, connect:ID:NETWORK)")
    return action, container, network or None


def undo_now(driver: DockerDriver, undo: str) -> None:
    action, container, network = _parse_undo(undo)
    if action == "unpause":
        driver.unpause(container)
    elif action == "start":
        driver.start(container)
    else:
        assert network is not None
        driver.connect(container, network)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos.targets.watchdog", description=__doc__)
    parser.add_argument("--project", required=True, help="the compose project whose container it undoes")
    parser.add_argument("--socket", default=DEFAULT_SOCKET)
    parser.add_argument("--after", type=float, required=True, help=f"seconds (at most {MAX_LEASE_S:.0f})")
    parser.add_argument("--undo", action="append", required=True, help="unpause:ID, start:ID or connect:ID:NETWORK")
    args = parser.parse_args(argv)
    if not 0 < args.after <= MAX_LEASE_S:
        parser.error(f"--after must be in (0, {MAX_LEASE_S:.0f}]")
    for undo in args.undo:
        try:
            _parse_undo(undo)
        except ValueError as error:
            parser.error(str(error))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(3))  # disarmed
    time.sleep(args.after)
    failed = 0
    with DockerDriver(project=args.project, socket_path=args.socket) as driver:
        for undo in args.undo:
            try:
                undo_now(driver, undo)
            except DockerDriverError:
                failed += 1  # already undone (running, unpaused, connected): nothing to do
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())


class Leases:
    """The watchdogs of one target, by undo action: `hold` before a fault, `release` once it is undone."""

    def __init__(self, project: str, *, socket: str = DEFAULT_SOCKET, after_s: float = DEFAULT_LEASE_S) -> None:
        self.project = project
        self.socket = socket
        self.after_s = after_s
        self._armed: dict[str, Watchdog] = {}

    def hold(self, undo: str) -> None:
        self.release(undo)
        self._armed[undo] = arm(self.project, undo, after_s=self.after_s, socket=self.socket)

    def release(self, undo: str) -> None:
        watchdog = self._armed.pop(undo, None)
        if watchdog is not None:
            watchdog.disarm()

    def armed(self) -> list[str]:
        return sorted(undo for undo, watchdog in self._armed.items() if watchdog.process.poll() is None)

    def release_all(self) -> None:
        for undo in list(self._armed):
            self.release(undo)
