"""Drills side by side. A lane is one stack with its own Prometheus; the lanes take drills from one queue, so a
suite's wall time is its drills' bounded waits (mostly the alerts' `for:` on the drill clock) spread over the
lanes instead of added up. A drill's fault, traffic, alerts and durability check all belong to its lane's
stack: nothing is shared but the machine's CPU (docs/BENCHMARKS.md measures what that costs the drills'
figures) and the checkout's git worktrees, which the release drills add and remove one at a time.

With one lane, the drills run in the calling thread, as they always did. With more, each lane is a thread:
Ctrl-C and SIGTERM reach the main thread, which interrupts every drill in progress through
`chaos.drills.safeguards.Interruption`; each rolls back, its lane stops, and the stacks are torn down before
the run returns. A lane's output is printed a drill at a time, as one block when the drill ends, so the log
reads as the one-lane log does."""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import yaml

from chaos.drills.alert_clock import DRILL_RULES, parse_duration
from chaos.drills.model import Drill
from chaos.drills.prometheus import PrometheusServer
from chaos.drills.prometheus_api import PrometheusAPI
from chaos.drills.report import junit
from chaos.drills.result import DrillResult
from chaos.drills.safeguards import Interruption
from chaos.lifecycle import ServerError
from chaos.stack.base import StackBackend
from conformance.junit import CaseOutcome

Progress = Callable[[str], None]
Prometheus = PrometheusServer | PrometheusAPI
# Starts a lane's stack and Prometheus inside the given resources (closed when the lane ends).
OpenLane = Callable[[contextlib.ExitStack, Progress], tuple[StackBackend, Prometheus | None]]
RunDrill = Callable[[Drill, StackBackend, Prometheus | None, Progress, Interruption | None], DrillResult]
ReportDrill = Callable[[DrillResult], None]

MAX_LANES = 4  # each lane is a PostgreSQL, a Redis, a fault proxy, 2 service workers and a Prometheus
# The default on a machine with 2 or more CPUs: three lanes bring the 13 local drills from 107-121 s to about
# 56 s on the 2-core machine of docs/BENCHMARKS.md, where a fourth adds CPU contention, not speed.
DEFAULT_LANES = 3
JOIN_POLL_S = 0.2  # how often the main thread wakes while the lanes run, so Ctrl-C reaches it promptly
INTERRUPTED = "interrupted (Ctrl-C or SIGTERM): the fault was rolled back"


def default_lanes(drills: int, cpus: int) -> int:
    """Lanes for a local throwaway run: one per drill up to DEFAULT_LANES, one on a single CPU."""
    return max(1, min(DEFAULT_LANES, drills)) if cpus >= 2 else 1


@functools.cache
def _alert_for_ms() -> dict[str, int]:
    """Each alert's `for:` in the drill rules, in milliseconds."""
    groups = yaml.safe_load(DRILL_RULES.read_text(encoding="utf-8"))["groups"]
    return {
        rule["alert"]: parse_duration(rule.get("for", "0s"))
        for group in groups
        for rule in group["rules"]
        if "alert" in rule
    }


def _lane_order(drill: Drill) -> tuple[int, int]:
    """Where a drill goes in the lanes' queue: a drill that runs alone first (once every lane is up, before any
    report is being drawn beside it); then the release drills (each deploys whole releases — worktrees,
    migrations, service restarts — the longest); then the longest `for:` among the alerts a drill awaits first
    (the fixed part of its time under fault, chaos.drills.alert_clock), so the short drills fill the lanes
    behind the long ones; catalog order otherwise."""
    rank = 0 if drill.runs_alone else 1 if drill.scenario == "release" else 2
    return rank, -max((_alert_for_ms().get(name, 0) for name in drill.expected_alerts), default=0)


