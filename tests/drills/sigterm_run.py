"""`python -m chaos run ARGS` in a process of its own, sent SIGTERM once its output meets a condition: what the
Ctrl-C/SIGTERM tests need (the signal reaches the run as it would from a terminal or a CI runner)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEADLINE_S = 120.0  # for the condition to be met, and again for the run to end after the signal


@dataclass
class SignalledRun:
    returncode: int
    lines: list[str]  # the output up to the signal
    text: str  # all of it


def sigterm_when(args: list[str], ready: Callable[[list[str]], bool]) -> SignalledRun:
    """Run `python -m chaos run *args`, send SIGTERM when `ready(lines so far)`, and wait for the end."""
    process = subprocess.Popen(
        [sys.executable, "-m", "chaos", "run", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + DEADLINE_S
    for line in process.stdout:
        lines.append(line)
        if ready(lines):
            process.send_signal(signal.SIGTERM)
            break
        assert time.monotonic() < deadline, "".join(lines)
    rest, _ = process.communicate(timeout=DEADLINE_S)
    return SignalledRun(process.returncode, lines, "".join(lines) + rest)
