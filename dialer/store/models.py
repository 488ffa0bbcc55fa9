"""The dialer's core tables: campaigns, leads, attempts, dispositions and the customer record.

Every table hangs from :class:`dialer.store.base.Base`.  Times are stored in UTC
and always come back timezone-aware (:class:`UtcDateTime`), on SQLite as on
PostgreSQL.  The schema is created by the Alembic revision ``0001_core``; a test
checks that the migration and these models never drift apart.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column

from dialer.store.base import Base, UtcDateTime

# Integer on SQLite so the primary key is the rowid alias (autoincrement), 64 bits elsewhere.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


class User(Base):
    """A person who uses the dialer: an agent on a softphone, a supervisor or an admin."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # login, also the agent id
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))  # agent / supervisor / admin
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    token_hash: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class Campaign(Base):
    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    status: Mapped[str] = mapped_column(String(16))
    jurisdiction: Mapped[str] = mapped_column(String(24))
    pbx: Mapped[str] = mapped_column(String(64))
    settings: Mapped[dict[str, Any]] = mapped_column(JSON)  # CampaignSettings.to_dict()
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class LeadList(Base):
    """One imported file."""

    __tablename__ = "lead_lists"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    source_file: Mapped[str] = mapped_column(String(1000))
    default_country: Mapped[str] = mapped_column(String(2))
    status: Mapped[str] = mapped_column(String(16))  # importing / complete / failed / interrupted
    imported: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # False: the list's leads are not dialed (`dialer lists disable`).
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    # Touched by the import with every batch: an `importing` list whose heartbeat stopped was killed.
    heartbeat_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    import_owner: Mapped[str | None] = mapped_column(String(120))  # host:pid of the importing process


class Lead(Base):
    __tablename__ = "leads"
    __table_args__ = (
        UniqueConstraint("campaign_id", "phone", name="uq_leads_campaign_phone"),
        # The hopper's query.  Leads carry no other index: imports write millions of
        # rows and every index costs on each one (numbers are looked up in attempts
        # and customers, which have their own).
        Index("ix_leads_hopper", "campaign_id", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    lead_list_id: Mapped[int] = mapped_column(ForeignKey("lead_lists.id"))
    phone: Mapped[str] = mapped_column(String(20))  # E.164
    first_name: Mapped[str | None] = mapped_column(String(200))
    last_name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    external_id: Mapped[str | None] = mapped_column(String(100))
    # Candidate IANA zones, comma separated: the calling window must hold in all of them.
    timezones: Mapped[str] = mapped_column(String(400))
    timezone_source: Mapped[str] = mapped_column(String(8))  # number / column
    consent: Mapped[bool | None] = mapped_column(Boolean)
    consent_given_at: Mapped[datetime | None] = mapped_column(UtcDateTime)  # when the person agreed
    consent_source: Mapped[str | None] = mapped_column(String(200))  # how: web form, contract, ...
    priority: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16))
    attempt_count: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_result: Mapped[str | None] = mapped_column(String(20))
    claimed_by: Mapped[str | None] = mapped_column(String(64))  # node holding the lead before dialing
    claimed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    current_attempt_id: Mapped[str | None] = mapped_column(String(36))
    extra: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # unmapped columns of the imported row
    # How the person wants to be followed up: phone / email / sms (None: phone).
    preferred_channel: Mapped[str | None] = mapped_column(String(8))
    postcode: Mapped[str | None] = mapped_column(String(20))  # where the field salespeople go
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class Callback(Base):
    __tablename__ = "callbacks"
    __table_args__ = (Index("ix_callbacks_due", "campaign_id", "status", "due_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id"), index=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    due_at: Mapped[datetime] = mapped_column(UtcDateTime)
    agent_id: Mapped[str | None] = mapped_column(String(64))  # set: only this agent takes the call
    status: Mapped[str] = mapped_column(String(12))  # pending / dialed / cancelled
    created_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class Attempt(Base):
    """One dial.  The row exists before the Originate is sent; its id is the PBX ChannelId."""

    __tablename__ = "attempts"
    __table_args__ = (
        Index("ix_attempts_campaign_ended", "campaign_id", "ended_at"),
        Index("ix_attempts_open", "status", "node_id"),
        Index("ix_attempts_number", "number"),
        Index("ix_attempts_agent", "agent_id", "ended_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id"), index=True)
    callback_id: Mapped[int | None] = mapped_column(ForeignKey("callbacks.id"))
    number: Mapped[str] = mapped_column(String(20))
    node_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(8))  # open / closed
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)  # written before the Originate
    originated_at: Mapped[datetime | None] = mapped_column(UtcDateTime)  # the PBX accepted the request
    ringing_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    connected_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    outcome: Mapped[str | None] = mapped_column(String(20))  # telephony.base.Outcome
    result: Mapped[str | None] = mapped_column(String(20))  # domain.campaign.CallResult
    cause: Mapped[int | None] = mapped_column(Integer)  # Q.850
    amd: Mapped[str | None] = mapped_column(String(10))  # telephony.base.AmdResult
    amd_detail: Mapped[str | None] = mapped_column(String(100))
    abandoned: Mapped[bool] = mapped_column(Boolean, default=False)
    agent_id: Mapped[str | None] = mapped_column(String(64))
    pbx_uniqueid: Mapped[str | None] = mapped_column(String(64))
    recording_file: Mapped[str | None] = mapped_column(String(500))
    recording_seconds: Mapped[float | None] = mapped_column(Float)  # read from the file once written
    talk_seconds: Mapped[float | None] = mapped_column(Float)
    # The campaign lease token the attempt was opened under (dialer.store.fences); None without Redis.
    fencing_token: Mapped[int | None] = mapped_column(BigInteger)


