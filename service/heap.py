"""The garbage collector's work per request, kept small once a worker is serving.

CPython's cyclic collector runs every `threshold0` net allocations and walks every object of the generations
it collects. A worker's heap is mostly what the imports and the startup made (the framework, pydantic models,
the OpenAPI document): tens of thousands of long-lived objects that each older-generation collection walks
again, while the objects a request makes die with it. Measured in-process on `GET /api/v1/events/{id}`, the
collector took 27–43 µs of every request at the default threshold (700); with the imported heap frozen and a
threshold of 5,000 it takes about 2 µs (docs/BENCHMARKS.md).

The supervisor (service/supervisor.py) does this once, after it imported the application and before it forks
the workers: they inherit the frozen heap and the thresholds, and as the collector no longer writes to the
frozen objects' headers, their pages stay shared with the supervisor instead of being copied into each worker.

Bound: a frozen object is never collected (it is still freed by reference counting), so what is frozen is
only what exists when the workers fork; cyclic garbage made while serving waits for at most
`YOUNG_THRESHOLD` net allocations, as before it waited for 700.
"""

from __future__ import annotations

import gc
from typing import Final

YOUNG_THRESHOLD: Final = 5_000
OLDER_THRESHOLDS: Final = (10, 10)  # CPython's defaults for generations 1 and 2


def settle_after_startup() -> None:
    """Collect what the import left, move everything still alive out of the collector's sight, and let the
    young generation grow to `YOUNG_THRESHOLD` before a collection. Called once, before the workers fork."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *OLDER_THRESHOLDS)
