"""Repositories: the only code that reads and writes the dialer's core tables.

Each public method is one transaction.  The guarantees the runtime builds on:

* ``AttemptRepository.open_attempt`` commits the attempt row (and the lead's
  ``in_flight`` state) before it returns, so the Originate is sent only for an
  attempt that is already on record;
* ``AttemptRepository.close_attempt`` writes the outcome and the lead's next
  state in one transaction and does nothing the second time, so a crash or a
  duplicated hang-up event never loses or double-counts an attempt;
* ``Hopper.claim_leads`` never hands the same lead to two callers: PostgreSQL
  rows are taken with ``FOR UPDATE SKIP LOCKED``, SQLite transactions start
  with ``BEGIN IMMEDIATE`` (one writer at a time);
* ``DispositionRepository.record_disposition`` writes the disposition and the
  lead's next state in one transaction.
"""

from __future__ import annotations

import enum
import logging
import uuid
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import Select, and_, case, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from dialer.domain.campaign import (
    ANSWERED_RESULTS,
    DIALABLE_STATUSES,
    PERSON_RESULTS,
    CallResult,
    CampaignSettings,
    CampaignStatus,
    LeadNext,
    LeadOrdering,
    LeadStatus,
    attempt_result,
    check_transition,
    next_after_attempt,
)
from dialer.domain.dispositions import (
    Disposition,
    DispositionError,
    LeadFate,
    lead_next_for_disposition,
    lookup,
)
from dialer.followup.levels import callback_dial_at
from dialer.followup.tasks import add_callback_task, after_abandon, refuse_callbacks
from dialer.store.fences import advance_fence
from dialer.store.models import (
    Appointment,
    Attempt,
    AuditEntry,
    Callback,
    Campaign,
    Customer,
    DispositionRecord,
    Lead,
    LeadList,
    User,
)

if TYPE_CHECKING:
    from dialer.store.db import Database

log = logging.getLogger(__name__)


class StoreError(Exception):
    """A request the record cannot satisfy; the message says why and what to do."""


class NotFound(StoreError):
    pass


class Conflict(StoreError):
    pass


class LeadUnavailable(Conflict):
    """The lead cannot be dialed now (already in flight, claimed by another node, closed)."""


# ---------------------------------------------------------------------------
# Campaigns


@dataclass(frozen=True, slots=True)
class CampaignRecord:
    id: int
    name: str
    status: CampaignStatus
    settings: CampaignSettings
    created_at: datetime
    updated_at: datetime


