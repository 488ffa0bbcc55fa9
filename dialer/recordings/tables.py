"""The recordings' own tables: deletions by the retention job, and the teams supervisors see.

The file of a call is on its attempt row (``attempts.recording_file``, a name
relative to ``[recordings] dir``, and ``recording_seconds``).  Revision
``0011_recordings`` creates these tables and that column.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from dialer.store.base import Base, UtcDateTime
from dialer.store.models import BigId

RECORDING_TABLES = frozenset({"recording_deletions", "user_teams"})


class RecordingDeletion(Base):
    """One recording file deleted, why and when (kept after the file is gone)."""

    __tablename__ = "recording_deletions"
    __table_args__ = (Index("ix_recording_deletions_deleted", "deleted_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    attempt_id: Mapped[str] = mapped_column(String(36), index=True)
    campaign_id: Mapped[int] = mapped_column(Integer)
    agent_id: Mapped[str | None] = mapped_column(String(64))
    file: Mapped[str] = mapped_column(String(500))
    seconds: Mapped[float | None] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(String(40))  # retention / missing
    retention_days: Mapped[int] = mapped_column(Integer)
    deleted_at: Mapped[datetime] = mapped_column(UtcDateTime)


class UserTeam(Base):
    """A user's team: a supervisor with a team sees only the recordings of that team's agents."""

    __tablename__ = "user_teams"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    team: Mapped[str] = mapped_column(String(64), index=True)
