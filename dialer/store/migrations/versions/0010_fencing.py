"""The campaign lease's fencing token on every attempt.

Revision ID: 0010_fencing
Revises: 0009_sales
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_fencing"
down_revision: str | Sequence[str] | None = "0009_sales"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("attempts") as batch:
        batch.add_column(sa.Column("fencing_token", sa.BigInteger(), nullable=True))
    op.create_table(
        "campaign_fences",
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("token", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name="fk_campaign_fences_campaign_id_campaigns"
        ),
        sa.PrimaryKeyConstraint("campaign_id", name="pk_campaign_fences"),
    )


def downgrade() -> None:
    op.drop_table("campaign_fences")
    with op.batch_alter_table("attempts") as batch:
        batch.drop_column("fencing_token")
