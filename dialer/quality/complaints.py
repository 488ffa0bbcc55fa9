"""Complaints: recorded, assigned, investigated, answered to the complainant, closed.

Anyone signed in records one (an agent who takes it on the phone, a
supervisor): who complains, how to answer them (their preferred channel:
email, SMS or post), about which call, agent or campaign, and what.  Its
deadline follows the campaign's ``complaint_answer_within_s`` (five days
without a campaign).  The answer is queued to the complainant through
:func:`dialer.notify.messages.queue_notification` in the same transaction that
marks the complaint answered.  Open complaints past their deadline are listed
and counted (the ``dialer_complaints_overdue`` gauge).

The life of a complaint is the table ``TRANSITIONS``: an action it does not
allow is refused with the complaint's status and what can be done.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from prometheus_client import Gauge
from sqlalchemy import func, select

from dialer.domain.campaign import CampaignSettings
from dialer.notify.messages import Channel, queue_notification
from dialer.quality.tables import Complaint
from dialer.store.db import Database
from dialer.store.models import Attempt, Campaign, Customer, DispositionRecord

log = logging.getLogger(__name__)

DEFAULT_ANSWER_WITHIN = timedelta(days=5)
MAX_TEXT = 4000

# A campaign stored before the setting existed: the setting's default.
_DEFAULT_CAMPAIGN_WITHIN = CampaignSettings.__dataclass_fields__["complaint_answer_within_s"].default
OVERDUE = Gauge("dialer_complaints_overdue", "Complaints not answered by their deadline")


class ComplaintStatus(enum.StrEnum):
    OPEN = "open"
    ASSIGNED = "assigned"
    INVESTIGATING = "investigating"
    ANSWERED = "answered"
    CLOSED = "closed"


class Action(enum.StrEnum):
    ASSIGN = "assign"
    INVESTIGATE = "investigate"
    ANSWER = "answer"
    CLOSE = "close"


S, A = ComplaintStatus, Action
TRANSITIONS: dict[tuple[ComplaintStatus, Action], ComplaintStatus] = {
    (S.OPEN, A.ASSIGN): S.ASSIGNED,
    (S.ASSIGNED, A.ASSIGN): S.ASSIGNED,  # handed to someone else
    (S.INVESTIGATING, A.ASSIGN): S.INVESTIGATING,
    (S.ASSIGNED, A.INVESTIGATE): S.INVESTIGATING,
    (S.INVESTIGATING, A.INVESTIGATE): S.INVESTIGATING,  # more findings
    (S.INVESTIGATING, A.ANSWER): S.ANSWERED,
    (S.ANSWERED, A.CLOSE): S.CLOSED,
}
PENDING = (S.OPEN, S.ASSIGNED, S.INVESTIGATING)


class ComplaintError(ValueError):
    """A complaint action that cannot be done; the message says why and what to do."""


class BadComplaint(ComplaintError):
    """The input itself is wrong (an empty text, no way to answer): fix it and send it again."""


class ComplaintNotFound(LookupError):
    pass


@dataclass(frozen=True, slots=True)
class ComplaintRecord:
    id: int
    complainant: str
    channel: str
    attempt_id: str | None
    agent_id: str | None
    campaign_id: int | None
    what: str
    recorded_by: str
    status: ComplaintStatus
    assigned_to: str | None
    findings: str | None
    answer: str | None
    notification_id: int | None
    created_at: datetime
    due_at: datetime
    answered_at: datetime | None
    closed_at: datetime | None

    def overdue(self, now: datetime) -> bool:
        return self.status in PENDING and self.due_at < now


def _record(c: Complaint) -> ComplaintRecord:
    return ComplaintRecord(
        c.id,
        c.complainant,
        c.channel,
        c.attempt_id,
        c.agent_id,
        c.campaign_id,
        c.what,
        c.recorded_by,
        ComplaintStatus(c.status),
        c.assigned_to,
        c.findings,
        c.answer,
        c.notification_id,
        c.created_at,
        c.due_at,
        c.answered_at,
        c.closed_at,
    )


def _text(value: str, what: str) -> str:
    value = value.strip()
    if not value:
        raise BadComplaint(f"{what} is empty: write it")
    if len(value) > MAX_TEXT:
        raise BadComplaint(f"{what} is {len(value)} characters: keep it under {MAX_TEXT}")
    return value


async def record_complaint(
    db: Database,
    recorded_by: str,
    *,
    complainant: str,
    what: str,
    now: datetime,
    channel: str | None = None,
    contact: str | None = None,
    attempt_id: str | None = None,
    agent_id: str | None = None,
    campaign_id: int | None = None,
) -> ComplaintRecord:
    """Record a complaint.  About a call, the agent, campaign and customer come from the record, and
    the channel and contact default to the customer's preferred channel and details."""
    complainant = _text(complainant, "the complainant's name")[:200]
    what = _text(what, "what the complaint is about")
    async with db.session() as s, s.begin():
        customer: Customer | None = None
        if attempt_id is not None:
            attempt = await s.get(Attempt, attempt_id)
            if attempt is None:
                raise ComplaintError(f"no call {attempt_id}: give the call's id as the call list shows it")
            agent_id = agent_id or attempt.agent_id
            campaign_id = campaign_id or attempt.campaign_id
            customer_id = (
                await s.execute(
                    select(DispositionRecord.customer_id).where(DispositionRecord.attempt_id == attempt_id)
                )
            ).scalar_one_or_none()
            customer = (
                await s.get(Customer, customer_id)
                if customer_id is not None
                else (await s.execute(select(Customer).where(Customer.phone == attempt.number)))
                .scalars()
                .first()
            )
        if channel is None and customer is not None and customer.preferred_channel in ("email", "sms"):
            channel = customer.preferred_channel
        if channel is None:
            channel = "email" if customer is not None and customer.email else "post"
        try:
            chosen = Channel(channel)
        except ValueError:
            raise ComplaintError(
                f"channel {channel!r}: the answer goes by email, sms or post (a phone answer is a call: "
                "record it in the findings and close the complaint)"
            ) from None
        if contact is None and customer is not None:
            contact = {
                Channel.EMAIL: customer.email,
                Channel.SMS: customer.phone,
                Channel.POST: customer.address,
            }[chosen]
        if not contact:
            raise ComplaintError(f"give the complainant's {chosen.value} contact (address or number)")
        within = DEFAULT_ANSWER_WITHIN
        if campaign_id is not None:
            campaign = await s.get(Campaign, campaign_id)
            if campaign is None:
                raise ComplaintError(f"no campaign {campaign_id}")
            seconds = campaign.settings.get("complaint_answer_within_s", _DEFAULT_CAMPAIGN_WITHIN)
            within = timedelta(seconds=float(seconds))
        row = Complaint(
            complainant=complainant,
            channel=chosen.value,
            contact=contact[:320],
            attempt_id=attempt_id,
            agent_id=agent_id,
            campaign_id=campaign_id,
            customer_id=customer.id if customer is not None else None,
            what=what,
            recorded_by=recorded_by,
            status=S.OPEN.value,
            created_at=now,
            due_at=now + within,
        )
        s.add(row)
        await s.flush()
        return _record(row)


