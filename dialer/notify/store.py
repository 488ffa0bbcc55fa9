"""The notifications table as the worker, the CLI and the API use it.

Claiming is safe with several nodes on one PostgreSQL: the due rows are locked
``FOR UPDATE SKIP LOCKED`` and set to SENDING in the same transaction, with
``next_try_at`` as the lease's end and ``attempts`` raised by one.  The attempt
number is the claim's token: a worker stamps the outcome only where the row is
still SENDING with its attempt, so a worker that outlived its lease (and whose
message another worker took) cannot overwrite what the other one found.  On
SQLite every write transaction is ``BEGIN IMMEDIATE``: claims queue.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update

from dialer.notify.messages import Channel, Notification, Status, notification_fields
from dialer.notify.notifier import OutgoingMessage, mask_recipient
from dialer.service import NotFound, Refused
from dialer.store.db import Database


@dataclass(frozen=True, slots=True)
class Claim:
    message: OutgoingMessage
    attempt: int  # this try's number (1 for the first), the claim's token
    unknown_before: bool  # the previous try ended without an outcome (its worker stopped while SENDING)


async def claim_due(
    db: Database, channels: Sequence[str], *, now: datetime, lease_until: datetime, limit: int
) -> list[Claim]:
    """Take up to ``limit`` due messages of ``channels``: pending ones, and SENDING ones past their lease."""
    if not channels:
        return []
    async with db.session() as s, s.begin():
        due = (
            select(Notification.id, Notification.status)
            .where(
                Notification.channel.in_(list(channels)),
                Notification.status.in_([Status.PENDING.value, Status.SENDING.value]),
                Notification.next_try_at <= now,
            )
            .order_by(Notification.next_try_at, Notification.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        found = {row.id: row.status for row in (await s.execute(due)).all()}
        if not found:
            return []
        await s.execute(
            update(Notification)
            .where(Notification.id.in_(list(found)))
            .values(status=Status.SENDING.value, next_try_at=lease_until, attempts=Notification.attempts + 1)
            .execution_options(synchronize_session=False)
        )
        rows = (await s.scalars(select(Notification).where(Notification.id.in_(list(found))))).all()
        return [
            Claim(OutgoingMessage.of(row), row.attempts, found[row.id] == Status.SENDING.value)
            for row in sorted(rows, key=lambda r: r.id)
        ]


async def finish(
    db: Database,
    claim: Claim,
    status: Status,
    *,
    now: datetime,
    next_try_at: datetime | None = None,
    error: str | None = None,
) -> bool:
    """Stamp a claimed message's outcome; False when the claim was lost (its lease ended, another took it)."""
    values: dict[str, Any] = {"status": status.value, "next_try_at": next_try_at}
    if status is Status.SENT:
        values["sent_at"] = now
    if error is not None:
        values["last_error"] = error[:500]
    async with db.session() as s, s.begin():
        done = await s.execute(
            update(Notification)
            .where(
                Notification.id == claim.message.id,
                Notification.status == Status.SENDING.value,
                Notification.attempts == claim.attempt,
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(done, "rowcount", 0))


def summary(row: Notification) -> dict[str, Any]:
    """What lists show of a message: its fields, the recipient masked, and when it is next tried."""
    return {
        **notification_fields(row),
        "recipient": mask_recipient(row.recipient),
        "subject": row.subject,
        "next_try_at": row.next_try_at,
        "customer_id": row.customer_id,
        "campaign_id": row.campaign_id,
    }


async def list_notifications(
    db: Database,
    *,
    status: str | None = None,
    channel: str | None = None,
    ref: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """The newest messages first, filtered."""
    query = select(Notification).order_by(Notification.id.desc()).limit(limit)
    if status is not None:
        query = query.where(Notification.status == Status(status).value)
    if channel is not None:
        query = query.where(Notification.channel == Channel(channel).value)
    if ref is not None:
        query = query.where(Notification.ref == ref)
    async with db.read_session() as s:
        return [summary(row) for row in (await s.scalars(query)).all()]


async def get_notification(db: Database, notification_id: int) -> dict[str, Any]:
    """One message with its body and the names of its attachments; NotFound when there is none."""
    async with db.read_session() as s:
        row = await s.get(Notification, notification_id)
        if row is None:
            raise NotFound(f"no notification {notification_id}; see `dialer notify list`")
        return {
            **summary(row),
            "body": row.body,
            "attachments": [a["filename"] for a in row.attachments or ()]
            + (["invite.ics"] if row.ical else []),
            "message_id": row.message_id,
        }


async def retry_notification(db: Database, notification_id: int, *, now: datetime) -> dict[str, Any]:
    """A FAILED message back to PENDING, due now, with its tries counted from zero again."""
    async with db.session() as s, s.begin():
        row = await s.get(Notification, notification_id, with_for_update=True)
        if row is None:
            raise NotFound(f"no notification {notification_id}; see `dialer notify list`")
        if row.status != Status.FAILED.value:
            raise Refused(
                f"notification {notification_id} is {row.status}, not failed: only a failed message is "
                "tried again (a pending one is already on its way)"
            )
        row.status, row.attempts, row.next_try_at = Status.PENDING.value, 0, now
        await s.flush()
        return summary(row)


async def mark_mailed(db: Database, notification_id: int, *, now: datetime) -> dict[str, Any]:
    """A letter the back office posted: TO_MAIL to MAILED, stamped now."""
    async with db.session() as s, s.begin():
        row = await s.get(Notification, notification_id, with_for_update=True)
        if row is None:
            raise NotFound(f"no notification {notification_id}; see `dialer notify list --channel post`")
        if row.status != Status.TO_MAIL.value:
            raise Refused(
                f"notification {notification_id} is a {row.channel} message in status {row.status}: only a "
                "letter waiting to be posted (to_mail) can be marked mailed"
            )
        row.status, row.sent_at = Status.MAILED.value, now
        await s.flush()
        return summary(row)


async def count_by_channel_status(db: Database) -> dict[tuple[str, str], int]:
    """How many messages there are of each channel and status (the metrics' gauge)."""
    query = select(Notification.channel, Notification.status, func.count()).group_by(
        Notification.channel, Notification.status
    )
    async with db.read_session() as s:
        return {(c, st): int(n) for c, st, n in (await s.execute(query)).all()}
