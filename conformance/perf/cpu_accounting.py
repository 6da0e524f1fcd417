"""CPU per request, by process, for each side of an alternating run: where a request's cost goes.

In a closed loop the mean latency is concurrency ÷ throughput, so latency alone cannot say which part of the
machine a request costs: on this 2-core machine the service, PostgreSQL, Redis and the load generator share
the cores, and a side is faster only by costing less of them. Around each round the run reads every process's
CPU time from /proc (user + system, in clock ticks) and the machine's busy time from /proc/stat, and charges
the difference to a group:

- `service`: the processes this harness started that are neither PostgreSQL nor Redis (the service's
  supervisor and workers, a baseline tree's service; the idle fault proxy);
- `PostgreSQL`, `Redis`: the servers this harness started, every backend included;
- `harness`: this process and what it ran to completion (`getrusage(RUSAGE_CHILDREN)`): the HTTP client of
  the service's rounds, the asyncpg driver of the raw rounds, wrk in `bench_pipeline.py`;
- `other`: the rest of the machine's busy time (other jobs on a shared machine: a large figure here says the
  round was disturbed), and descendants other than those that ended during the round.

Each side's rounds are pooled: µs of CPU per request = the group's CPU seconds over those rounds ÷ their
requests. Resolution: a clock tick (10 ms) per process per round, a fraction of a per cent of a round's
CPU; reading /proc costs a few milliseconds per round, charged to `harness`. Without /proc (not Linux) the
figures are absent, not guessed.
"""

from __future__ import annotations

import os
import resource
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol

GROUPS: Final = ("service", "PostgreSQL", "Redis", "harness", "other")
_PROC = Path("/proc")


class Measured(Protocol):
    """What a round offers to the accounting (conformance/perf/paired.py Round)."""

    @property
    def side(self) -> str: ...

    @property
    def cpu_s(self) -> Mapping[str, float] | None: ...

    @property
    def requests(self) -> int: ...


@dataclass(frozen=True)
class MeasuredRound:
    """A round of a run that is not an alternating query-suite run (bench_pipeline.py's wrk rounds)."""

    side: str
    requests: int
    cpu_s: Mapping[str, float] | None


@dataclass(frozen=True)
class CpuSnapshot:
    processes: dict[int, tuple[str, float]]  # pid -> (group, CPU seconds so far)
    reaped_children_s: float  # this process's children that ended and were waited for
    machine_busy_s: float


def _ticks_per_s() -> float:
    return float(os.sysconf("SC_CLK_TCK"))


def _stat(pid: str) -> tuple[str, int, float] | None:
    """(command name, parent pid, CPU ticks) of a process, or None when it is gone."""
    try:
        text = (_PROC / pid / "stat").read_text()
    except OSError:
        return None
    name = text[text.index("(") + 1 : text.rindex(")")]
    fields = text[text.rindex(")") + 2 :].split()
    return name, int(fields[1]), float(int(fields[11]) + int(fields[12]))


_LOAD_GENERATORS: Final = frozenset({"wrk"})


def _group_of(pid: int, name: str, own: int) -> str:
    if pid == own or name in _LOAD_GENERATORS:
        return "harness"
    if name.startswith("postgres"):
        return "PostgreSQL"
    if name.startswith("redis"):
        return "Redis"
    return "service"


def _machine_busy_ticks() -> float:
    with open(_PROC / "stat") as stat:
        fields = stat.readline().split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(value) for value in fields[:8])
    return float(user + nice + system + irq + softirq + steal)


def snapshot() -> CpuSnapshot | None:
    """The CPU time so far of this process and all its descendants, by group, and the machine's busy time;
    None without /proc."""
    if not (_PROC / "stat").exists():
        return None
    tick = _ticks_per_s()
    own = os.getpid()
    found: dict[int, tuple[str, int, float]] = {}
    for entry in _PROC.iterdir():
        if entry.name.isdigit() and (stat := _stat(entry.name)) is not None:
            found[int(entry.name)] = stat
    children: dict[int, list[int]] = {}
    for pid, (_, parent, _) in found.items():
        children.setdefault(parent, []).append(pid)
    processes: dict[int, tuple[str, float]] = {}
    frontier = [own]
    while frontier:
        pid = frontier.pop()
        if pid in found:
            name, _, ticks = found[pid]
            processes[pid] = (_group_of(pid, name, own), ticks / tick)
            frontier.extend(children.get(pid, ()))
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    return CpuSnapshot(processes, reaped.ru_utime + reaped.ru_stime, _machine_busy_ticks() / tick)


def spent(before: CpuSnapshot | None, after: CpuSnapshot | None) -> dict[str, float] | None:
    """CPU seconds per group between two snapshots (a process that started in between counts from zero)."""
    if before is None or after is None:
        return None
    groups = dict.fromkeys(GROUPS, 0.0)
    for pid, (group, seconds) in after.processes.items():
        earlier = before.processes.get(pid)
        groups[group] += seconds - (earlier[1] if earlier is not None else 0.0)
    groups["harness"] += after.reaped_children_s - before.reaped_children_s
    tracked = sum(groups.values())
    groups["other"] = max(0.0, after.machine_busy_s - before.machine_busy_s - tracked)
    return groups


def per_request_us(rounds: Iterable[Measured], side: str) -> dict[str, float] | None:
    """µs of CPU per request per group over `side`'s rounds, and `all`; None when none was accounted."""
    totals = dict.fromkeys(GROUPS, 0.0)
    requests = 0
    for measured in rounds:
        if measured.side != side or measured.cpu_s is None:
            continue
        requests += measured.requests
        for group, seconds in measured.cpu_s.items():
            totals[group] = totals.get(group, 0.0) + seconds
    if requests == 0:
        return None
    found = {group: round(seconds / requests * 1e6, 1) for group, seconds in totals.items()}
    found["all"] = round(sum(totals.values()) / requests * 1e6, 1)
    return found


def by_side(rounds: Sequence[Measured]) -> dict[str, dict[str, float]]:
    """`per_request_us` for every side that ran, in the order they first ran."""
    sides = list(dict.fromkeys(measured.side for measured in rounds))
    return {side: found for side in sides if (found := per_request_us(rounds, side)) is not None}


def render_cpu(found: Mapping[str, Mapping[str, float]]) -> list[str]:
    """The table of `by_side`: one line per side, µs of CPU per request per group."""
    if not found:
        return []
    columns = [*GROUPS, "all"]
    header = f"{'side':10}" + "".join(f"{column:>12}" for column in columns)
    lines = [
        "CPU per request by process (µs, from /proc, each side's rounds pooled; docs/PERFORMANCE.md):",
        header,
        "-" * len(header),
    ]
    for side, groups in found.items():
        lines.append(f"{side:10}" + "".join(f"{groups.get(column, 0.0):12,.0f}" for column in columns))
    return lines