async def act(
    db: Database,
    complaint_id: int,
    action: Action,
    actor: str,
    now: datetime,
    *,
    assignee: str | None = None,
    text: str | None = None,
    message_domain: str = "dialer.invalid",
) -> ComplaintRecord:
    """Move a complaint on: assign it, add findings, answer the complainant, close it."""
    async with db.session() as s, s.begin():
        row = await s.get(Complaint, complaint_id, with_for_update=True)
        if row is None:
            raise ComplaintNotFound(f"no complaint {complaint_id}")
        status = ComplaintStatus(row.status)
        after = TRANSITIONS.get((status, action))
        if after is None:
            allowed = ", ".join(a.value for (st, a) in TRANSITIONS if st is status) or "nothing: it is closed"
            raise ComplaintError(f"complaint {complaint_id} is {status.value}: you can {allowed}")
        if action is Action.ASSIGN:
            if not assignee:
                raise BadComplaint("say who investigates it")
            row.assigned_to = assignee[:64]
        elif action is Action.INVESTIGATE:
            findings = _text(text or "", "the findings")
            row.findings = f"{row.findings}\n{findings}" if row.findings else findings
            row.findings = row.findings[-MAX_TEXT * 4 :]
        elif action is Action.ANSWER:
            answer = _text(text or "", "the answer")
            message = queue_notification(
                s,
                channel=row.channel,
                recipient=row.contact,
                subject=f"Your complaint of {row.created_at:%d/%m/%Y}",
                body=f"Dear {row.complainant},\n\n{answer}\n",
                reason="complaint.answered",
                now=now,
                ref=f"complaint:{row.id}",
                campaign_id=row.campaign_id,
                customer_id=row.customer_id,
                message_domain=message_domain,
            )
            await s.flush()
            row.answer, row.answered_at, row.notification_id = answer, now, message.id
        elif action is Action.CLOSE:
            row.closed_at = now
        row.status = after.value
        log.info("complaint %s: %s by %s -> %s", complaint_id, action.value, actor, after.value)
        return _record(row)


async def list_complaints(
    db: Database,
    *,
    status: ComplaintStatus | None = None,
    overdue_at: datetime | None = None,
    recorded_by: str | None = None,
    limit: int = 500,
) -> list[ComplaintRecord]:
    """Complaints, oldest deadline first; ``overdue_at``: only those pending past their deadline then."""
    q = select(Complaint).order_by(Complaint.due_at, Complaint.id).limit(limit)
    if status is not None:
        q = q.where(Complaint.status == status.value)
    if overdue_at is not None:
        q = q.where(Complaint.status.in_([p.value for p in PENDING]), Complaint.due_at < overdue_at)
    if recorded_by is not None:
        q = q.where(Complaint.recorded_by == recorded_by)
    async with db.read_session() as s:
        return [_record(c) for c in (await s.execute(q)).scalars()]


async def count_overdue(db: Database, now: datetime) -> int:
    """Pending complaints past their deadline; also sets the ``dialer_complaints_overdue`` gauge."""
    async with db.read_session() as s:
        n = (
            await s.execute(
                select(func.count())
                .select_from(Complaint)
                .where(Complaint.status.in_([p.value for p in PENDING]), Complaint.due_at < now)
            )
        ).scalar_one()
    OVERDUE.set(int(n))
    return int(n)


async def watch_overdue(db: Database, until: asyncio.Event, every_s: float = 60.0) -> None:
    """Keep the overdue gauge current until ``until`` is set (a failed count is logged and retried)."""
    while not until.is_set():
        try:
            await count_overdue(db, datetime.now(UTC))
        except Exception as exc:  # the database is away: the gauge keeps its last value
            log.warning("overdue complaints not counted: %s", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(until.wait(), every_s)
