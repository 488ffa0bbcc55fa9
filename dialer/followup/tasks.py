"""The follow-up tasks table and the writes that create and close tasks, inside the caller's transaction.

A task is written in the unit of work of what caused it: a booked callback
and the information email with the disposition, a missed customer with the
abandoned call's outcome.  Each task names its source (``callback:12``,
``disposition:7``, ``attempt:<id>``) once: writing it again changes nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from dialer.domain.campaign import CampaignSettings
from dialer.followup.levels import Kind, Stored, callback_due, due_after, settled
from dialer.followup.templates import TemplateError, template
from dialer.notify.messages import Channel, queue_notification
from dialer.store.base import Base, UtcDateTime
from dialer.store.models import BigId, Callback, Campaign, Customer, DispositionRecord, Lead

INFORMATION_REASON = "followup.information"  # notifications.reason of an information email
FOLLOW_UP_CHANNELS = ("phone", "email", "sms")


class FollowupTask(Base):
    __tablename__ = "followup_tasks"
    __table_args__ = (
        UniqueConstraint("kind", "source", name="uq_followup_tasks_kind_source"),
        Index("ix_followup_tasks_status_due", "status", "due_at"),
        Index("ix_followup_tasks_lead", "lead_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # levels.Kind
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    lead_id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"))
    agent_id: Mapped[str | None] = mapped_column(String(64))  # who promised it
    customer_id: Mapped[int | None] = mapped_column(Integer)
    channel: Mapped[str | None] = mapped_column(String(8))  # phone / email / sms: how it is to be done
    source: Mapped[str] = mapped_column(
        String(80)
    )  # what caused it: callback:12, disposition:7, attempt:<id>
    callback_id: Mapped[int | None] = mapped_column(Integer)
    notification_id: Mapped[int | None] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"))
    attempt_id: Mapped[str | None] = mapped_column(String(36))  # the attempt that caused it
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    due_at: Mapped[datetime] = mapped_column(UtcDateTime)
    done_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    done_by: Mapped[str | None] = mapped_column(String(80))  # what did it: attempt:<id>, notification:5
    status: Mapped[str] = mapped_column(String(10))  # levels.Stored
    detail: Mapped[str | None] = mapped_column(String(300))  # the template, why it was refused


async def add_task(
    s: AsyncSession,
    *,
    kind: Kind,
    campaign_id: int,
    lead_id: int,
    source: str,
    now: datetime,
    due_at: datetime,
    agent_id: str | None = None,
    customer_id: int | None = None,
    channel: str | None = None,
    callback_id: int | None = None,
    notification_id: int | None = None,
    attempt_id: str | None = None,
    detail: str | None = None,
) -> FollowupTask | None:
    """Add a task to the caller's transaction; None when its source already has one."""
    existing = (
        await s.execute(
            select(FollowupTask.id).where(FollowupTask.kind == kind.value, FollowupTask.source == source)
        )
    ).scalar_one_or_none()
    if existing is not None:
        return None
    row = FollowupTask(
        kind=kind.value,
        campaign_id=campaign_id,
        lead_id=lead_id,
        agent_id=agent_id,
        customer_id=customer_id,
        channel=channel,
        source=source,
        callback_id=callback_id,
        notification_id=notification_id,
        attempt_id=attempt_id,
        created_at=now,
        due_at=due_at,
        status=Stored.OPEN.value,
        detail=detail,
    )
    s.add(row)
    await s.flush()
    return row


def preferred_channel(lead: Lead, customer: Customer | None) -> str:
    for value in (lead.preferred_channel, customer.preferred_channel if customer else None):
        if value in FOLLOW_UP_CHANNELS:
            return value
    return "phone"


async def add_callback_task(
    s: AsyncSession, callback: Callback, record: DispositionRecord, settings: CampaignSettings, now: datetime
) -> FollowupTask | None:
    """A booked callback's deadline: written with the disposition that booked it."""
    return await add_task(
        s,
        kind=Kind.CALLBACK,
        campaign_id=callback.campaign_id,
        lead_id=callback.lead_id,
        agent_id=record.agent_id,
        source=f"callback:{callback.id}",
        now=now,
        due_at=callback_due(settings, callback.due_at),
        channel="phone",
        callback_id=callback.id,
        attempt_id=record.attempt_id,
        customer_id=record.customer_id,
        detail=f"for agent {callback.agent_id} only" if callback.agent_id else None,
    )


