"""Where the perf commands write their progress: stderr, flushed at once, so stdout keeps only the answer."""

from __future__ import annotations

import sys
from collections.abc import Callable

Progress = Callable[[str], None]


def stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
