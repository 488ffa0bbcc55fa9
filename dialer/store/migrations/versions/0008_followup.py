"""Callbacks and follow-up tasks with their service levels.

Revision ID: 0008_followup
Revises: 0007_calendar
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_followup"
down_revision: str | Sequence[str] | None = "0007_calendar"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "followup_tasks",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("lead_id", BigId, nullable=False),
        sa.Column("agent_id", sa.String(64), nullable=True),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("channel", sa.String(8), nullable=True),
        sa.Column("source", sa.String(80), nullable=False),
        sa.Column("callback_id", sa.Integer(), nullable=True),
        sa.Column("notification_id", BigId, nullable=True),
        sa.Column("attempt_id", sa.String(36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("done_by", sa.String(80), nullable=True),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("detail", sa.String(300), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_followup_tasks"),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name="fk_followup_tasks_campaign_id_campaigns"
        ),
        sa.UniqueConstraint("kind", "source", name="uq_followup_tasks_kind_source"),
    )
    op.create_index("ix_followup_tasks_status_due", "followup_tasks", ["status", "due_at"])
    op.create_index("ix_followup_tasks_lead", "followup_tasks", ["lead_id"])


def downgrade() -> None:
    op.drop_index("ix_followup_tasks_lead", table_name="followup_tasks")
    op.drop_index("ix_followup_tasks_status_due", table_name="followup_tasks")
    op.drop_table("followup_tasks")