class Customer(Base):
    """What the call center knows about a person, keyed by number, across campaigns."""

    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    phone: Mapped[str] = mapped_column(String(20), unique=True)
    first_name: Mapped[str | None] = mapped_column(String(200))
    last_name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    identity: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # verified identity fields
    preferred_channel: Mapped[str | None] = mapped_column(String(8))  # phone / email / sms
    postcode: Mapped[str | None] = mapped_column(String(20))
    address: Mapped[str | None] = mapped_column(Text)  # postal address, for confirmations by post
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class DispositionRecord(Base):
    __tablename__ = "dispositions"
    __table_args__ = (Index("ix_dispositions_campaign_created", "campaign_id", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    attempt_id: Mapped[str] = mapped_column(ForeignKey("attempts.id"), unique=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id"), index=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    agent_id: Mapped[str | None] = mapped_column(String(64))
    code: Mapped[str] = mapped_column(String(40))
    contact: Mapped[bool] = mapped_column(Boolean)
    conversion: Mapped[bool] = mapped_column(Boolean)
    identity: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    objections: Mapped[list[str] | None] = mapped_column(JSON)
    result: Mapped[str | None] = mapped_column(Text)
    callback_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    appointment_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    next_actions: Mapped[list[str] | None] = mapped_column(JSON)
    comments: Mapped[str | None] = mapped_column(Text)
    wrap_seconds: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Appointment(Base):
    __tablename__ = "appointments"
    __table_args__ = (Index("ix_appointments_salesperson", "salesperson", "starts_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id"), index=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    # None while booked in the field calendar during the call, until the call is qualified
    disposition_id: Mapped[int | None] = mapped_column(ForeignKey("dispositions.id"))
    starts_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    ends_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    salesperson: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(12))  # booked / cancelled / done
    notes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    # The field calendar (dialer.calendar): status also "moved"; the call it was booked on, where the
    # visit is, who booked it, and the invitation's SEQUENCE (raised by every move and the cancel).
    attempt_id: Mapped[str | None] = mapped_column(ForeignKey("attempts.id"), index=True)
    postcode: Mapped[str | None] = mapped_column(String(20))
    booked_by: Mapped[str | None] = mapped_column(String(64))
    sequence: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    updated_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class AuditEntry(Base):
    """Who did what to the record: campaign changes, imports, dispositions."""

    __tablename__ = "audit_entries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(40))
    entity: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[str] = mapped_column(String(64))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)


CORE_TABLES = frozenset(
    t.__tablename__
    for t in (
        User,
        Campaign,
        LeadList,
        Lead,
        Callback,
        Attempt,
        Customer,
        DispositionRecord,
        Appointment,
        AuditEntry,
    )
)
