"""Sales, their confirmation and withdrawal period; the customer record's notes.

Revision ID: 0009_sales
Revises: 0008_followup
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0009_sales"
down_revision: str | Sequence[str] | None = "0008_followup"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
