"""The no-lost-writes check after a drill (RB-DATA-DURABLE): every event the service acknowledged is stored
exactly once, and every batch it did not acknowledge was stored whole or not at all."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import asyncpg


@dataclass
class Durability:
    acknowledged: int
    missing: int
    duplicated: int
    partial_batches: int
    unacknowledged_batches: int

    @property
    def ok(self) -> bool:
        return self.missing == 0 and self.duplicated == 0 and self.partial_batches == 0


async def check_durability(
    database_url: str, source: str, acknowledged: list[str], unacknowledged: list[list[str]]
) -> Durability:
    """Count, straight from PostgreSQL, what happened to the drill traffic's events (all from `source`)."""
    connection = await asyncpg.connect(database_url, timeout=10)
    try:
        rows = await connection.fetch("SELECT id::text AS id FROM events WHERE source = $1", source)
    finally:
        await connection.close()
    stored = Counter(row["id"] for row in rows)
    missing = sum(1 for event_id in acknowledged if stored[event_id] == 0)
    duplicated = sum(count - 1 for count in stored.values() if count > 1)
    partial = sum(1 for batch in unacknowledged if 0 < sum(1 for i in batch if stored[i]) < len(batch))
    return Durability(len(acknowledged), missing, duplicated, partial, len(unacknowledged))
