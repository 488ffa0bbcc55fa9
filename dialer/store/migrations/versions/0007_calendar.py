"""The field salespeople's shared calendar.

Revision ID: 0007_calendar
Revises: 0006_notifications
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_calendar"
down_revision: str | Sequence[str] | None = "0006_notifications"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "salespeople",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("home_postcode", sa.String(20), nullable=False),
        sa.Column("home_lat", sa.Float(), nullable=True),
        sa.Column("home_lon", sa.Float(), nullable=True),
        sa.Column("areas", sa.JSON(), nullable=False),
        sa.Column("hours", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_salespeople"),
    )
    op.create_table(
        "calendar_settings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_calendar_settings"),
    )
    with op.batch_alter_table("appointments") as batch:
        batch.alter_column("disposition_id", existing_type=sa.Integer(), nullable=True)
        batch.add_column(sa.Column("attempt_id", sa.String(36), nullable=True))
        batch.add_column(sa.Column("postcode", sa.String(20), nullable=True))
        batch.add_column(sa.Column("booked_by", sa.String(64), nullable=True))
        batch.add_column(sa.Column("sequence", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_foreign_key("fk_appointments_attempt_id_attempts", "attempts", ["attempt_id"], ["id"])
        batch.create_index("ix_appointments_attempt_id", ["attempt_id"], unique=False)
        batch.create_index("ix_appointments_salesperson", ["salesperson", "starts_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("appointments") as batch:
        batch.drop_index("ix_appointments_salesperson")
        batch.drop_index("ix_appointments_attempt_id")
        batch.drop_constraint("fk_appointments_attempt_id_attempts", type_="foreignkey")
        batch.drop_column("updated_at")
        batch.drop_column("sequence")
        batch.drop_column("booked_by")
        batch.drop_column("postcode")
        batch.drop_column("attempt_id")
        batch.alter_column("disposition_id", existing_type=sa.Integer(), nullable=False)
    op.drop_table("calendar_settings")
    op.drop_table("salespeople")
