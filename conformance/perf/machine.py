"""The one-line description of the machine that every benchmark report starts with."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def machine_description() -> str:
    """One line: cores, CPU model, Python, PostgreSQL."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores ({model}), Python {sys.version.split()[0]}"
