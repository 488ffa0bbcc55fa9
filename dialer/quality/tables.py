"""The quality tables: scripts and the version each call used, grids and evaluations, agent state
intervals, complaints and team membership.  Created by the revision ``0012_quality``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from dialer.store.base import Base, UtcDateTime
from dialer.store.models import BigId


class ScriptVersion(Base):
    """One saved version of a campaign's script; the newest is the one agents see."""

    __tablename__ = "script_versions"
    __table_args__ = (UniqueConstraint("campaign_id", "version", name="uq_script_versions_campaign_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer)
    product: Mapped[str | None] = mapped_column(String(200))  # fills {product}
    sections: Mapped[dict[str, str]] = mapped_column(JSON)  # section name -> text with {placeholders}
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class CallScript(Base):
    """The script version an agent was shown for a call."""

    __tablename__ = "call_scripts"

    attempt_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    campaign_id: Mapped[int] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer)
    shown_at: Mapped[datetime] = mapped_column(UtcDateTime)


class GridVersion(Base):
    """One version of an evaluation grid, as loaded from its TOML file."""

    __tablename__ = "grid_versions"
    __table_args__ = (UniqueConstraint("name", "version", name="uq_grid_versions_name_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    digest: Mapped[str] = mapped_column(String(64))  # sha256 of the definition: a change is a new version
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Evaluation(Base):
    """A call scored against one grid version: every item's answer, who answered it, the score."""

    __tablename__ = "evaluations"
    __table_args__ = (Index("ix_evaluations_agent_created", "agent_id", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    attempt_id: Mapped[str] = mapped_column(String(36), index=True)
    agent_id: Mapped[str] = mapped_column(String(64))
    campaign_id: Mapped[int] = mapped_column(Integer)
    grid: Mapped[str] = mapped_column(String(64))
    grid_version: Mapped[int] = mapped_column(Integer)
    evaluator: Mapped[str] = mapped_column(String(64))
    # [{"item", "answer" (yes/no/na), "comment", "source" (person/system)}]
    answers: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    score: Mapped[float | None] = mapped_column(Float)  # 0..100; None when every item is N/A
    comment: Mapped[str | None] = mapped_column(Text)
    call_at: Mapped[datetime | None] = mapped_column(UtcDateTime)  # when the call was made
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class AgentStateInterval(Base):
    """A stretch of time an agent spent in one state (ready, on call, wrap-up, paused...)."""

    __tablename__ = "agent_state_intervals"
    __table_args__ = (Index("ix_agent_state_intervals_agent_started", "agent_id", "started_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    agent_id: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    campaigns: Mapped[str] = mapped_column(String(400))  # the campaign ids the agent took, comma separated
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ended_at: Mapped[datetime] = mapped_column(UtcDateTime)
    seconds: Mapped[float] = mapped_column(Float)


class Complaint(Base):
    """A complaint: who made it, about what, its handling and the answer sent back."""

    __tablename__ = "complaints"
    __table_args__ = (Index("ix_complaints_status_due", "status", "due_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    complainant: Mapped[str] = mapped_column(String(200))  # the person's name
    channel: Mapped[str] = mapped_column(String(8))  # where the answer goes: email / sms / post
    contact: Mapped[str] = mapped_column(String(320))  # address, number or postal address
    attempt_id: Mapped[str | None] = mapped_column(String(36))
    agent_id: Mapped[str | None] = mapped_column(String(64))
    campaign_id: Mapped[int | None] = mapped_column(Integer)
    customer_id: Mapped[int | None] = mapped_column(Integer)
    what: Mapped[str] = mapped_column(Text)
    recorded_by: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(14))  # open / assigned / investigating / answered / closed
    assigned_to: Mapped[str | None] = mapped_column(String(64))
    findings: Mapped[str | None] = mapped_column(Text)
    answer: Mapped[str | None] = mapped_column(Text)
    notification_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    due_at: Mapped[datetime] = mapped_column(UtcDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


QUALITY_TABLES = frozenset(
    t.__tablename__
    for t in (ScriptVersion, CallScript, GridVersion, Evaluation, AgentStateInterval, Complaint)
)