class DrillQueue:
    """The drills still to run, shared by the lanes. Each drill is taken by whichever lane is free, in the
    order of `_lane_order` (with one lane, the catalog's). A drill that `runs_alone` starts only when no other
    lane is busy — starting its stack or running a drill — and nothing starts beside it. Each drill keeps its
    catalog position, so the reports list them in that order whatever lane ran them."""

    def __init__(self, drills: list[Drill], lanes: int = 1) -> None:
        self._changed = threading.Condition(threading.RLock())  # try_take is also called inside take
        ordered = list(enumerate(drills))
        if lanes > 1:
            ordered.sort(key=lambda item: _lane_order(item[1]))  # stable: catalog order within a rank
        self._left = deque(ordered)
        # Lanes starting their stack or running a drill: every lane counts as starting from the outset, so a
        # drill that runs alone cannot begin before a lane's thread has even asked to start.
        self._busy = lanes
        self._running = 0  # drills running
        self._alone = False  # a drill that runs alone is running
        self._closed = False

    def start_lane(self) -> bool:
        """Before a lane starts its stack (it is busy until `lane_started`); False: nothing is left to run, and
        the lane is not busy any more."""
        with self._changed:
            if self._closed or not self._left:
                self._busy -= 1
                self._changed.notify_all()
                return False
            return True

    def lane_started(self) -> None:
        with self._changed:
            self._busy -= 1
            self._changed.notify_all()

    @property
    def over(self) -> bool:
        """Nothing is left to take, or the run is interrupted."""
        return self._closed or not self._left

    def try_take(self) -> tuple[int, Drill] | None:
        """The next drill, if it may start now (else None: see `over`). The lane calls `finished` when it ends."""
        with self._changed:
            if self.over or self._alone:
                return None
            alone = self._left[0][1].runs_alone
            if alone and self._busy > 0:
                return None
            self._running += 1
            self._busy += 1
            self._alone = alone
            self._changed.notify_all()
            return self._left.popleft()

    def take(self) -> tuple[int, Drill] | None:
        """The next drill for a started lane, waiting while one runs alone or this one must; None when none is
        left or the run is interrupted (`close`)."""
        with self._changed:
            while (taken := self.try_take()) is None and not self.over:
                self._changed.wait()
            return taken

    def finished(self) -> None:
        with self._changed:
            self._running -= 1
            self._busy -= 1
            self._alone = False
            self._changed.notify_all()

    def leave(self, busy: bool = False) -> None:
        """A started lane ends: nothing is left for it, or (`busy`) its stack could not start."""
        with self._changed:
            self._busy -= int(busy)
            self._changed.notify_all()

    def wait_until_done(self) -> None:
        """Until no drill is left or running: a lane's teardown waits for it, so it never runs beside a drill
        that runs alone."""
        with self._changed:
            while not self._closed and (self._left or self._running):
                self._changed.wait()

    def close(self) -> None:
        """The run is interrupted: no drill starts any more, and every waiting lane goes on."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def drain(self) -> list[Drill]:
        with self._changed:
            left = [drill for _, drill in self._left]
            self._left.clear()
            return left


@dataclass
class LaneRecord:
    """What one lane ran and how it ended."""

    results: list[tuple[int, DrillResult]] = field(default_factory=list)  # (catalog position, result)
    durations: dict[str, float] = field(default_factory=dict)  # wall time per drill, as run.py reports it
    unfinished: list[junit.Unfinished] = field(default_factory=list)
    could_not_run: str | None = None  # why its stack or Prometheus did not come up
    interrupted: bool = False
    base_url: str | None = None


class _LanePrinter:
    """One lane's output when lanes run side by side: its own lines tagged with the lane, each drill's lines
    held and printed as one block when the drill ends (a start line says where it runs meanwhile)."""

    def __init__(self, progress: Progress, lock: threading.Lock, label: str) -> None:
        self._progress = progress
        self._lock = lock
        self.label = label
        self._held: list[str] | None = None

    def __call__(self, line: str) -> None:
        if self._held is not None:
            self._held.append(line)
            return
        with self._lock:
            self._progress(f"[{self.label}] {line}" if line else line)

    def hold(self, drill: Drill) -> None:
        self(f"▶ {drill.name} started")
        self._held = []

    def release(self) -> None:
        held, self._held = self._held or [], None
        with self._lock:
            self._progress("\n".join(held))


def run_lane(
    queue: DrillQueue,
    open_lane: OpenLane,
    run_drill: RunDrill,
    report: ReportDrill,
    progress: Progress,
    interruption: Interruption | None = None,
    printer: _LanePrinter | None = None,
) -> LaneRecord:
    """Open a lane, run drills from `queue` on it until none
    is left (or the run is interrupted), wait for the other lanes' drills to end, tear it down. With `printer`
    (lanes side by side), each drill's lines are held and printed as one block when it ends."""
    record = LaneRecord()
    if not queue.start_lane():
        return record
    with contextlib.ExitStack() as resources:
        try:
            try:
                stack, prometheus = open_lane(resources, progress)
            except BaseException:
                queue.leave(busy=True)
                raise
            queue.lane_started()
            record.base_url = stack.api_url
            try:
                while (taken := queue.take()) is not None:
                    position, drill = taken
                    started = time.monotonic()
                    if printer is not None:
                        printer.hold(drill)
                    try:
                        result = run_drill(drill, stack, prometheus, progress, interruption)
                    except KeyboardInterrupt as interrupt:
                        queue.close()
                        record.interrupted = True
                        progress(f"interrupted ({interrupt or 'Ctrl-C'}): the drill was rolled back; stopping the run")
                        record.unfinished.append(
                            junit.Unfinished(drill, CaseOutcome.ABORTED, INTERRUPTED, time.monotonic() - started)
                        )
                        break
                    finally:
                        queue.finished()
                        if printer is not None:
                            printer.release()
                    record.durations[drill.name] = time.monotonic() - started
                    report(result)
                    record.results.append((position, result))
                record.interrupted = record.interrupted or (interruption is not None and interruption.is_set)
            finally:
                queue.leave()
            queue.wait_until_done()
        except ServerError as error:  # the stack or its Prometheus did not come up: this lane runs nothing
            record.could_not_run = str(error).strip() or type(error).__name__
            progress(f"could not run: {record.could_not_run}")
        except KeyboardInterrupt:
            queue.close()
            record.interrupted = True
            progress("interrupted: stopping")
    return record