def _campaign_record(row: Campaign) -> CampaignRecord:
    return CampaignRecord(
        id=row.id,
        name=row.name,
        status=CampaignStatus(row.status),
        settings=CampaignSettings.from_dict(row.settings),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _audit(
    session: AsyncSession,
    at: datetime,
    actor: str,
    action: str,
    entity: str,
    entity_id: object,
    detail: Mapping[str, Any] | None = None,
) -> None:
    session.add(
        AuditEntry(
            at=at,
            actor=actor,
            action=action,
            entity=entity,
            entity_id=str(entity_id),
            detail=dict(detail) if detail else None,
        )
    )


def _now(now: datetime | None) -> datetime:
    from dialer.store.models import utcnow

    return now if now is not None else utcnow()


class CampaignRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(
        self, name: str, settings: CampaignSettings, *, actor: str = "system", now: datetime | None = None
    ) -> CampaignRecord:
        """Create a campaign in ``draft``; :class:`Conflict` if the name is taken."""
        name = name.strip()
        if not name:
            raise StoreError("campaign name is empty; give a short name such as 'spring-2026'")
        settings.validate()
        at = _now(now)
        async with self._db.session() as s:
            try:
                async with s.begin():
                    row = Campaign(
                        name=name,
                        status=CampaignStatus.DRAFT.value,
                        jurisdiction=settings.jurisdiction,
                        pbx=settings.pbx,
                        settings=settings.to_dict(),
                        created_at=at,
                        updated_at=at,
                    )
                    s.add(row)
                    await s.flush()
                    _audit(s, at, actor, "campaign.create", "campaign", row.id, {"name": name})
            except IntegrityError as exc:
                raise Conflict(f"a campaign named {name!r} already exists; choose another name") from exc
            return _campaign_record(row)

    async def get(self, campaign_id: int) -> CampaignRecord:
        async with self._db.read_session() as s:
            row = await s.get(Campaign, campaign_id)
            if row is None:
                raise NotFound(f"no campaign with id {campaign_id}; `dialer campaign list` shows them")
            return _campaign_record(row)

    async def by_name(self, name: str) -> CampaignRecord | None:
        async with self._db.read_session() as s:
            row = (await s.execute(select(Campaign).where(Campaign.name == name))).scalar_one_or_none()
            return None if row is None else _campaign_record(row)

    async def list(self, status: CampaignStatus | None = None) -> list[CampaignRecord]:
        query = select(Campaign).order_by(Campaign.id)
        if status is not None:
            query = query.where(Campaign.status == status.value)
        async with self._db.read_session() as s:
            return [_campaign_record(r) for r in (await s.execute(query)).scalars()]

    async def set_status(
        self, campaign_id: int, status: CampaignStatus, *, actor: str = "system", now: datetime | None = None
    ) -> CampaignRecord:
        """Change the status per ``CAMPAIGN_TRANSITIONS``; setting the current status again is a no-op."""
        at = _now(now)
        async with self._db.session() as s, s.begin():
            row = await s.get(Campaign, campaign_id, with_for_update=True)
            if row is None:
                raise NotFound(f"no campaign with id {campaign_id}; `dialer campaign list` shows them")
            current = CampaignStatus(row.status)
            if current is not status:
                check_transition(current, status)
                row.status = status.value
                row.updated_at = at
                _audit(
                    s,
                    at,
                    actor,
                    "campaign.status",
                    "campaign",
                    row.id,
                    {"from": current.value, "to": status.value},
                )
            return _campaign_record(row)

    async def update_settings(
        self,
        campaign_id: int,
        settings: CampaignSettings,
        *,
        actor: str = "system",
        now: datetime | None = None,
    ) -> CampaignRecord:
        settings.validate()
        at = _now(now)
        async with self._db.session() as s, s.begin():
            row = await s.get(Campaign, campaign_id, with_for_update=True)
            if row is None:
                raise NotFound(f"no campaign with id {campaign_id}; `dialer campaign list` shows them")
            before = row.settings
            row.settings = settings.to_dict()
            row.jurisdiction = settings.jurisdiction
            row.pbx = settings.pbx
            row.updated_at = at
            changed = {k: v for k, v in row.settings.items() if before.get(k) != v}
            _audit(s, at, actor, "campaign.settings", "campaign", row.id, {"changed": changed})
            return _campaign_record(row)

    async def refuse(
        self, campaign_id: int, reason: str, *, actor: str = "system", now: datetime | None = None
    ) -> CampaignRecord:
        """A node cannot dial this campaign: pause it (if running) and keep why, for `campaign show`."""
        at = _now(now)
        async with self._db.session() as s, s.begin():
            row = await s.get(Campaign, campaign_id, with_for_update=True)
            if row is None:
                raise NotFound(f"no campaign with id {campaign_id}; `dialer campaign list` shows them")
            before = row.status
            if before == CampaignStatus.RUNNING.value:
                row.status = CampaignStatus.PAUSED.value
                row.updated_at = at
            detail = {"from": before, "to": row.status, "reason": reason}
            _audit(s, at, actor, "campaign.refused", "campaign", row.id, detail)
            return _campaign_record(row)

    async def refusal(self, campaign_id: int) -> tuple[datetime, str, str] | None:
        """(when, who, why) of the campaign's last refusal, unless its status was changed since."""
        query = (
            select(AuditEntry.action, AuditEntry.at, AuditEntry.actor, AuditEntry.detail)
            .where(
                AuditEntry.entity == "campaign",
                AuditEntry.entity_id == str(campaign_id),
                AuditEntry.action.in_(("campaign.refused", "campaign.status")),
            )
            .order_by(AuditEntry.id.desc())
            .limit(1)
        )
        async with self._db.read_session() as s:
            last = (await s.execute(query)).first()
        if last is None or last.action != "campaign.refused":
            return None
        return last.at, last.actor, str((last.detail or {}).get("reason", ""))


async def _settings_of(session: AsyncSession, campaign_id: int) -> CampaignSettings:
    raw = (await session.execute(select(Campaign.settings).where(Campaign.id == campaign_id))).scalar_one()
    return CampaignSettings.from_dict(raw)


# ---------------------------------------------------------------------------
# Leads


@dataclass(frozen=True, slots=True)
class LeadRecord:
    id: int
    campaign_id: int
    lead_list_id: int
    phone: str
    first_name: str | None
    last_name: str | None
    email: str | None
    external_id: str | None
    timezones: tuple[str, ...]
    timezone_source: str
    consent: bool | None
    consent_given_at: datetime | None
    consent_source: str | None
    priority: int
    status: LeadStatus
    attempt_count: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_result: str | None
    claimed_by: str | None
    current_attempt_id: str | None
    extra: Mapping[str, Any]


def lead_record(row: Lead) -> LeadRecord:
    return LeadRecord(
        id=row.id,
        campaign_id=row.campaign_id,
        lead_list_id=row.lead_list_id,
        phone=row.phone,
        first_name=row.first_name,
        last_name=row.last_name,
        email=row.email,
        external_id=row.external_id,
        timezones=tuple(z for z in row.timezones.split(",") if z),
        timezone_source=row.timezone_source,
        consent=row.consent,
        consent_given_at=row.consent_given_at,
        consent_source=row.consent_source,
        priority=row.priority,
        status=LeadStatus(row.status),
        attempt_count=row.attempt_count,
        next_attempt_at=row.next_attempt_at,
        last_attempt_at=row.last_attempt_at,
        last_result=row.last_result,
        claimed_by=row.claimed_by,
        current_attempt_id=row.current_attempt_id,
        extra=row.extra or {},
    )


@dataclass(frozen=True, slots=True)
class NewLead:
    """One lead to insert; ``phone`` already normalized to E.164."""

    phone: str
    timezones: tuple[str, ...]
    timezone_source: str = "number"
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    external_id: str | None = None
    consent: bool | None = None
    priority: int = 0
    extra: Mapping[str, Any] | None = None


class LeadRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create_list(
        self,
        campaign_id: int,
        name: str,
        source_file: str,
        default_country: str,
        *,
        now: datetime | None = None,
    ) -> int:
        """Register a lead list (one imported file) in ``importing`` state; return its id."""
        at = _now(now)
        async with self._db.session() as s, s.begin():
            if await s.get(Campaign, campaign_id) is None:
                raise NotFound(f"no campaign with id {campaign_id}; `dialer campaign list` shows them")
            row = LeadList(
                campaign_id=campaign_id,
                name=name,
                source_file=source_file,
                default_country=default_country,
                status="importing",
                imported=0,
                rejected=0,
                created_at=at,
            )
            s.add(row)
            await s.flush()
            return row.id

    async def add(
        self, campaign_id: int, lead_list_id: int, leads: Sequence[NewLead], *, now: datetime | None = None
    ) -> int:
        """Insert leads in one transaction with one multi-row statement; they are due at ``now``."""
        if not leads:
            return 0
        at = _now(now)
        rows = [
            {
                "campaign_id": campaign_id,
                "lead_list_id": lead_list_id,
                "phone": lead.phone,
                "first_name": lead.first_name,
                "last_name": lead.last_name,
                "email": lead.email,
                "external_id": lead.external_id,
                "timezones": ",".join(lead.timezones),
                "timezone_source": lead.timezone_source,
                "consent": lead.consent,
                "priority": lead.priority,
                "status": LeadStatus.NEW.value,
                "attempt_count": 0,
                "next_attempt_at": at,
                "extra": dict(lead.extra) if lead.extra else None,
                "created_at": at,
                "updated_at": at,
            }
            for lead in leads
        ]
        await self.insert_rows(rows)
        return len(rows)

    async def insert_rows(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert prepared rows (``leads`` column names) in one transaction (executemany)."""
        # Core, not the ORM: one executemany per batch, no per-row bookkeeping.
        async with self._db.engine.begin() as conn:
            await conn.execute(insert(Lead), list(rows))

    async def finish_list(
        self,
        lead_list_id: int,
        *,
        imported: int,
        rejected: int,
        status: str,
        now: datetime | None = None,
        actor: str = "system",
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        at = _now(now)
        async with self._db.session() as s, s.begin():
            await s.execute(
                update(LeadList)
                .where(LeadList.id == lead_list_id)
                .values(imported=imported, rejected=rejected, status=status, finished_at=at)
            )
            _audit(
                s,
                at,
                actor,
                "leads.import",
                "lead_list",
                lead_list_id,
                {"imported": imported, "rejected": rejected, "status": status, **(detail or {})},
            )

    async def get(self, lead_id: int) -> LeadRecord:
        async with self._db.read_session() as s:
            row = await s.get(Lead, lead_id)
            if row is None:
                raise NotFound(f"no lead with id {lead_id}")
            return lead_record(row)

    async def count_by_status(self, campaign_id: int) -> dict[str, int]:
        query = select(Lead.status, func.count()).where(Lead.campaign_id == campaign_id).group_by(Lead.status)
        async with self._db.read_session() as s:
            return {status: n for status, n in (await s.execute(query))}

    async def iter_leads(
        self, campaign_id: int, statuses: Collection[LeadStatus] = (), batch: int = 2000
    ) -> AsyncIterator[LeadRecord]:
        """Every lead of a campaign in id order, fetched in batches (bounded memory)."""
        last_id = 0
        while True:
            query = select(Lead).where(Lead.campaign_id == campaign_id, Lead.id > last_id)
            if statuses:
                query = query.where(Lead.status.in_([s.value for s in statuses]))
            query = query.order_by(Lead.id).limit(batch)
            async with self._db.read_session() as s:
                rows = list((await s.execute(query)).scalars())
            if not rows:
                return
            for row in rows:
                yield lead_record(row)
            last_id = rows[-1].id

    async def numbers_of_campaign(self, campaign_id: int, batch: int = 20000) -> AsyncIterator[str]:
        """Every lead number of a campaign (for duplicate checks), in batches."""
        last_id = 0
        while True:
            query = (
                select(Lead.id, Lead.phone)
                .where(Lead.campaign_id == campaign_id, Lead.id > last_id)
                .order_by(Lead.id)
                .limit(batch)
            )
            async with self._db.read_session() as s:
                rows = list(await s.execute(query))
            if not rows:
                return
            for _, phone in rows:
                yield phone
            last_id = rows[-1][0]


# ---------------------------------------------------------------------------
# Hopper: lead selection


@dataclass(frozen=True, slots=True)
class CallbackInfo:
    callback_id: int
    due_at: datetime
    agent_id: str | None  # set: only this agent may take the call


@dataclass(frozen=True, slots=True)
class ClaimedLead:
    lead_id: int
    campaign_id: int
    number: str  # E.164
    timezones: tuple[str, ...]  # candidate IANA zones; the window must hold in all of them
    timezone_source: str  # "number" (from phonenumbers) or "column" (given by the list)
    attempt_count: int  # attempts already made
    consent: bool | None  # None: the list said nothing
    status: LeadStatus  # new / retry / callback
    priority: int
    first_name: str | None
    last_name: str | None
    callback: CallbackInfo | None
    consent_given_at: datetime | None = None  # when the person agreed (None: the list did not say)
    consent_source: str | None = None  # how (web form, contract, ...)


def _ordering(ordering: LeadOrdering) -> list[ColumnElement[Any]]:
    if ordering is LeadOrdering.PRIORITY:
        return [Lead.priority.desc(), Lead.id.asc()]
    if ordering is LeadOrdering.OLDEST_FIRST:
        return [Lead.id.asc()]
    if ordering is LeadOrdering.NEWEST_FIRST:
        return [Lead.id.desc()]
    if ordering is LeadOrdering.FEWEST_ATTEMPTS:
        return [Lead.attempt_count.asc(), Lead.next_attempt_at.asc(), Lead.id.asc()]
    return [
        case((Lead.status == LeadStatus.RETRY.value, 0), else_=1),
        Lead.next_attempt_at.asc(),
        Lead.id.asc(),
    ]


_LEAD_COLUMNS = (
    Lead.id,
    Lead.phone,
    Lead.timezones,
    Lead.timezone_source,
    Lead.attempt_count,
    Lead.consent,
    Lead.status,
    Lead.priority,
    Lead.first_name,
    Lead.last_name,
    Lead.consent_given_at,
    Lead.consent_source,
)


class Hopper:
    """Lead selection: due callbacks first, then fresh leads and retries in campaign order."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def claim_leads(
        self,
        campaign_id: int,
        limit: int,
        now: datetime,
        node_id: str,
        *,
        ready_agents: Collection[str] = (),
    ) -> list[ClaimedLead]:
        """Reserve up to ``limit`` due leads of a running campaign for ``node_id``.

        A claimed lead belongs to that node until it opens an attempt on it
        (``AttemptRepository.open_attempt``) or gives it back (``release``).
        Callbacks booked for one agent are claimed only when that agent is in
        ``ready_agents``.  A campaign that is not running yields nothing.
        """
        if limit <= 0:
            return []
        async with self._db.session() as s, s.begin():
            status = (
                await s.execute(select(Campaign.status).where(Campaign.id == campaign_id))
            ).scalar_one_or_none()
            if status != CampaignStatus.RUNNING.value:
                return []
            settings = await _settings_of(s, campaign_id)
            claimed: list[ClaimedLead] = []

            callbacks = (
                select(*_LEAD_COLUMNS, Callback.id, Callback.due_at, Callback.agent_id)
                .join(Callback, and_(Callback.lead_id == Lead.id, Callback.status == "pending"))
                .where(
                    Lead.campaign_id == campaign_id,
                    Lead.status == LeadStatus.CALLBACK.value,
                    Lead.claimed_by.is_(None),
                    Callback.due_at <= now,
                    # Postponed by the gate (outside the calling window): not before the lead's own time.
                    or_(Lead.next_attempt_at.is_(None), Lead.next_attempt_at <= now),
                    or_(
                        Callback.agent_id.is_(None),
                        Callback.agent_id.in_(list(ready_agents)),
                        # Its agent is away past the grace: anyone takes it.
                        Callback.due_at <= now - timedelta(seconds=settings.callback_grace_s),
                    ),
                )
                .order_by(Callback.due_at, Lead.id)
                .limit(limit)
                .with_for_update(skip_locked=True, of=Lead)
            )
            seen: set[int] = set()
            for row in await s.execute(callbacks):
                if row[0] in seen:  # two pending callbacks for one lead: the earliest wins
                    continue
                seen.add(row[0])
                taker = row[14] if row[14] in ready_agents else None  # an absent agent's: anyone's now
                claimed.append(_claimed(campaign_id, row[:12], CallbackInfo(row[12], row[13], taker)))

            remaining = limit - len(claimed)
            if remaining > 0:
                fresh = (
                    select(*_LEAD_COLUMNS)
                    .where(
                        Lead.campaign_id == campaign_id,
                        Lead.status.in_([LeadStatus.NEW.value, LeadStatus.RETRY.value]),
                        Lead.claimed_by.is_(None),
                        Lead.next_attempt_at <= now,
                        Lead.lead_list_id.not_in(_disabled_lists(campaign_id)),
                    )
                    .order_by(*_ordering(settings.ordering))
                    .limit(remaining)
                    .with_for_update(skip_locked=True)
                )
                for row in await s.execute(fresh):
                    claimed.append(_claimed(campaign_id, row, None))

            if claimed:
                await s.execute(
                    update(Lead)
                    .where(Lead.id.in_([c.lead_id for c in claimed]))
                    .values(claimed_by=node_id, claimed_at=now)
                )
            return claimed

    async def release(
        self,
        lead_id: int,
        node_id: str,
        *,
        due_at: datetime | None = None,
        status: LeadStatus | None = None,
        reason: str = "",
        now: datetime | None = None,
    ) -> bool:
        """Give back a claimed lead that will not be dialed now.

        ``due_at`` postpones it (e.g. outside the calling window); ``status``
        takes it out of the list (``BLOCKED``, ``DO_NOT_CALL``, ``INVALID``),
        recorded in the audit trail with ``reason``.  Returns False when the
        lead was not claimed by ``node_id``.
        """
        at = _now(now)
        values: dict[str, Any] = {"claimed_by": None, "claimed_at": None, "updated_at": at}
        if due_at is not None:
            values["next_attempt_at"] = due_at
        if status is not None:
            if status in DIALABLE_STATUSES or status in (LeadStatus.IN_FLIGHT, LeadStatus.WRAP_UP):
                raise ValueError(f"release to {status.value!r}: only a closing status can be set here")
            values["status"] = status.value
        async with self._db.session() as s, s.begin():
            result = await s.execute(
                update(Lead).where(Lead.id == lead_id, Lead.claimed_by == node_id).values(**values)
            )
            changed = bool(result.rowcount)  # type: ignore[attr-defined]
            if changed and status is not None:
                await refuse_callbacks(s, lead_id, reason or status.value, at)
            if changed and (status is not None or reason):
                _audit(
                    s,
                    at,
                    node_id,
                    "lead.release",
                    "lead",
                    lead_id,
                    {
                        "status": status.value if status else None,
                        "reason": reason,
                        "due_at": due_at.isoformat() if due_at else None,
                    },
                )
            return changed

    async def release_claims(self, node_id: str | None = None, claimed_before: datetime | None = None) -> int:
        """Free claims left by a node that stopped before dialing (crash recovery); returns how many."""
        conditions: list[ColumnElement[bool]] = [Lead.claimed_by.is_not(None)]
        if node_id is not None:
            conditions.append(Lead.claimed_by == node_id)
        if claimed_before is not None:
            conditions.append(Lead.claimed_at < claimed_before)
        async with self._db.session() as s, s.begin():
            result = await s.execute(update(Lead).where(*conditions).values(claimed_by=None, claimed_at=None))
            return int(result.rowcount)  # type: ignore[attr-defined]

    async def count_due(self, campaign_id: int, now: datetime) -> int:
        """How many leads could be claimed now (callbacks of absent agents included)."""
        query = select(func.count()).where(
            Lead.campaign_id == campaign_id,
            Lead.status.in_([s.value for s in DIALABLE_STATUSES]),
            Lead.claimed_by.is_(None),
            Lead.next_attempt_at <= now,
            or_(
                Lead.status == LeadStatus.CALLBACK.value,
                Lead.lead_list_id.not_in(_disabled_lists(campaign_id)),
            ),
        )
        async with self._db.read_session() as s:
            return int((await s.execute(query)).scalar_one())


def _disabled_lists(campaign_id: int) -> Select[int]:
    """Lists of the campaign that `dialer lists disable` took out (their callbacks are still made)."""
    return select(LeadList.id).where(LeadList.campaign_id == campaign_id, LeadList.enabled.is_(False))


def _claimed(campaign_id: int, row: Sequence[Any], callback: CallbackInfo | None) -> ClaimedLead:
    return ClaimedLead(
        lead_id=row[0],
        campaign_id=campaign_id,
        number=row[1],
        timezones=tuple(z for z in row[2].split(",") if z),
        timezone_source=row[3],
        attempt_count=row[4],
        consent=row[5],
        status=LeadStatus(row[6]),
        priority=row[7],
        first_name=row[8],
        last_name=row[9],
        callback=callback,
        consent_given_at=row[10],
        consent_source=row[11],
    )


# ---------------------------------------------------------------------------
# Attempts


class AttemptEvent:
    """Kinds accepted by ``AttemptRepository.record_event``, each filling one time column."""

    ORIGINATED = "originated"
    RINGING = "ringing"
    ANSWERED = "answered"
    CONNECTED = "connected"


_EVENT_COLUMNS = {
    AttemptEvent.ORIGINATED: "originated_at",
    AttemptEvent.RINGING: "ringing_at",
    AttemptEvent.ANSWERED: "answered_at",
    AttemptEvent.CONNECTED: "connected_at",
}


@dataclass(frozen=True, slots=True)
class OpenAttempt:
    attempt_id: str
    lead_id: int
    campaign_id: int
    number: str
    node_id: str
    created_at: datetime
    answered_at: datetime | None
    connected_at: datetime | None
    agent_id: str | None


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    id: str
    campaign_id: int
    lead_id: int
    number: str
    node_id: str
    status: str
    created_at: datetime
    originated_at: datetime | None
    ringing_at: datetime | None
    answered_at: datetime | None
    connected_at: datetime | None
    ended_at: datetime | None
    outcome: str | None
    result: str | None
    cause: int | None
    amd: str | None
    abandoned: bool
    agent_id: str | None
    pbx_uniqueid: str | None
    recording_file: str | None
    talk_seconds: float | None


class AbandonSample(NamedTuple):
    at: datetime
    person_answered: bool
    abandoned: bool


class AttemptRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def open_attempt(
        self,
        lead_id: int,
        campaign_id: int,
        number: str,
        node_id: str,
        now: datetime,
        *,
        fencing_token: int | None = None,
    ) -> str:
        """Record a new attempt and put its lead in flight; return the attempt id (a UUID).

        Committed before it returns: send the Originate only after this.  The
        lead must be dialable and not claimed by another node, else
        :class:`LeadUnavailable`.  A due callback of the lead is marked dialed.
        With ``fencing_token`` (the campaign lease's), the campaign's fence is
        checked and advanced in the same transaction (``AttemptFenced``).
        """
        attempt_id = str(uuid.uuid4())
        async with self._db.session() as s, s.begin():
            if fencing_token is not None:
                await advance_fence(s, campaign_id, fencing_token, now)
            lead = (
                await s.execute(
                    select(Lead.status, Lead.claimed_by, Lead.campaign_id)
                    .where(Lead.id == lead_id)
                    .with_for_update()
                )
            ).one_or_none()
            if lead is None:
                raise NotFound(f"no lead with id {lead_id}")
            status, claimed_by, lead_campaign = lead
            if lead_campaign != campaign_id:
                raise LeadUnavailable(
                    f"lead {lead_id} belongs to campaign {lead_campaign}, not {campaign_id}"
                )
            if status not in DIALABLE_STATUSES:
                raise LeadUnavailable(f"lead {lead_id} is {status}; it cannot be dialed now")
            if claimed_by is not None and claimed_by != node_id:
                raise LeadUnavailable(f"lead {lead_id} is claimed by node {claimed_by!r}")
            callback_id: int | None = None
            if status == LeadStatus.CALLBACK.value:
                callback_id = (
                    await s.execute(
                        select(Callback.id)
                        .where(
                            Callback.lead_id == lead_id, Callback.status == "pending", Callback.due_at <= now
                        )
                        .order_by(Callback.due_at)
                        .limit(1)
                    )
                ).scalar_one_or_none()
                if callback_id is not None:
                    await s.execute(
                        update(Callback).where(Callback.id == callback_id).values(status="dialed")
                    )
            s.add(
                Attempt(
                    id=attempt_id,
                    campaign_id=campaign_id,
                    lead_id=lead_id,
                    callback_id=callback_id,
                    number=number,
                    node_id=node_id,
                    status="open",
                    created_at=now,
                    abandoned=False,
                    fencing_token=fencing_token,
                )
            )
            await s.execute(
                update(Lead)
                .where(Lead.id == lead_id)
                .values(
                    status=LeadStatus.IN_FLIGHT.value,
                    claimed_by=None,
                    claimed_at=None,
                    current_attempt_id=attempt_id,
                    attempt_count=Lead.attempt_count + 1,
                    last_attempt_at=now,
                    updated_at=now,
                )
            )
        return attempt_id

    async def record_event(
        self,
        attempt_id: str,
        kind: str,
        at: datetime,
        *,
        pbx_uniqueid: str | None = None,
        agent_id: str | None = None,
        amd: str | None = None,
        amd_detail: str | None = None,
        recording_file: str | None = None,
    ) -> bool:
        """Note when the call was originated / rang / was answered / joined an agent.

        The first report of each time wins; a repeated event changes nothing
        (AMI reconnects replay events).  The keyword fields are filled when
        still empty.  Returns whether anything changed.
        """
        column = _EVENT_COLUMNS.get(kind)
        if column is None:
            raise ValueError(f"unknown attempt event {kind!r}; one of {', '.join(_EVENT_COLUMNS)}")
        async with self._db.session() as s, s.begin():
            row = await s.get(Attempt, attempt_id, with_for_update=True)
            if row is None:
                raise NotFound(f"no attempt {attempt_id}")
            changed = False
            if getattr(row, column) is None:
                setattr(row, column, at)
                changed = True
            for name, value in (
                ("pbx_uniqueid", pbx_uniqueid),
                ("agent_id", agent_id),
                ("amd", amd),
                ("amd_detail", amd_detail),
                ("recording_file", recording_file),
            ):
                if value is not None and getattr(row, name) is None:
                    setattr(row, name, value)
                    changed = True
            return changed

    async def close_attempt(
        self,
        attempt_id: str,
        result: str,
        cause: int | None,
        amd: str | None,
        ended_at: datetime,
        *,
        answered: bool = False,
        agent_id: str | None = None,
        amd_detail: str | None = None,
        originated_at: datetime | None = None,
        fencing_token: int | None = None,
    ) -> bool:
        """Write the call's one result and move the lead to its next state, in one transaction.

        ``result`` is the call state machine's (``CallResult``): connected,
        abandoned, machine, dropped, lost, busy, ...  The PBX outcome column
        follows from it (``answered`` for every result a pickup led to, and for
        a call the PBX cut after the answer: ``answered=True``); nothing is
        rebuilt from flags.

        A call that reached an agent leaves the lead in ``wrap_up`` until its
        disposition; other results follow the campaign's retry rules.  Closing
        an attempt that is already closed changes nothing and returns False.
        """
        async with self._db.session() as s, s.begin():
            row = await s.get(Attempt, attempt_id, with_for_update=True)
            if row is None:
                raise NotFound(f"no attempt {attempt_id}")
            if fencing_token is not None:  # a node that lost the campaign's lease writes nothing
                await advance_fence(s, row.campaign_id, fencing_token, ended_at)
            if row.status != "open":
                return False
            if agent_id is not None:
                row.agent_id = agent_id
            if amd is not None:
                row.amd = amd
            if amd_detail is not None and row.amd_detail is None:
                row.amd_detail = amd_detail[:100]  # the column's width
            if originated_at is not None and row.originated_at is None:
                row.originated_at = originated_at
            call_result = attempt_result(result)
            row.status = "closed"
            row.outcome = "answered" if answered or call_result in ANSWERED_RESULTS else call_result.value
            row.result = call_result.value
            row.cause = cause
            row.ended_at = ended_at
            row.abandoned = call_result is CallResult.ABANDONED
            if row.connected_at is not None:
                row.talk_seconds = max(0.0, (ended_at - row.connected_at).total_seconds())
            await s.flush()
            if row.abandoned:
                settings = await _settings_of(s, row.campaign_id)
                await after_abandon(s, attempt_id, row.campaign_id, row.lead_id, ended_at, settings)

            lead = await s.get(Lead, row.lead_id, with_for_update=True)
            if lead is None or lead.current_attempt_id != attempt_id:
                log.warning("attempt %s closed but its lead moved on; the lead is left as it is", attempt_id)
                return True
            settings = await _settings_of(s, row.campaign_id)
            disposition = (
                await s.execute(select(DispositionRecord).where(DispositionRecord.attempt_id == attempt_id))
            ).scalar_one_or_none()
            if disposition is not None:
                nxt = await _next_for_disposition(s, lead, disposition, settings, ended_at)
            else:
                same = (
                    await s.execute(
                        select(func.count()).where(
                            Attempt.lead_id == lead.id, Attempt.result == call_result.value
                        )
                    )
                ).scalar_one()
                nxt = next_after_attempt(
                    call_result,
                    attempts_total=lead.attempt_count,
                    attempts_with_result=int(same),
                    rules=settings.retry_rules,
                    max_attempts=settings.max_attempts,
                    now=ended_at,
                )
            _apply_next(lead, nxt, call_result.value, ended_at, keep_attempt=nxt.status is LeadStatus.WRAP_UP)
            return True

    async def get(self, attempt_id: str) -> AttemptRecord:
        async with self._db.read_session() as s:
            row = await s.get(Attempt, attempt_id)
            if row is None:
                raise NotFound(f"no attempt {attempt_id}")
            return AttemptRecord(
                id=row.id,
                campaign_id=row.campaign_id,
                lead_id=row.lead_id,
                number=row.number,
                node_id=row.node_id,
                status=row.status,
                created_at=row.created_at,
                originated_at=row.originated_at,
                ringing_at=row.ringing_at,
                answered_at=row.answered_at,
                connected_at=row.connected_at,
                ended_at=row.ended_at,
                outcome=row.outcome,
                result=row.result,
                cause=row.cause,
                amd=row.amd,
                abandoned=row.abandoned,
                agent_id=row.agent_id,
                pbx_uniqueid=row.pbx_uniqueid,
                recording_file=row.recording_file,
                talk_seconds=row.talk_seconds,
            )

    async def open_attempts(self, node_id: str | None = None) -> list[OpenAttempt]:
        """Attempts not closed yet (for crash recovery: reconcile them with the PBX, close the lost)."""
        query = select(Attempt).where(Attempt.status == "open").order_by(Attempt.created_at)
        if node_id is not None:
            query = query.where(Attempt.node_id == node_id)
        async with self._db.read_session() as s:
            return [
                OpenAttempt(
                    attempt_id=r.id,
                    lead_id=r.lead_id,
                    campaign_id=r.campaign_id,
                    number=r.number,
                    node_id=r.node_id,
                    created_at=r.created_at,
                    answered_at=r.answered_at,
                    connected_at=r.connected_at,
                    agent_id=r.agent_id,
                )
                for r in (await s.execute(query)).scalars()
            ]

    async def abandon_history(self, campaign_id: int, since: datetime) -> list[AbandonSample]:
        """Answered attempts closed since ``since``, oldest first, for the abandonment tracker.

        ``person_answered`` follows the call's result (connected, abandoned, dropped).
        """
        query = (
            select(Attempt.answered_at, Attempt.ended_at, Attempt.result, Attempt.abandoned)
            .where(
                Attempt.campaign_id == campaign_id,
                Attempt.status == "closed",
                Attempt.outcome == "answered",
                Attempt.ended_at >= since,
            )
            .order_by(Attempt.ended_at)
        )
        async with self._db.read_session() as s:
            samples = []
            for answered, ended, result, abandoned in await s.execute(query):
                at = answered or ended
                assert at is not None  # closed attempts always have ended_at
                samples.append(AbandonSample(at, result in PERSON_RESULTS, bool(abandoned)))
            return samples


def _apply_next(lead: Lead, nxt: LeadNext, result: str, at: datetime, *, keep_attempt: bool) -> None:
    lead.status = nxt.status.value
    lead.next_attempt_at = nxt.due_at
    lead.last_result = result
    lead.updated_at = at
    if not keep_attempt:
        lead.current_attempt_id = None


async def _next_for_disposition(
    s: AsyncSession, lead: Lead, record: DispositionRecord, settings: CampaignSettings, now: datetime
) -> LeadNext:
    disposition = lookup(record.code, settings.dispositions)
    times_given = (
        await s.execute(
            select(func.count()).where(
                DispositionRecord.lead_id == lead.id, DispositionRecord.code == record.code
            )
        )
    ).scalar_one()
    return lead_next_for_disposition(
        disposition,
        callback_at=record.callback_at,
        attempts_total=lead.attempt_count,
        times_given=int(times_given),
        rules=settings.retry_rules,
        max_attempts=settings.max_attempts,
        now=now,
    )


# ---------------------------------------------------------------------------
# Dispositions and the customer record


@dataclass(frozen=True, slots=True)
class DispositionResult:
    changed: bool  # False: this attempt already had a disposition; nothing was written
    disposition_id: int
    code: str
    lead_status: LeadStatus  # the lead's status after this call
    add_to_do_not_call: bool  # the caller must put the number on the do-not-call list
    callback_id: int | None
    appointment_id: int | None


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    at: datetime
    campaign: str
    agent_id: str | None
    code: str
    result: str | None
    objections: tuple[str, ...]
    next_actions: tuple[str, ...]
    comments: str | None
    callback_at: datetime | None
    appointment_at: datetime | None


@dataclass(frozen=True, slots=True)
class CustomerRecord:
    id: int
    phone: str
    first_name: str | None
    last_name: str | None
    email: str | None
    identity: Mapping[str, Any]


_IDENTITY_COLUMNS = ("first_name", "last_name", "email")


async def _customer_id(
    s: AsyncSession, dialect: str, phone: str, identity: Mapping[str, Any], now: datetime
) -> int:
    """Find or create the customer of ``phone`` and merge verified identity fields into it."""
    ins = pg_insert(Customer) if dialect == "postgresql" else sqlite_insert(Customer)
    await s.execute(
        ins.values(phone=phone, created_at=now, updated_at=now).on_conflict_do_nothing(
            index_elements=["phone"]
        )
    )
    row = (await s.execute(select(Customer).where(Customer.phone == phone).with_for_update())).scalar_one()
    if identity:
        merged = dict(row.identity or {})
        merged.update(identity)
        row.identity = merged
        for name in _IDENTITY_COLUMNS:
            if identity.get(name):
                setattr(row, name, str(identity[name]))
        row.updated_at = now
    return row.id


class DispositionRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def record_disposition(
        self,
        attempt_id: str,
        code: str,
        agent_id: str | None,
        *,
        now: datetime,
        identity: Mapping[str, Any] | None = None,
        objections: Sequence[str] = (),
        result: str | None = None,
        callback_at: datetime | None = None,
        callback_agent_only: bool = False,
        appointment_at: datetime | None = None,
        appointment_ends_at: datetime | None = None,
        salesperson: str | None = None,
        next_actions: Sequence[str] = (),
        comments: str | None = None,
    ) -> DispositionResult:
        """Qualify an attempt and move its lead on, in one transaction.

        One disposition per attempt: a second call returns the first one with
        ``changed=False``.  If the attempt is still open the lead stays in
        flight and ``close_attempt`` applies the disposition when the call ends.
        """
        async with self._db.session() as s, s.begin():
            return await write_disposition(
                s,
                self._db.engine.dialect.name,
                attempt_id,
                code,
                agent_id,
                now=now,
                identity=identity,
                objections=objections,
                result=result,
                callback_at=callback_at,
                callback_agent_only=callback_agent_only,
                appointment_at=appointment_at,
                appointment_ends_at=appointment_ends_at,
                salesperson=salesperson,
                next_actions=next_actions,
                comments=comments,
            )

    async def pending_wrap_ups(self, ended_before: datetime, campaign_id: int | None = None) -> list[str]:
        """Attempts that reached an agent, ended before ``ended_before`` and have no disposition yet.

        The runtime gives them the campaign's default disposition when the
        wrap-up limit has passed (also after a restart).
        """
        query = (
            select(Lead.current_attempt_id)
            .join(Attempt, Attempt.id == Lead.current_attempt_id)
            .where(Lead.status == LeadStatus.WRAP_UP.value, Attempt.ended_at < ended_before)
        )
        if campaign_id is not None:
            query = query.where(Lead.campaign_id == campaign_id)
        async with self._db.read_session() as s:
            return [a for a in (await s.execute(query)).scalars() if a is not None]


async def write_disposition(
    s: AsyncSession,
    dialect: str,
    attempt_id: str,
    code: str,
    agent_id: str | None,
    *,
    now: datetime,
    identity: Mapping[str, Any] | None = None,
    objections: Sequence[str] = (),
    result: str | None = None,
    callback_at: datetime | None = None,
    callback_agent_only: bool = False,
    appointment_at: datetime | None = None,
    appointment_ends_at: datetime | None = None,
    salesperson: str | None = None,
    next_actions: Sequence[str] = (),
    comments: str | None = None,
) -> DispositionResult:
    """``DispositionRepository.record_disposition`` inside the caller's transaction (a unit of work)."""
    attempt = await s.get(Attempt, attempt_id, with_for_update=True)
    if attempt is None:
        raise NotFound(f"no attempt {attempt_id}")
    existing = (
        await s.execute(select(DispositionRecord).where(DispositionRecord.attempt_id == attempt_id))
    ).scalar_one_or_none()
    if existing is not None:
        lead_status = (await s.execute(select(Lead.status).where(Lead.id == attempt.lead_id))).scalar_one()
        return DispositionResult(
            changed=False,
            disposition_id=existing.id,
            code=existing.code,
            lead_status=LeadStatus(lead_status),
            add_to_do_not_call=lookup(existing.code).fate is LeadFate.DO_NOT_CALL,
            callback_id=None,
            appointment_id=None,
        )
    settings = await _settings_of(s, attempt.campaign_id)
    disposition = lookup(code, settings.dispositions)
    if disposition.needs_callback_at and callback_at is None:  # no time given: within the default delay
        callback_at = callback_dial_at(settings, now, None)
    _check_dates(disposition, now, callback_at, appointment_at)
    customer_id = await _customer_id(s, dialect, attempt.number, identity or {}, now)
    record = DispositionRecord(
        attempt_id=attempt_id,
        lead_id=attempt.lead_id,
        campaign_id=attempt.campaign_id,
        customer_id=customer_id,
        agent_id=agent_id,
        code=disposition.code,
        contact=disposition.contact,
        conversion=disposition.conversion,
        identity=dict(identity) if identity else None,
        objections=list(objections) or None,
        result=result,
        callback_at=callback_at if disposition.needs_callback_at else None,
        appointment_at=appointment_at if disposition.needs_appointment_at else None,
        next_actions=list(next_actions) or None,
        comments=comments,
        wrap_seconds=max(0.0, (now - attempt.ended_at).total_seconds()) if attempt.ended_at else None,
        created_at=now,
    )
    s.add(record)
    await s.flush()
    callback_id = appointment_id = None
    if disposition.needs_callback_at and callback_at is not None:
        callback = Callback(
            lead_id=attempt.lead_id,
            campaign_id=attempt.campaign_id,
            due_at=callback_at,
            agent_id=agent_id if callback_agent_only else None,
            status="pending",
            created_by=agent_id,
            created_at=now,
        )
        s.add(callback)
        await s.flush()
        callback_id = callback.id
        await add_callback_task(s, callback, record, settings, now)
    booked = None
    if disposition.needs_appointment_at:  # booked in the field calendar on this call: name that one
        booked = (
            (
                await s.execute(
                    select(Appointment).where(
                        Appointment.attempt_id == attempt_id, Appointment.status.in_(("booked", "moved"))
                    )
                )
            )
            .scalars()
            .first()
        )
    if disposition.needs_appointment_at and booked is None and await _field_calendar_in_use(s):
        raise DispositionError(
            "book the visit in the field calendar first (the free visits for this customer, or POST "
            "/api/calendar/appointments): an appointment goes only on a salesperson's free slot"
        )
    if booked is not None:
        booked.disposition_id = record.id
        record.appointment_at = booked.starts_at
        appointment_id = booked.id
    if disposition.needs_appointment_at and appointment_at is not None and booked is None:
        appointment = Appointment(
            lead_id=attempt.lead_id,
            campaign_id=attempt.campaign_id,
            customer_id=customer_id,
            disposition_id=record.id,
            starts_at=appointment_at,
            ends_at=appointment_ends_at,
            salesperson=salesperson,
            status="booked",
            notes=comments,
            created_at=now,
        )
        s.add(appointment)
        await s.flush()
        appointment_id = appointment.id
    lead = await s.get(Lead, attempt.lead_id, with_for_update=True)
    assert lead is not None  # attempts.lead_id is a foreign key
    if attempt.status == "closed" and await _decides_lead(s, lead, attempt):
        nxt = await _next_for_disposition(s, lead, record, settings, now)
        _apply_next(lead, nxt, lead.last_result or "", now, keep_attempt=False)
    elif attempt.status == "closed":
        log.warning(
            "disposition %s on attempt %s kept, but lead %s has moved on to a later attempt; "
            "the lead is left as it is",
            disposition.code,
            attempt_id,
            lead.id,
        )
    if disposition.fate is LeadFate.DO_NOT_CALL:
        _audit(s, now, agent_id or "system", "lead.do_not_call", "lead", lead.id, {"attempt": attempt_id})
    return DispositionResult(
        changed=True,
        disposition_id=record.id,
        code=disposition.code,
        lead_status=LeadStatus(lead.status),
        add_to_do_not_call=disposition.fate is LeadFate.DO_NOT_CALL,
        callback_id=callback_id,
        appointment_id=appointment_id,
    )


async def _field_calendar_in_use(s: AsyncSession) -> bool:
    """Salespeople are in the calendar: an appointment must then be one of their free slots."""
    from dialer.calendar.tables import SalespersonRow

    found = await s.execute(select(SalespersonRow.id).where(SalespersonRow.active.is_(True)).limit(1))
    return found.first() is not None


async def _decides_lead(s: AsyncSession, lead: Lead, attempt: Attempt) -> bool:
    """Whether a disposition of this closed attempt sets the lead's next state.

    Yes when the lead waits for it (wrap-up), and also when the call did not
    count as connected (the agent still spoke, e.g. a refusal): then the
    disposition of the lead's latest attempt wins over the retry rule.  Not
    when a later attempt exists or is in flight.
    """
    if lead.current_attempt_id == attempt.id:
        return True
    if lead.current_attempt_id is not None or lead.claimed_by is not None:
        return False
    newer = (
        await s.execute(
            select(func.count()).where(Attempt.lead_id == lead.id, Attempt.created_at > attempt.created_at)
        )
    ).scalar_one()
    return int(newer) == 0


def _check_dates(
    disposition: Disposition, now: datetime, callback_at: datetime | None, appointment_at: datetime | None
) -> None:
    if disposition.needs_callback_at:
        if callback_at is None:
            raise DispositionError(f"disposition {disposition.code!r} needs the callback date and time")
        if callback_at <= now:
            raise DispositionError(
                f"callback time {callback_at.isoformat()} is in the past; choose a later time"
            )
    if disposition.needs_appointment_at:
        if appointment_at is None:
            raise DispositionError(f"disposition {disposition.code!r} needs the appointment date and time")
        if appointment_at <= now:
            raise DispositionError(
                f"appointment time {appointment_at.isoformat()} is in the past; choose a later time"
            )


class CustomerRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, number: str) -> CustomerRecord | None:
        async with self._db.read_session() as s:
            row = (await s.execute(select(Customer).where(Customer.phone == number))).scalar_one_or_none()
            if row is None:
                return None
            return CustomerRecord(
                row.id, row.phone, row.first_name, row.last_name, row.email, row.identity or {}
            )

    async def history(self, number: str, limit: int = 50) -> list[HistoryEntry]:
        """Every disposition given for this number, newest first, across campaigns and agents."""
        query = (
            select(DispositionRecord, Campaign.name)
            .join(Customer, Customer.id == DispositionRecord.customer_id)
            .join(Campaign, Campaign.id == DispositionRecord.campaign_id)
            .where(Customer.phone == number)
            .order_by(DispositionRecord.created_at.desc(), DispositionRecord.id.desc())
            .limit(limit)
        )
        async with self._db.read_session() as s:
            return [
                HistoryEntry(
                    at=d.created_at,
                    campaign=name,
                    agent_id=d.agent_id,
                    code=d.code,
                    result=d.result,
                    objections=tuple(d.objections or ()),
                    next_actions=tuple(d.next_actions or ()),
                    comments=d.comments,
                    callback_at=d.callback_at,
                    appointment_at=d.appointment_at,
                )
                for d, name in (await s.execute(query))
            ]

    async def comments(self, number: str, limit: int = 50) -> list[HistoryEntry]:
        """Only the entries that carry a comment: what the next agent reads first."""
        return [h for h in await self.history(number, limit) if h.comments]


