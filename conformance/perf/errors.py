"""How the query gate ends when it cannot give a verdict, and the exit statuses of every outcome."""

from __future__ import annotations

EXIT_PASS, EXIT_GATE_FAILED, EXIT_USAGE, EXIT_TARGET = 0, 1, 2, 3


class UsageError(Exception):
    """Exit 2 with this message."""


class TargetError(Exception):
    """Exit 3 with this message: the target could not be benchmarked."""
