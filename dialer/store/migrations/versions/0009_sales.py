"""Sales, their confirmation and withdrawal period; the customer record's notes.

Revision ID: 0009_sales
Revises: 0008_followup
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_sales"
down_revision: str | Sequence[str] | None = "0008_followup"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "sales",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("attempt_id", sa.String(36), nullable=False),
        sa.Column("disposition_id", sa.Integer(), nullable=False),
        sa.Column("lead_id", BigId, nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.String(64), nullable=True),
        sa.Column("product", sa.String(300), nullable=False),
        sa.Column("price_cents", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("delivery_terms", sa.Text(), nullable=False),
        sa.Column("installation_terms", sa.Text(), nullable=False),
        sa.Column("contract_date", sa.Date(), nullable=False),
        sa.Column("delivery_date", sa.Date(), nullable=True),
        sa.Column("withdrawal_days", sa.Integer(), nullable=False),
        sa.Column("withdrawal_starts", sa.String(40), nullable=False),
        sa.Column("withdrawal_end", sa.Date(), nullable=True),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("withdrawal_received_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("withdrawal_channel", sa.String(12), nullable=True),
        sa.Column("withdrawal_recorded_by", sa.String(64), nullable=True),
        sa.Column("confirmation_channel", sa.String(8), nullable=False),
        sa.Column("confirmation_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["attempt_id"], ["attempts.id"], name="fk_sales_attempt_id_attempts"),
        sa.ForeignKeyConstraint(
            ["disposition_id"], ["dispositions.id"], name="fk_sales_disposition_id_dispositions"
        ),
        sa.ForeignKeyConstraint(["lead_id"], ["leads.id"], name="fk_sales_lead_id_leads"),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], name="fk_sales_customer_id_customers"),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"], name="fk_sales_campaign_id_campaigns"),
        sa.PrimaryKeyConstraint("id", name="pk_sales"),
        sa.UniqueConstraint("attempt_id", name="uq_sales_attempt_id"),
    )
    op.create_index("ix_sales_customer_id", "sales", ["customer_id"])
    op.create_index("ix_sales_status_withdrawal_end", "sales", ["status", "withdrawal_end"])
    op.create_table(
        "customer_notes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("author", sa.String(64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("attempt_id", sa.String(36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name="fk_customer_notes_customer_id_customers"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_customer_notes"),
    )
    op.create_index("ix_customer_notes_customer_id", "customer_notes", ["customer_id"])
    op.create_table(
        "customer_erasures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("erased_by", sa.String(64), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_customer_erasures"),
    )
    op.create_index("ix_customer_erasures_customer_id", "customer_erasures", ["customer_id"])
    op.create_table(
        "dnc_erased",
        sa.Column("id", BigId, nullable=False),
        sa.Column("number_key", sa.String(64), nullable=False),
        sa.Column("campaign_id", sa.String(64), nullable=True),
        sa.Column("source", sa.String(120), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_dnc_erased"),
    )
    op.create_index("ix_dnc_erased_number_key", "dnc_erased", ["number_key"])


def downgrade() -> None:
    op.drop_index("ix_dnc_erased_number_key", table_name="dnc_erased")
    op.drop_table("dnc_erased")
    op.drop_index("ix_customer_erasures_customer_id", table_name="customer_erasures")
    op.drop_table("customer_erasures")
    op.drop_index("ix_customer_notes_customer_id", table_name="customer_notes")
    op.drop_table("customer_notes")
    op.drop_index("ix_sales_status_withdrawal_end", table_name="sales")
    op.drop_index("ix_sales_customer_id", table_name="sales")
    op.drop_table("sales")
