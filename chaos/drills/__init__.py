"""Game-day drills: the runbook performed against a real stack, measured, and written up."""

from __future__ import annotations


def drill_names() -> list[str]:
    """Names in the drill catalog (the conformance registry checks its references against these)."""
    from chaos.drills.catalog import DRILLS

    return [drill.name for drill in DRILLS]
