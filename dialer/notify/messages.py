"""Messages to people (customers, salespeople): written with what caused them, delivered later.

A use case that promises a message (an appointment booked, a sale's
confirmation, information promised by email) calls :func:`queue_notification`
inside its own unit of work: the message exists exactly if the use case
commits.  A delivery worker sends pending messages over their channel with
retries and backoff and stamps each one's status, so a mail server that is
down loses nothing and every message's fate is visible.
"""

from __future__ import annotations

import base64
import enum
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, String, Text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from dialer.store.base import Base, UtcDateTime
from dialer.store.models import BigId


class Channel(enum.StrEnum):
    EMAIL = "email"
    SMS = "sms"
    POST = "post"  # printed and mailed by the back office: listed, never sent by the worker


class Status(enum.StrEnum):
    PENDING = "pending"  # waiting for its first try or its next retry
    SENDING = "sending"  # a worker holds it until next_try_at (its lease); then another may try again
    SENT = "sent"  # the server or gateway accepted it
    FAILED = "failed"  # given up: a permanent refusal or too many tries (last_error says why)
    TO_MAIL = "to_mail"  # a letter waiting to be printed and posted
    MAILED = "mailed"  # the back office posted it


class Notification(Base):
    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_due", "status", "next_try_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel: Mapped[str] = mapped_column(String(8))  # Channel
    recipient: Mapped[str] = mapped_column(String(320))  # address, E.164 number, or postal name
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    # [{"filename", "content_type", "data" (base64)}]
    attachments: Mapped[list[dict[str, str]] | None] = mapped_column(JSON)
    ical: Mapped[str | None] = mapped_column(Text)  # an iCalendar invitation (METHOD:REQUEST / CANCEL)
    reason: Mapped[str] = mapped_column(String(40))  # what caused it: appointment.booked, ...
    ref: Mapped[str | None] = mapped_column(String(80))  # the thing it is about: appointment:12, sale:3
    campaign_id: Mapped[int | None] = mapped_column(Integer)
    customer_id: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(10))  # Status
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_try_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_error: Mapped[str | None] = mapped_column(String(500))
    message_id: Mapped[str] = mapped_column(String(200), unique=True)  # stable across retries
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    content_type: str
    data: bytes

    def to_json(self) -> dict[str, str]:
        return {
            "filename": self.filename,
            "content_type": self.content_type,
            "data": base64.b64encode(self.data).decode("ascii"),
        }

    @classmethod
    def from_json(cls, raw: dict[str, str]) -> Attachment:
        return cls(raw["filename"], raw["content_type"], base64.b64decode(raw["data"]))


def queue_notification(
    s: AsyncSession,
    *,
    channel: Channel | str,
    recipient: str,
    subject: str,
    body: str,
    reason: str,
    now: datetime,
    ref: str | None = None,
    attachments: Sequence[Attachment] = (),
    ical: str | None = None,
    campaign_id: int | None = None,
    customer_id: int | None = None,
    message_domain: str = "dialer.invalid",
) -> Notification:
    """Add a message to the caller's transaction; it is sent only if that transaction commits."""
    channel = Channel(channel)
    row = Notification(
        channel=channel.value,
        recipient=recipient,
        subject=subject[:300],
        body=body,
        attachments=[a.to_json() for a in attachments] or None,
        ical=ical,
        reason=reason,
        ref=ref,
        campaign_id=campaign_id,
        customer_id=customer_id,
        status=(Status.TO_MAIL if channel is Channel.POST else Status.PENDING).value,
        attempts=0,
        next_try_at=None if channel is Channel.POST else now,
        message_id=f"<{uuid.uuid4().hex}@{message_domain}>",
        created_at=now,
    )
    s.add(row)
    return row


def notification_fields(row: Notification) -> dict[str, Any]:
    """A row as plain values (no body or attachments): what lists and the API show."""
    return {
        "id": row.id,
        "channel": row.channel,
        "reason": row.reason,
        "ref": row.ref,
        "status": row.status,
        "attempts": row.attempts,
        "created_at": row.created_at,
        "sent_at": row.sent_at,
        "last_error": row.last_error,
    }
