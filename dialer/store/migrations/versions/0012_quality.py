"""Scripts, evaluation grids, scores and complaints.

Revision ID: 0012_quality
Revises: 0011_recordings
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0012_quality"
down_revision: str | Sequence[str] | None = "0011_recordings"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
