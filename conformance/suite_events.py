"""What the conformance suite writes into a target, and how it is marked as the suite's own.

Every event the suite stores — its own checks' and Schemathesis' generated ones — has a `source` that begins
with SOURCE_PREFIX and an `occurred_at` inside [WINDOW_START, WINDOW_END): a day in 2001, far from any live
traffic, so that the events stay out of every recent view (dashboards, the benchmark's discovery) and their
owners can find them with one prefix and one time range. The API has no delete, so they stay in the target:
`python -m conformance --help` says so. Kept free of heavy imports: Schemathesis loads it through the hooks.
"""

from __future__ import annotations

import uuid
import zlib
from datetime import UTC, datetime, timedelta

SOURCE_PREFIX = "rb-conformance-"
WINDOW_START = "2001-01-01T00:00:00Z"
WINDOW_END = "2001-01-02T00:00:00Z"
SCHEMATHESIS_SOURCE = f"{SOURCE_PREFIX}schemathesis"

# One id per process: a run's events can be told from another run's (sources carry it).
RUN_ID = uuid.uuid4().hex[:8]

_WINDOW_START = datetime(2001, 1, 1, tzinfo=UTC)
_WINDOW_SECONDS = 86_400


def check_source(purpose: str) -> str:
    """A source for the events one check writes: the prefix, what for, this run, and a unique tail."""
    return f"{SOURCE_PREFIX}{purpose}-{RUN_ID}-{uuid.uuid4().hex[:6]}"


def in_window(original: str) -> str:
    """A moment inside the window, the same for the same original value (so that a case Schemathesis sends
    again, with the same id, is the same event and an idempotent duplicate, not a conflict)."""
    offset = zlib.crc32(original.encode("utf-8", "surrogatepass")) % _WINDOW_SECONDS
    return (_WINDOW_START + timedelta(seconds=offset)).isoformat().replace("+00:00", "Z")
