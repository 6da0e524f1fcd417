"""CPU per request by process (conformance/perf/cpu_accounting.py): real processes burning real CPU are charged
to the right group, and the per-request figures are the pooled CPU over the pooled requests."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from conformance.perf import cpu_accounting
from conformance.perf.paired import Round
from conformance.perf.runner import QueryStats

_BURN_S = 0.6
_BUSY_CHILD = f"import time\nend = time.process_time() + {_BURN_S}\nwhile time.process_time() < end: pass\n"


def _burn(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_a_child_process_and_this_one_are_charged_to_their_groups() -> None:
    before = cpu_accounting.snapshot()
    child = subprocess.Popen([sys.executable, "-c", _BUSY_CHILD])
    try:
        _burn(_BURN_S)
        # Charged while it is alive: a process that ends before the second snapshot is only "other".
        middle = cpu_accounting.snapshot()
        while middle is not None and middle.processes.get(child.pid, ("", 0.0))[1] < _BURN_S * 0.8:
            assert child.poll() is None, "the child ended before it was seen burning"
            time.sleep(0.02)
            middle = cpu_accounting.snapshot()
    finally:
        child.wait(timeout=30)
    found = cpu_accounting.spent(before, middle)
    assert found is not None, "this machine has /proc: the figures must be there"
    assert found["service"] >= _BURN_S * 0.8, found  # a child that is neither PostgreSQL nor Redis
    assert found["harness"] >= _BURN_S * 0.8, found  # this process
    assert set(found) == set(cpu_accounting.GROUPS)  # servers a session fixture runs may tick: not asserted


def test_a_child_that_ends_within_the_round_counts_for_the_harness() -> None:
    before = cpu_accounting.snapshot()
    subprocess.run([sys.executable, "-c", _BUSY_CHILD], check=True, timeout=30)  # wrk runs like this
    found = cpu_accounting.spent(before, cpu_accounting.snapshot())
    assert found is not None
    assert found["harness"] >= _BURN_S * 0.8, found


def _round(index: int, side: str, requests: int, cpu_s: dict[str, float] | None) -> Round:
    stats = {"q": QueryStats(latencies_ms=[1.0] * requests)}
    return Round(index, index // 2, side, float(index), 1.0, stats, cpu_s)  # type: ignore[arg-type]


def test_per_request_figures_pool_each_sides_rounds() -> None:
    groups = dict.fromkeys(cpu_accounting.GROUPS, 0.0)
    rounds = [
        _round(0, "service", 1000, {**groups, "service": 1.0, "PostgreSQL": 2.0}),
        _round(1, "raw", 2000, {**groups, "harness": 0.5, "PostgreSQL": 4.0}),
        _round(2, "service", 1000, {**groups, "service": 1.4, "PostgreSQL": 2.2}),
        _round(3, "raw", 500, None),  # not accounted: neither its requests nor its CPU count
    ]
    found = cpu_accounting.by_side(rounds)
    assert list(found) == ["service", "raw"]
    assert found["service"]["service"] == pytest.approx(1200.0)  # 2.4 s over 2,000 requests
    assert found["service"]["PostgreSQL"] == pytest.approx(2100.0)
    assert found["service"]["all"] == pytest.approx(3300.0)
    assert found["raw"]["harness"] == pytest.approx(250.0)
    assert found["raw"]["PostgreSQL"] == pytest.approx(2000.0)
    lines = cpu_accounting.render_cpu(found)
    assert lines[1].split() == ["side", *cpu_accounting.GROUPS, "all"]
    assert lines[3].split() == ["service", "1,200", "2,100", "0", "0", "0", "3,300"]


def test_nothing_accounted_renders_nothing() -> None:
    assert cpu_accounting.by_side([_round(0, "service", 10, None)]) == {}
    assert cpu_accounting.render_cpu({}) == []


def test_the_load_generator_counts_as_the_harness_and_the_servers_as_themselves() -> None:
    own = 1000
    assert cpu_accounting._group_of(own, "python3", own) == "harness"
    assert cpu_accounting._group_of(2000, "wrk", own) == "harness"  # bench_pipeline.py's load generator
    assert cpu_accounting._group_of(2001, "postgres", own) == "PostgreSQL"
    assert cpu_accounting._group_of(2002, "redis-server", own) == "Redis"
    assert cpu_accounting._group_of(2003, "python", own) == "service"
