"""Callbacks and follow-up tasks with their service levels.

Revision ID: 0008_followup
Revises: 0007_calendar
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0008_followup"
down_revision: str | Sequence[str] | None = "0007_calendar"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
