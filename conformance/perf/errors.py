"""How the query gate ends when it cannot give a verdict (its exit statuses: conformance.verdicts.Exit)."""

from __future__ import annotations


class UsageError(Exception):
    """Exit 2 with this message."""


class TargetError(Exception):
    """Exit 3 with this message: the target could not be benchmarked."""