async def after_disposition(
    s: AsyncSession,
    disposition_id: int,
    now: datetime,
    *,
    information_template: str | None = None,
    follow_up: bool = False,
) -> list[FollowupTask]:
    """The tasks an agent's disposition promises: the information email and the follow-up contact.

    The information email is queued here too, so it exists exactly if the
    disposition does.  Raises :class:`TemplateError` (a ValueError) for an
    unknown template or a customer without an email address.
    """
    record = await s.get(DispositionRecord, disposition_id)
    assert record is not None  # just written in this transaction
    lead = await s.get(Lead, record.lead_id)
    assert lead is not None
    customer = await s.get(Customer, record.customer_id)
    campaign = await s.get(Campaign, record.campaign_id)
    assert campaign is not None
    settings = CampaignSettings.from_dict(campaign.settings)
    common = {"campaign_id": record.campaign_id, "lead_id": record.lead_id, "agent_id": record.agent_id}
    made: list[FollowupTask] = []
    if information_template:
        chosen = template(information_template)
        address = lead.email or (customer.email if customer else None)
        if not address:
            raise TemplateError(
                "the customer has no email address for the information: take it down in the identity "
                "fields (email) or choose no template"
            )
        subject, body = chosen.render(lead.first_name, lead.last_name)
        note = queue_notification(
            s,
            channel=Channel.EMAIL,
            recipient=address,
            subject=subject,
            body=body,
            reason=INFORMATION_REASON,
            now=now,
            ref=f"disposition:{disposition_id}",
            campaign_id=record.campaign_id,
            customer_id=record.customer_id,
        )
        await s.flush()
        row = await add_task(
            s,
            kind=Kind.INFORMATION,
            source=f"disposition:{disposition_id}",
            now=now,
            due_at=due_after(Kind.INFORMATION, settings, now),
            channel="email",
            notification_id=note.id,
            attempt_id=record.attempt_id,
            customer_id=record.customer_id,
            detail=chosen.name,
            **common,  # type: ignore[arg-type]
        )
        made += [row] if row else []
    if follow_up:
        row = await add_task(
            s,
            kind=Kind.FOLLOW_UP,
            source=f"disposition:{disposition_id}",
            now=now,
            due_at=due_after(Kind.FOLLOW_UP, settings, now),
            channel=preferred_channel(lead, customer),
            attempt_id=record.attempt_id,
            customer_id=record.customer_id,
            **common,  # type: ignore[arg-type]
        )
        made += [row] if row else []
    return made


async def after_abandon(
    s: AsyncSession,
    attempt_id: str,
    campaign_id: int,
    lead_id: int,
    ended_at: datetime,
    settings: CampaignSettings,
) -> FollowupTask | None:
    """A customer we missed (answered, then nobody free: abandoned) is to be called back."""
    return await add_task(
        s,
        kind=Kind.MISSED_CALL_BACK,
        campaign_id=campaign_id,
        lead_id=lead_id,
        source=f"attempt:{attempt_id}",
        now=ended_at,
        due_at=due_after(Kind.MISSED_CALL_BACK, settings, ended_at),
        channel="phone",
        attempt_id=attempt_id,
        detail="abandoned call",
    )


async def refuse_callbacks(s: AsyncSession, lead_id: int, reason: str, now: datetime) -> int:
    """The gate took the lead out for good (do-not-call, invalid number, no consent): its callbacks
    are not made.  They are marked ``refused`` and their tasks say why; returns how many."""
    ids = list(
        (
            await s.execute(
                select(Callback.id).where(Callback.lead_id == lead_id, Callback.status == "pending")
            )
        ).scalars()
    )
    if not ids:
        return 0
    await s.execute(update(Callback).where(Callback.id.in_(ids)).values(status="refused"))
    await s.execute(
        update(FollowupTask)
        .where(FollowupTask.callback_id.in_(ids), FollowupTask.status == Stored.OPEN.value)
        .values(
            status=Stored.REFUSED.value, done_at=now, detail=f"refused by the compliance gate: {reason}"[:300]
        )
    )
    return len(ids)


async def close_task(s: AsyncSession, task: FollowupTask, done_at: datetime, done_by: str) -> None:
    task.done_at = done_at
    task.done_by = done_by[:80]
    task.status = settled(task.due_at, done_at).value


async def mark_information_sent(s: AsyncSession, notification_id: int, at: datetime) -> bool:
    """The information email left: its task is done (met or missed); False when no open task waits for it."""
    task = (
        await s.execute(
            select(FollowupTask).where(
                FollowupTask.notification_id == notification_id, FollowupTask.status == Stored.OPEN.value
            )
        )
    ).scalar_one_or_none()
    if task is None:
        return False
    await close_task(s, task, at, f"notification:{notification_id}")
    return True


class UnitOfWork(Protocol):
    @property
    def session(self) -> AsyncSession: ...


async def notification_sent(uow: UnitOfWork, notification_id: int, at: datetime) -> bool:
    """The delivery worker sent notification ``notification_id`` at ``at`` (inside its unit of work).

    An information email's task is closed with it: met when sent by its due
    time, missed after.  Without this call the task is still closed, later,
    when the levels are next computed (``board.settle``).
    """
    return await mark_information_sent(uow.session, notification_id, at)