# ---------------------------------------------------------------------------
# Users


class Role(enum.StrEnum):
    AGENT = "agent"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class UserRecord:
    id: str
    name: str
    role: Role
    active: bool
    token_hash: str | None
    created_at: datetime


def _user_record(row: User) -> UserRecord:
    return UserRecord(row.id, row.name, Role(row.role), row.active, row.token_hash, row.created_at)


class UserRepository:
    """People who use the dialer; an agent's id is the one the runtime and reports use."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(
        self,
        user_id: str,
        name: str,
        role: Role,
        *,
        token_hash: str | None = None,
        actor: str = "system",
        now: datetime | None = None,
    ) -> UserRecord:
        if not user_id.strip():
            raise StoreError("user id is empty; give the login, e.g. 'agent12'")
        at = _now(now)
        async with self._db.session() as s:
            try:
                async with s.begin():
                    row = User(
                        id=user_id,
                        name=name,
                        role=Role(role).value,
                        active=True,
                        token_hash=token_hash,
                        created_at=at,
                    )
                    s.add(row)
                    await s.flush()
                    _audit(s, at, actor, "user.create", "user", user_id, {"role": row.role})
            except IntegrityError as exc:
                raise Conflict(f"a user {user_id!r} already exists; choose another id") from exc
            return _user_record(row)

    async def get(self, user_id: str) -> UserRecord | None:
        async with self._db.read_session() as s:
            row = await s.get(User, user_id)
            return None if row is None else _user_record(row)

    async def list(self, role: Role | None = None) -> list[UserRecord]:
        query = select(User).order_by(User.id)
        if role is not None:
            query = query.where(User.role == role.value)
        async with self._db.read_session() as s:
            return [_user_record(r) for r in (await s.execute(query)).scalars()]

    async def update(
        self,
        user_id: str,
        *,
        role: Role | None = None,
        active: bool | None = None,
        token_hash: str | None = None,
        actor: str = "system",
        now: datetime | None = None,
    ) -> UserRecord:
        """Change a user's role, activity or token; each change goes to the audit trail."""
        at = _now(now)
        async with self._db.session() as s, s.begin():
            row = await s.get(User, user_id, with_for_update=True)
            if row is None:
                raise NotFound(f"no user {user_id!r}")
            changed: dict[str, Any] = {}
            if role is not None and row.role != Role(role).value:
                changed["role"] = row.role = Role(role).value
            if active is not None and row.active != active:
                changed["active"] = row.active = active
            if token_hash is not None and row.token_hash != token_hash:
                row.token_hash = token_hash
                changed["token"] = "replaced"
            if changed:
                _audit(s, at, actor, "user.update", "user", user_id, changed)
            return _user_record(row)


__all__ = [
    "AbandonSample",
    "AttemptEvent",
    "AttemptRecord",
    "AttemptRepository",
    "CallResult",
    "CallbackInfo",
    "CampaignRecord",
    "CampaignRepository",
    "ClaimedLead",
    "Conflict",
    "CustomerRecord",
    "CustomerRepository",
    "DispositionRepository",
    "DispositionResult",
    "HistoryEntry",
    "Hopper",
    "LeadRecord",
    "LeadRepository",
    "LeadUnavailable",
    "NewLead",
    "NotFound",
    "OpenAttempt",
    "Role",
    "StoreError",
    "UserRecord",
    "UserRepository",
    "write_disposition",
]
