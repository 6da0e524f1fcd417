"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
${imports if imports else ""}
revision: str = ${repr(up_revision)}
down_revision: str | None = ${repr(down_revision)}
branch_labels: str | Sequence[str] | None = ${repr(branch_labels)}
depends_on: str | Sequence[str] | None = ${repr(depends_on)}

# Rollback declaration (RB-ROLLBACK-SCHEMA): can `downgrade()` run, and does it keep every stored event?
downgrade_reversible: bool = True
downgrade_data_safe: bool = False
# Compatibility declaration (RB-HEALTH-SCHEMA): True only when the upgrade adds nothing earlier releases
# must know about (nullable columns, tables, indexes), so they keep serving this schema (and stay ready).
expand_only: bool = False


def upgrade() -> None:
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    ${downgrades if downgrades else "pass"}
