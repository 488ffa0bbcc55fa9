"""What supervisors, the API and the metrics see of the follow-up tasks: lists and counts by level.

``settle`` closes the open tasks whose work is visibly done (the callback
dialed, the email sent, the later contact made, the missed customer called
back), so the levels are right even where no hook told the task.  Every
surface reads the same counts (``summary``) after the same settle.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.domain.campaign import LeadStatus
from dialer.followup.levels import Kind, Level, Stored, Tally, level
from dialer.followup.tasks import INFORMATION_REASON, FollowupTask, close_task
from dialer.notify.messages import Notification
from dialer.store.db import Database
from dialer.store.models import Attempt, Callback, Campaign, Lead
from telephony.base import mask_number

SETTLE_BATCH = 5000  # open tasks looked at per settle, soonest due first
# A lead in one of these will not be called: its pending callback is not going to be made.
CLOSED_LEADS = frozenset(
    s.value
    for s in (
        LeadStatus.DONE,
        LeadStatus.INVALID,
        LeadStatus.DO_NOT_CALL,
        LeadStatus.EXHAUSTED,
        LeadStatus.BLOCKED,
    )
)


@dataclass(frozen=True, slots=True)
class TaskView:
    id: int
    kind: Kind
    level: Level
    campaign: str
    lead_id: int
    number_masked: str
    agent_id: str | None
    channel: str | None
    created_at: datetime
    due_at: datetime
    done_at: datetime | None
    overdue_s: float  # how long past its due time (0 when not overdue)
    callback_id: int | None
    notification_id: int | None
    source: str
    detail: str | None


@dataclass(frozen=True, slots=True)
class Summary:
    at: datetime
    kinds: dict[Kind, Tally]

    @property
    def overdue(self) -> int:
        return sum(t.overdue for t in self.kinds.values())

    @property
    def callbacks_overdue(self) -> int:
        return self.kinds[Kind.CALLBACK].overdue


async def settle(s: AsyncSession, now: datetime, batch: int = SETTLE_BATCH) -> int:
    """Close the open tasks whose work was done (by ``now``); returns how many were closed."""
    open_tasks = list(
        (
            await s.execute(
                select(FollowupTask)
                .where(FollowupTask.status == Stored.OPEN.value, FollowupTask.created_at <= now)
                .order_by(FollowupTask.due_at)
                .limit(batch)
            )
        ).scalars()
    )
    if not open_tasks:
        return 0
    by_kind: dict[Kind, list[FollowupTask]] = defaultdict(list)
    for task in open_tasks:
        by_kind[Kind(task.kind)].append(task)
    closed = 0

    callbacks = {t.callback_id: t for t in by_kind[Kind.CALLBACK] if t.callback_id is not None}
    if callbacks:
        dialed = await s.execute(
            select(Attempt.callback_id, Attempt.created_at, Attempt.id)
            .where(Attempt.callback_id.in_(list(callbacks)), Attempt.created_at <= now)
            .order_by(Attempt.created_at)
        )
        for callback_id, dialed_at, attempt_id in dialed:
            waiting = callbacks.pop(callback_id, None) if callback_id is not None else None
            if waiting is not None:
                await close_task(s, waiting, dialed_at, f"attempt:{attempt_id}")
                closed += 1
    if callbacks:  # not dialed: still to be made, unless the lead was closed meanwhile (refused, DNC...)
        leads = await s.execute(
            select(Callback.id, Callback.status, Lead.status)
            .join(Lead, Lead.id == Callback.lead_id)
            .where(Callback.id.in_(list(callbacks)))
        )
        for callback_id, callback_status, lead_status in leads:
            if callback_status in ("cancelled", "refused") or lead_status in CLOSED_LEADS:
                task = callbacks[callback_id]
                task.status, task.done_at = Stored.REFUSED.value, now
                task.detail = f"not made: the callback is {callback_status}, the lead {lead_status}"
                closed += 1

    notes = {t.notification_id: t for t in by_kind[Kind.INFORMATION] if t.notification_id is not None}
    if notes:
        delivered = await s.execute(
            select(Notification.id, Notification.sent_at).where(
                Notification.id.in_(list(notes)), Notification.status == "sent", Notification.sent_at <= now
            )
        )
        for note_id, sent_at in delivered:
            if sent_at is not None:
                await close_task(s, notes[note_id], sent_at, f"notification:{note_id}")
            closed += 1

    # Calls: a missed customer is called back by any later attempt; a follow-up by phone needs an answer.
    by_phone = by_kind[Kind.MISSED_CALL_BACK] + [t for t in by_kind[Kind.FOLLOW_UP] if t.channel == "phone"]
    if by_phone:
        since = min(t.created_at for t in by_phone)
        calls = await s.execute(
            select(Attempt.lead_id, Attempt.id, Attempt.created_at, Attempt.answered_at)
            .where(
                Attempt.lead_id.in_({t.lead_id for t in by_phone}),
                Attempt.created_at > since,
                Attempt.created_at <= now,
            )
            .order_by(Attempt.created_at)
        )
        attempts: dict[int, list[tuple[str, datetime, datetime | None]]] = defaultdict(list)
        for lead_id, attempt_id, created, answered in calls:
            attempts[lead_id].append((attempt_id, created, answered))
        for task in by_phone:
            for attempt_id, created, answered in attempts.get(task.lead_id, ()):
                if attempt_id == task.attempt_id:
                    continue
                reached = created if task.kind == Kind.MISSED_CALL_BACK.value else answered
                if reached is not None and task.created_at < reached <= now:
                    await close_task(s, task, reached, f"attempt:{attempt_id}")
                    closed += 1
                    break

    by_message = [
        t for t in by_kind[Kind.FOLLOW_UP] if t.channel in ("email", "sms") and t.customer_id is not None
    ]
    if by_message:
        since = min(t.created_at for t in by_message)
        messages = await s.execute(
            select(Notification.customer_id, Notification.channel, Notification.sent_at, Notification.id)
            .where(
                Notification.customer_id.in_({t.customer_id for t in by_message}),
                Notification.status == "sent",
                Notification.reason != INFORMATION_REASON,  # the promised information is not the follow-up
                Notification.sent_at > since,
                Notification.sent_at <= now,
            )
            .order_by(Notification.sent_at)
        )
        sent: dict[tuple[int, str], list[tuple[datetime, int]]] = defaultdict(list)
        for customer_id, channel, message_at, note_id in messages:
            if customer_id is not None and message_at is not None:
                sent[(customer_id, channel)].append((message_at, note_id))
        for task in by_message:
            assert task.customer_id is not None and task.channel is not None
            for at, note_id in sent.get((task.customer_id, task.channel), ()):
                if at > task.created_at:
                    await close_task(s, task, at, f"notification:{note_id}")
                    closed += 1
                    break
    return closed


async def counts(s: AsyncSession, now: datetime, campaign_id: int | None = None) -> Summary:
    """Tasks by kind and level at ``now``: one grouped query."""
    overdue = and_(FollowupTask.status == Stored.OPEN.value, FollowupTask.due_at < now)
    query = select(FollowupTask.kind, FollowupTask.status, overdue, func.count()).group_by(
        FollowupTask.kind, FollowupTask.status, overdue
    )
    if campaign_id is not None:
        query = query.where(FollowupTask.campaign_id == campaign_id)
    buckets: dict[Kind, dict[str, int]] = {k: {} for k in Kind}
    for kind, status, late, n in await s.execute(query):
        name = Level.OVERDUE.value if late else Stored(status).value
        buckets[Kind(kind)][name] = buckets[Kind(kind)].get(name, 0) + int(n)
    return Summary(now, {k: Tally(k, **v) for k, v in buckets.items()})


class FollowupBoard:
    """The tasks over one database, settled before each look."""

    def __init__(self, db: Database, *, settle_every_s: float = 0.0) -> None:
        self.db = db
        # Pages poll: one settle per this many seconds serves them all (0: settle at every look).
        self.settle_every_s = settle_every_s
        self._settled: tuple[float, datetime] | None = None  # (monotonic, the ``now`` it settled for)

    async def settle(self, now: datetime) -> int:
        if self._settled is not None and self.settle_every_s > 0:
            at, for_now = self._settled
            if time.monotonic() - at < self.settle_every_s and for_now <= now:
                return 0
        async with self.db.session() as s, s.begin():
            closed = await settle(s, now)
        self._settled = (time.monotonic(), now)
        return closed

    async def summary(
        self, now: datetime, campaign_id: int | None = None, *, settle_first: bool = True
    ) -> Summary:
        if settle_first:
            await self.settle(now)
        async with self.db.read_session() as s:
            return await counts(s, now, campaign_id)

    async def tasks(
        self,
        now: datetime,
        *,
        overdue_only: bool = False,
        kinds: Sequence[Kind] = (),
        campaign_id: int | None = None,
        include_done: bool = False,
        limit: int = 200,
    ) -> list[TaskView]:
        """Tasks soonest due first: open ones (and done ones with ``include_done``), or only the overdue."""
        await self.settle(now)
        # Outer join: a task whose lead was erased (retention) is still listed, as it is counted.
        query = (
            select(FollowupTask, Campaign.name, Lead.phone)
            .join(Campaign, Campaign.id == FollowupTask.campaign_id)
            .outerjoin(Lead, Lead.id == FollowupTask.lead_id)
        )
        if overdue_only:
            query = query.where(FollowupTask.status == Stored.OPEN.value, FollowupTask.due_at < now)
        elif not include_done:
            query = query.where(FollowupTask.status == Stored.OPEN.value)
        if kinds:
            query = query.where(FollowupTask.kind.in_([k.value for k in kinds]))
        if campaign_id is not None:
            query = query.where(FollowupTask.campaign_id == campaign_id)
        query = query.order_by(FollowupTask.due_at, FollowupTask.id).limit(limit)
        async with self.db.read_session() as s:
            rows = list(await s.execute(query))
        return [_view(task, campaign, phone, now) for task, campaign, phone in rows]

    async def overdue_callbacks(self, now: datetime, limit: int = 200) -> list[TaskView]:
        return await self.tasks(now, overdue_only=True, kinds=[Kind.CALLBACK], limit=limit)


def _view(task: FollowupTask, campaign: str, phone: str | None, now: datetime) -> TaskView:
    lvl = level(task.status, task.due_at, now)
    return TaskView(
        id=task.id,
        kind=Kind(task.kind),
        level=lvl,
        campaign=campaign,
        lead_id=task.lead_id,
        number_masked=mask_number(phone) if phone else "-",
        agent_id=task.agent_id,
        channel=task.channel,
        created_at=task.created_at,
        due_at=task.due_at,
        done_at=task.done_at,
        overdue_s=max(0.0, (now - task.due_at).total_seconds()) if lvl is Level.OVERDUE else 0.0,
        callback_id=task.callback_id,
        notification_id=task.notification_id,
        source=task.source,
        detail=task.detail,
    )


__all__ = ["FollowupBoard", "Summary", "TaskView", "counts", "settle"]
