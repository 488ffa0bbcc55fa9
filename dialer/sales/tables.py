"""Tables of sales and of the customer record beyond dispositions: notes by agents and supervisors,
and the log of erasures (who erased a customer and when; nothing personal)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from dialer.store.base import Base, UtcDateTime


class Sale(Base):
    """A sale made by telephone, its written confirmation and its withdrawal period."""

    __tablename__ = "sales"
    __table_args__ = (Index("ix_sales_status_withdrawal_end", "status", "withdrawal_end"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    attempt_id: Mapped[str] = mapped_column(ForeignKey("attempts.id"), unique=True)
    disposition_id: Mapped[int] = mapped_column(ForeignKey("dispositions.id"))
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    agent_id: Mapped[str | None] = mapped_column(String(64))
    product: Mapped[str] = mapped_column(String(300))
    price_cents: Mapped[int] = mapped_column(BigInteger)  # all taxes included
    currency: Mapped[str] = mapped_column(String(3))
    delivery_terms: Mapped[str] = mapped_column(Text)
    installation_terms: Mapped[str] = mapped_column(Text)
    contract_date: Mapped[date] = mapped_column(Date)
    delivery_date: Mapped[date | None] = mapped_column(Date)
    withdrawal_days: Mapped[int] = mapped_column(Integer)
    withdrawal_starts: Mapped[str] = mapped_column(String(40))  # domain.campaign.WithdrawalStart
    withdrawal_end: Mapped[date | None] = mapped_column(Date)  # None until the delivery date is known
    status: Mapped[str] = mapped_column(String(12))  # active / withdrawn
    withdrawal_received_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    withdrawal_channel: Mapped[str | None] = mapped_column(String(12))  # phone / email / post / form / ...
    withdrawal_recorded_by: Mapped[str | None] = mapped_column(String(64))
    confirmation_channel: Mapped[str] = mapped_column(String(8))  # email / post
    confirmation_id: Mapped[int | None] = mapped_column(BigInteger)  # the notification carrying it
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class CustomerNote(Base):
    """A comment on the customer record outside a disposition, with who wrote it and when."""

    __tablename__ = "customer_notes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    author: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    attempt_id: Mapped[str | None] = mapped_column(String(36))  # the call it was written during
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class CustomerErasure(Base):
    """A customer's data erased on request: when, by whom, and how much was erased (counts only)."""

    __tablename__ = "customer_erasures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(Integer, index=True)
    erased_by: Mapped[str] = mapped_column(String(64))
    erased_at: Mapped[datetime] = mapped_column(UtcDateTime)
    counts: Mapped[dict[str, Any]] = mapped_column(JSON)


SALES_TABLES = (Sale.__table__, CustomerNote.__table__, CustomerErasure.__table__)
