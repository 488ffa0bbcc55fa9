"""Notifications (email, SMS, letters) and how each person wants to be followed up.

Revision ID: 0006_notifications
Revises: 0005_phone_pin
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_notifications"
down_revision: str | Sequence[str] | None = "0005_phone_pin"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "notifications",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("recipient", sa.String(320), nullable=False),
        sa.Column("subject", sa.String(300), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("attachments", sa.JSON(), nullable=True),
        sa.Column("ical", sa.Text(), nullable=True),
        sa.Column("reason", sa.String(40), nullable=False),
        sa.Column("ref", sa.String(80), nullable=True),
        sa.Column("campaign_id", sa.Integer(), nullable=True),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_try_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.Column("message_id", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_notifications"),
        sa.UniqueConstraint("message_id", name="uq_notifications_message_id"),
    )
    op.create_index("ix_notifications_due", "notifications", ["status", "next_try_at"])
    with op.batch_alter_table("leads") as batch:
        batch.add_column(sa.Column("preferred_channel", sa.String(8), nullable=True))
        batch.add_column(sa.Column("postcode", sa.String(20), nullable=True))
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("preferred_channel", sa.String(8), nullable=True))
        batch.add_column(sa.Column("postcode", sa.String(20), nullable=True))
        batch.add_column(sa.Column("address", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("address")
        batch.drop_column("postcode")
        batch.drop_column("preferred_channel")
    with op.batch_alter_table("leads") as batch:
        batch.drop_column("postcode")
        batch.drop_column("preferred_channel")
    op.drop_index("ix_notifications_due", table_name="notifications")
    op.drop_table("notifications")
