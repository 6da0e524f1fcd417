"""Create the events table and the indexes the list and stats queries use.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Rollback declaration (RB-ROLLBACK-SCHEMA): downgrading drops the table and every event in it.
downgrade_reversible: bool = True
downgrade_data_safe: bool = False
# Compatibility declaration (RB-HEALTH-SCHEMA): the first revision: there is no earlier release to serve.
expand_only: bool = False


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("attributes", postgresql.JSONB(), nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.CheckConstraint("char_length(source) BETWEEN 1 AND 128", name="ck_events_source_length"),
        sa.CheckConstraint("char_length(type) BETWEEN 1 AND 128", name="ck_events_type_length"),
    )
    op.create_index("ix_events_occurred_at_id", "events", ["occurred_at", "id"])
    op.create_index("ix_events_source_occurred_at_id", "events", ["source", "occurred_at", "id"])
    op.create_index("ix_events_type_occurred_at_id", "events", ["type", "occurred_at", "id"])


def downgrade() -> None:
    op.drop_table("events")
