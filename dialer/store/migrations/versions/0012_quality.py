"""Scripts, evaluation grids, scores and complaints.

Revision ID: 0012_quality
Revises: 0011_recordings
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_quality"
down_revision: str | Sequence[str] | None = "0011_recordings"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
When = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "script_versions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("product", sa.String(200), nullable=True),
        sa.Column("sections", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_script_versions"),
        sa.UniqueConstraint("campaign_id", "version", name="uq_script_versions_campaign_version"),
    )
    op.create_table(
        "call_scripts",
        sa.Column("attempt_id", sa.String(36), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("shown_at", When, nullable=False),
        sa.PrimaryKeyConstraint("attempt_id", name="pk_call_scripts"),
    )
    op.create_table(
        "grid_versions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_grid_versions"),
        sa.UniqueConstraint("name", "version", name="uq_grid_versions_name_version"),
    )
    op.create_table(
        "evaluations",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("attempt_id", sa.String(36), nullable=False),
        sa.Column("agent_id", sa.String(64), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("grid", sa.String(64), nullable=False),
        sa.Column("grid_version", sa.Integer(), nullable=False),
        sa.Column("evaluator", sa.String(64), nullable=False),
        sa.Column("answers", sa.JSON(), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("call_at", When, nullable=True),
        sa.Column("created_at", When, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_evaluations"),
    )
    op.create_index("ix_evaluations_attempt_id", "evaluations", ["attempt_id"])
    op.create_index("ix_evaluations_agent_created", "evaluations", ["agent_id", "created_at"])
    op.create_table(
        "agent_state_intervals",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("agent_id", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("campaigns", sa.String(400), nullable=False),
        sa.Column("started_at", When, nullable=False),
        sa.Column("ended_at", When, nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_agent_state_intervals"),
    )
    op.create_index(
        "ix_agent_state_intervals_agent_started", "agent_state_intervals", ["agent_id", "started_at"]
    )
    op.create_table(
        "complaints",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("complainant", sa.String(200), nullable=False),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("contact", sa.String(320), nullable=False),
        sa.Column("attempt_id", sa.String(36), nullable=True),
        sa.Column("agent_id", sa.String(64), nullable=True),
        sa.Column("campaign_id", sa.Integer(), nullable=True),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("what", sa.Text(), nullable=False),
        sa.Column("recorded_by", sa.String(64), nullable=False),
        sa.Column("status", sa.String(14), nullable=False),
        sa.Column("assigned_to", sa.String(64), nullable=True),
        sa.Column("findings", sa.Text(), nullable=True),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("notification_id", sa.Integer(), nullable=True),
        sa.Column("created_at", When, nullable=False),
        sa.Column("due_at", When, nullable=False),
        sa.Column("answered_at", When, nullable=True),
        sa.Column("closed_at", When, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_complaints"),
    )
    op.create_index("ix_complaints_status_due", "complaints", ["status", "due_at"])


def downgrade() -> None:
    op.drop_index("ix_complaints_status_due", table_name="complaints")
    op.drop_table("complaints")
    op.drop_index("ix_agent_state_intervals_agent_started", table_name="agent_state_intervals")
    op.drop_table("agent_state_intervals")
    op.drop_index("ix_evaluations_agent_created", table_name="evaluations")
    op.drop_index("ix_evaluations_attempt_id", table_name="evaluations")
    op.drop_table("evaluations")
    op.drop_table("grid_versions")
    op.drop_table("call_scripts")
    op.drop_table("script_versions")
