"""Tables of the compliance gate: do-not-call entries and registry imports, contact history, audit.

Numbers in the history and the audit are stored as a keyed hash (``number_key``) plus, for the
audit, a masked form for display: the audit can be searched by number without holding numbers in
clear.  DNC entries hold the number itself: a do-not-call list is a list of numbers.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from dialer.store.base import Base, UtcDateTime


def read_only(engine: AsyncEngine) -> AsyncEngine:
    """The engine for reads: the store's Database then opens SQLite read transactions with a plain
    BEGIN, so a check never queues behind the audit writer (other engines ignore the option)."""
    return engine.execution_options(dialer_read_only=True)


class DncEntry(Base):
    """One number on the global list (campaign_id NULL) or on one campaign's list."""

    __tablename__ = "dnc_entry"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    number: Mapped[str] = mapped_column(String(16))  # E.164
    campaign_id: Mapped[str | None] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    removed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    removed_by: Mapped[str | None] = mapped_column(String(120))

    __table_args__ = (Index("ix_dnc_entry_number", "number"),)


class DncRegistryImport(Base):
    """One screening of a national registry: the day it was downloaded and what was loaded."""

    __tablename__ = "dnc_registry_import"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # "registry" is taken by the declarative base, hence the attribute name.
    registry_name: Mapped[str] = mapped_column("registry", String(32))
    screened_on: Mapped[date] = mapped_column(Date)
    imported_at: Mapped[datetime] = mapped_column(UtcDateTime())
    file_name: Mapped[str] = mapped_column(String(400))
    numbers: Mapped[int] = mapped_column(Integer)
    rejected: Mapped[int] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(default=False)  # True once all its numbers are loaded

    __table_args__ = (Index("ix_dnc_registry_import_registry", "registry", "id"),)


class DncRegistryNumber(Base):
    """The numbers of one registry import, as E.164 digits."""

    __tablename__ = "dnc_registry_number"

    import_id: Mapped[int] = mapped_column(
        ForeignKey("dnc_registry_import.id", ondelete="CASCADE"), primary_key=True
    )
    number: Mapped[int] = mapped_column(BigInteger, primary_key=True)

    __table_args__ = (Index("ix_dnc_registry_number_number", "number"),)


class ContactEventRow(Base):
    """An attempt or an outcome for a person, whatever the campaign: the base of contact pressure."""

    __tablename__ = "contact_event"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    number_key: Mapped[str] = mapped_column(String(64))
    lead_id: Mapped[str] = mapped_column(String(64))
    campaign_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (
        Index("ix_contact_event_number_at", "number_key", "at"),
        Index("ix_contact_event_lead_at", "lead_id", "at"),
    )


class ComplianceAudit(Base):
    """Every gate decision, allow or block, with the rule that decided."""

    __tablename__ = "compliance_audit"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    decision: Mapped[str] = mapped_column(String(8))  # allow | block
    rule: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text)
    number_masked: Mapped[str] = mapped_column(String(24))
    number_key: Mapped[str] = mapped_column(String(64))
    lead_id: Mapped[str] = mapped_column(String(64))
    campaign_id: Mapped[str] = mapped_column(String(64))
    retry_after: Mapped[datetime | None] = mapped_column(UtcDateTime())

    __table_args__ = (
        Index("ix_compliance_audit_number_at", "number_key", "at"),
        Index("ix_compliance_audit_campaign_at", "campaign_id", "at"),
    )


class ComplianceSetting(Base):
    """Small shared settings, e.g. the generated key of the number hash when none is configured."""

    __tablename__ = "compliance_setting"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class DncErased(Base):
    """One do-not-call entry of an erased person: the number only as its keyed hash."""

    __tablename__ = "dnc_erased"
    __table_args__ = (Index("ix_dnc_erased_number_key", "number_key"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    number_key: Mapped[str] = mapped_column(String(64))
    campaign_id: Mapped[str | None] = mapped_column(String(64))  # None: the global list
    source: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


COMPLIANCE_TABLES = [
    DncEntry.__table__,
    DncRegistryImport.__table__,
    DncRegistryNumber.__table__,
    ContactEventRow.__table__,
    ComplianceAudit.__table__,
    ComplianceSetting.__table__,
    DncErased.__table__,
]
