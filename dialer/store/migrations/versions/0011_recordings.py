"""Recordings: per-campaign policy, files and their retention.

The attempt's recording length, the log of deleted recordings and the users' teams
(dialer.recordings.tables).

Revision ID: 0011_recordings
Revises: 0010_fencing
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_recordings"
down_revision: str | Sequence[str] | None = "0010_fencing"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("attempts") as batch:
        batch.add_column(sa.Column("recording_seconds", sa.Float(), nullable=True))
    op.create_table(
        "recording_deletions",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("attempt_id", sa.String(36), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.String(64), nullable=True),
        sa.Column("file", sa.String(500), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=True),
        sa.Column("reason", sa.String(40), nullable=False),
        sa.Column("retention_days", sa.Integer(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recording_deletions")),
    )
    op.create_index("ix_recording_deletions_deleted", "recording_deletions", ["deleted_at"])
    op.create_index(
        op.f("ix_recording_deletions_attempt_id"), "recording_deletions", ["attempt_id"], unique=False
    )
    op.create_table(
        "user_teams",
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("team", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_user_teams_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_user_teams")),
    )
    op.create_index(op.f("ix_user_teams_team"), "user_teams", ["team"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_user_teams_team"), table_name="user_teams")
    op.drop_table("user_teams")
    op.drop_index(op.f("ix_recording_deletions_attempt_id"), table_name="recording_deletions")
    op.drop_index("ix_recording_deletions_deleted", table_name="recording_deletions")
    op.drop_table("recording_deletions")
    with op.batch_alter_table("attempts") as batch:
        batch.drop_column("recording_seconds")
