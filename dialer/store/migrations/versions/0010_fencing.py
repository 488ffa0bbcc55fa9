"""The campaign lease's fencing token on every attempt.

Revision ID: 0010_fencing
Revises: 0009_sales
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0010_fencing"
down_revision: str | Sequence[str] | None = "0009_sales"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
