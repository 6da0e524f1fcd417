"""pytest-benchmark measurements of the service's hot paths (RB-PERF-MICRO). They are slow and their figures
depend on the machine, so a plain `pytest` run skips this directory; name it to run them:

    .venv/bin/pytest tests/perf/benchmarks --benchmark-storage=file://tests/perf/benchmarks/baseline \\
        --benchmark-compare=0001 --benchmark-compare-fail=median:50%

(docs/QUALITY_GATES.perf.md: how the baseline is saved and compared). They use the same PostgreSQL and Redis
as the integration tests (tests/conftest.py): real servers, a fresh database.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import uvloop

BENCHMARKS = Path(__file__).resolve().parent


def _requested(config: pytest.Config) -> bool:
    """Was this directory (or a file in it) named on the command line?"""
    for argument in config.args:
        path = Path(str(argument).split("::", 1)[0]).resolve()
        if path == BENCHMARKS or BENCHMARKS in path.parents:
            return True
    return False


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if collection_path.name.startswith("test_") and not _requested(config):
        return True
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    ours = [item for item in items if BENCHMARKS in Path(str(item.path)).parents]
    if ours and not config.pluginmanager.hasplugin("benchmark"):
        raise pytest.UsageError("tests/perf/benchmarks needs pytest-benchmark (pip install pytest-benchmark)")


@pytest.fixture(scope="module")
def run() -> Iterator[Callable[..., object]]:
    """Runs a coroutine to completion on this module's own uvloop (benchmark functions are synchronous)."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        yield runner.run
