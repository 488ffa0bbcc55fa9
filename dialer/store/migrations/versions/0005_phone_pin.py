"""Agents sign in from the phone: a PIN hash beside the password hash.

Revision ID: 0005_phone_pin
Revises: 0004_users_auth
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_phone_pin"
down_revision: str | Sequence[str] | None = "0004_users_auth"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("user_credentials") as batch:
        batch.add_column(sa.Column("pin_hash", sa.String(200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("user_credentials") as batch:
        batch.drop_column("pin_hash")
