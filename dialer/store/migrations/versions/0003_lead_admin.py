"""Lead administration: consent date and source on leads; lists that can be disabled and that show they live.

- ``leads.consent_given_at`` / ``leads.consent_source``: when and how the person agreed to be
  called, carried to the compliance gate's consent record (FR, DE, PL require it).
- ``lead_lists.enabled``: a disabled list's leads are not dialed (``dialer lists disable``).
- ``lead_lists.heartbeat_at`` / ``lead_lists.import_owner``: an import touches the heartbeat with
  every batch and names its process (host:pid), so an import that was killed midway is told from
  one still running and its list is repaired.

Revision ID: 0003_lead_admin
Revises: 0002_compliance
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_lead_admin"
down_revision: str | Sequence[str] | None = "0002_compliance"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.add_column(sa.Column("consent_given_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("consent_source", sa.String(length=200), nullable=True))
    with op.batch_alter_table("lead_lists", schema=None) as batch_op:
        batch_op.add_column(sa.Column("enabled", sa.Boolean(), nullable=False, server_default=sa.true()))
        batch_op.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("import_owner", sa.String(length=120), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("lead_lists", schema=None) as batch_op:
        batch_op.drop_column("import_owner")
        batch_op.drop_column("heartbeat_at")
        batch_op.drop_column("enabled")
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.drop_column("consent_source")
        batch_op.drop_column("consent_given_at")
