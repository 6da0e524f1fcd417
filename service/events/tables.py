"""The event tables as SQLAlchemy Core metadata: what alembic's migrations must produce.

The schema itself is created and changed only by alembic (`migrations/`); these definitions describe it for
alembic (`migrations/env.py`), and `tests/service/test_migrations.py` checks that the two agree. Request
code runs plain SQL (service/events/repository.py) and does not use them.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, CheckConstraint, Column, DateTime, Index, Integer, MetaData, Table, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB, UUID

metadata = MetaData()

events = Table(
    "events",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("source", Text, nullable=False),
    Column("type", Text, nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("attributes", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("written_by", Text, nullable=True),  # the principal that stored it (NULL before revision 0003)
    Column("attributes_size", Integer, nullable=True),  # bytes of compact JSON (NULL before revision 0003)
    CheckConstraint("char_length(source) BETWEEN 1 AND 128", name="ck_events_source_length"),
    CheckConstraint("attributes_size >= 0", name="ck_events_attributes_size"),
    CheckConstraint("char_length(type) BETWEEN 1 AND 128", name="ck_events_type_length"),
    # Each list/stats query filters by at most one of source/type and a time range, newest first.
    Index("ix_events_occurred_at_id", "occurred_at", "id"),
    Index("ix_events_source_occurred_at_id", "source", "occurred_at", "id"),
    Index("ix_events_type_occurred_at_id", "type", "occurred_at", "id"),
)


def _rollup(width: str) -> Table:
    """Events per (bucket start, source, type) at one bucket width, kept exact by triggers on `events`
    (migrations/versions/0002_event_count_rollups.py), so counts over long ranges read a few rows per bucket
    instead of every event."""
    return Table(
        f"event_counts_{width}",
        metadata,
        Column("bucket_start", DateTime(timezone=True), primary_key=True),
        Column("source", Text, primary_key=True),
        Column("type", Text, primary_key=True),
        Column("count", BigInteger, nullable=False),
        Index(f"ix_event_counts_{width}_source_bucket_start", "source", "bucket_start"),
        Index(f"ix_event_counts_{width}_type_bucket_start", "type", "bucket_start"),
        postgresql_with={"fillfactor": 80},  # room for the counts' HOT updates
    )


ROLLUP_WIDTHS = ("minute", "hour", "day")
event_counts = {width: _rollup(width) for width in ROLLUP_WIDTHS}
