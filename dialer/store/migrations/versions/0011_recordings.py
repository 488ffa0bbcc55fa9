"""Recordings: per-campaign policy, files and their retention.

Revision ID: 0011_recordings
Revises: 0010_fencing
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0011_recordings"
down_revision: str | Sequence[str] | None = "0010_fencing"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
