"""Queueing messages and reading their rows back, for the notification tests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select

from dialer.notify.config import SmtpSettings
from dialer.notify.messages import Attachment, Notification, queue_notification
from dialer.store.db import Database
from tests.notify.conftest import T0, MailServer


def smtp_settings(server: MailServer, **changes: object) -> SmtpSettings:
    base: dict[str, object] = {
        "host": "127.0.0.1",
        "port": server.port,
        "sender": "Call center <rdv@calls.example>",
        "starttls": False,
        "timeout_s": 5.0,
    }
    base.update(changes)
    return SmtpSettings(**base)  # type: ignore[arg-type]


async def queue(
    db: Database,
    *recipients: str,
    channel: str = "email",
    attachments: Sequence[Attachment] = (),
    body: str = "Your appointment is booked.",
    now: datetime = T0,
) -> list[int]:
    async with db.session() as s, s.begin():
        rows = [
            queue_notification(
                s,
                channel=channel,
                recipient=r,
                subject="Your appointment",
                body=body,
                reason="appointment.booked",
                ref=f"appointment:{n}",
                now=now,
                attachments=attachments,
            )
            for n, r in enumerate(recipients, 1)
        ]
        await s.flush()
        return [r.id for r in rows]


async def rows(db: Database) -> list[Notification]:
    async with db.session() as s:
        return list((await s.scalars(select(Notification).order_by(Notification.id))).all())
