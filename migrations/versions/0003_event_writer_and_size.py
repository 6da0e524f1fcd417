"""Each event records the principal that wrote it and the size of its attributes.

- `written_by`: the principal (`api-key`, `jwt:<sub>`) whose request stored the event (RB-DATA-ID-CONFLICT:
  "nothing records who wrote an event"). Events stored before this revision have NULL.
- `attributes_size`: the bytes of the event's attributes as compact JSON, counted when it is stored, so a
  list page can end at its byte budget (RB-SEC-RESPONSE-BOUND) without serialising rows to measure them.
  NULL for events stored before this revision; the list query measures those on the fly.

Both columns are nullable and without a default: adding them rewrites no row, and the previous release, which
does not know them, reads and writes this schema unchanged (it stores NULL in both).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Rollback declaration (RB-ROLLBACK-SCHEMA): the downgrade drops both columns. Every event and its content
# survive, but who wrote each event since the upgrade is lost, so it is not declared data-safe. It is not
# needed to roll the application back: the previous release runs on this schema as it is.
downgrade_reversible: bool = True
downgrade_data_safe: bool = False
# Compatibility declaration (RB-HEALTH-SCHEMA): only adds two nullable columns without defaults; the release
# at 0002 reads and writes `events` unchanged (storing NULL in both).
expand_only: bool = True


def upgrade() -> None:
    op.add_column("events", sa.Column("written_by", sa.Text(), nullable=True))
    op.add_column("events", sa.Column("attributes_size", sa.Integer(), nullable=True))
    op.create_check_constraint("ck_events_attributes_size", "events", "attributes_size >= 0")


def downgrade() -> None:
    op.drop_constraint("ck_events_attributes_size", "events", type_="check")
    op.drop_column("events", "attributes_size")
    op.drop_column("events", "written_by")
