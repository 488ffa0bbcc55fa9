"""Compliance gate: do-not-call entries, registry imports and their numbers, contact history, audit.

Revision ID: 0002_compliance
Revises: 0001_core
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_compliance"
down_revision: str | Sequence[str] | None = "0001_core"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "dnc_entry",
        sa.Column("id", _BIG_ID, nullable=False),
        sa.Column("number", sa.String(length=16), nullable=False),
        sa.Column("campaign_id", sa.String(length=64), nullable=True),
        sa.Column("source", sa.String(length=120), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("removed_by", sa.String(length=120), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dnc_entry")),
    )
    op.create_index("ix_dnc_entry_number", "dnc_entry", ["number"])

    op.create_table(
        "dnc_registry_import",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("registry", sa.String(length=32), nullable=False),
        sa.Column("screened_on", sa.Date(), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("file_name", sa.String(length=400), nullable=False),
        sa.Column("numbers", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dnc_registry_import")),
    )
    op.create_index("ix_dnc_registry_import_registry", "dnc_registry_import", ["registry", "id"])

    op.create_table(
        "dnc_registry_number",
        sa.Column("import_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["import_id"],
            ["dnc_registry_import.id"],
            name=op.f("fk_dnc_registry_number_import_id_dnc_registry_import"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("import_id", "number", name=op.f("pk_dnc_registry_number")),
    )
    op.create_index("ix_dnc_registry_number_number", "dnc_registry_number", ["number"])

    op.create_table(
        "contact_event",
        sa.Column("id", _BIG_ID, nullable=False),
        sa.Column("number_key", sa.String(length=64), nullable=False),
        sa.Column("lead_id", sa.String(length=64), nullable=False),
        sa.Column("campaign_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contact_event")),
    )
    op.create_index("ix_contact_event_number_at", "contact_event", ["number_key", "at"])
    op.create_index("ix_contact_event_lead_at", "contact_event", ["lead_id", "at"])

    op.create_table(
        "compliance_audit",
        sa.Column("id", _BIG_ID, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decision", sa.String(length=8), nullable=False),
        sa.Column("rule", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("number_masked", sa.String(length=24), nullable=False),
        sa.Column("number_key", sa.String(length=64), nullable=False),
        sa.Column("lead_id", sa.String(length=64), nullable=False),
        sa.Column("campaign_id", sa.String(length=64), nullable=False),
        sa.Column("retry_after", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_compliance_audit")),
    )
    op.create_index("ix_compliance_audit_number_at", "compliance_audit", ["number_key", "at"])
    op.create_index("ix_compliance_audit_campaign_at", "compliance_audit", ["campaign_id", "at"])

    op.create_table(
        "compliance_setting",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_compliance_setting")),
    )


def downgrade() -> None:
    op.drop_table("compliance_setting")
    op.drop_index("ix_compliance_audit_campaign_at", table_name="compliance_audit")
    op.drop_index("ix_compliance_audit_number_at", table_name="compliance_audit")
    op.drop_table("compliance_audit")
    op.drop_index("ix_contact_event_lead_at", table_name="contact_event")
    op.drop_index("ix_contact_event_number_at", table_name="contact_event")
    op.drop_table("contact_event")
    op.drop_index("ix_dnc_registry_number_number", table_name="dnc_registry_number")
    op.drop_table("dnc_registry_number")
    op.drop_index("ix_dnc_registry_import_registry", table_name="dnc_registry_import")
    op.drop_table("dnc_registry_import")
    op.drop_index("ix_dnc_entry_number", table_name="dnc_entry")
    op.drop_table("dnc_entry")