def run_lanes(
    count: int,
    queue: DrillQueue,
    open_lane: OpenLane,
    run_drill: RunDrill,
    report: ReportDrill,
    progress: Progress,
) -> list[LaneRecord]:
    """`count` lanes over one queue; one lane runs in this thread, more run in threads of their own."""
    if count == 1:
        return [run_lane(queue, open_lane, run_drill, report, progress)]
    interruption = Interruption()
    lock = threading.Lock()
    records = [LaneRecord() for _ in range(count)]
    # A drill's reports (its timeline picture: about 0.7 s of CPU) are written in a thread of their own, so its
    # lane's next drill starts at once. Not beside a drill that runs alone: it runs first, before any report.
    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="drill-reports")
    written: list[Future[None]] = []

    def report_later(result: DrillResult) -> None:
        written.append(writer.submit(report, result))

    # Each lane says when it has ended: a Thread.join that Ctrl-C interrupts can leave the thread looking stopped
    # while it still runs (python/cpython#90882), so the main thread waits on these instead.
    ended = [threading.Event() for _ in range(count)]

    def lane(index: int) -> None:
        printer = _LanePrinter(progress, lock, f"lane {index + 1}")
        try:
            records[index] = run_lane(queue, open_lane, run_drill, report_later, printer, interruption, printer=printer)
        except Exception as error:  # a broken lane must not leave the others' run without its record
            records[index] = LaneRecord(could_not_run=f"lane {index + 1} failed: {type(error).__name__}: {error}")
            printer(f"lane failed: {type(error).__name__}: {error}")
        finally:
            ended[index].set()

    for index in range(count):
        threading.Thread(target=lane, args=(index,), name=f"drill-lane-{index + 1}").start()
    for lane_ended in ended:
        # The lanes are rolling back after an interruption: wait for every one, however often Ctrl-C comes.
        while not lane_ended.is_set():
            try:
                lane_ended.wait(JOIN_POLL_S)
            except KeyboardInterrupt as interrupt:
                first = not interruption.is_set
                interruption.interrupt(str(interrupt) or "Ctrl-C")
                queue.close()
                with lock:
                    progress(
                        "interrupted: every lane rolls its drill back and stops"
                        if first
                        else "still rolling back: waiting for the lanes to finish (their faults are leased)"
                    )
    writer.shutdown(wait=True)
    for future in written:
        future.result()  # a report that could not be written fails the run, as it would with one lane
    return records
