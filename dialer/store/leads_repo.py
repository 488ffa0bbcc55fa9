"""Leads, lead lists and callbacks as the operator sees and changes them, and the import's writer.

Each public method is one transaction.  What this module guarantees:

* :class:`LeadInserter` never fails a batch on a number that is already a lead
  of the campaign (another import running at the same time, a re-import):
  such rows are not inserted and are returned, so the import rejects them as
  duplicates; the list's ``imported`` count and heartbeat are written in the
  batch's own transaction, so a killed import leaves an exact count;
* :meth:`LeadAdmin.repair_interrupted_imports` finds lists left ``importing``
  by an import that stopped (no heartbeat for ``stale_after``) and marks them
  ``interrupted`` with the number of leads they really hold;
* resetting or recycling never touches a lead being dialed or one whose
  person refused calls.
"""

from __future__ import annotations

import enum
import os
import socket
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from dialer.domain.campaign import LeadStatus
from dialer.store.base import SQLITE_CACHE_KIB, SQLITE_IMPORT_CACHE_KIB
from dialer.store.models import AuditEntry, Callback, Campaign, Lead, LeadList, User, utcnow
from dialer.store.repositories import LeadRecord, NotFound, StoreError, lead_record

if TYPE_CHECKING:
    from dialer.store.db import Database

# An `importing` list whose import wrote nothing for this long was killed.
STALE_IMPORT_AFTER = timedelta(minutes=10)
# This process, as an import names its owner: a list whose owner ran on this host and is gone was killed.
HOST = socket.gethostname()[:100]
# How many numbers one duplicate look-up names (SQL parameters per statement).
_LOOKUP_CHUNK = 2000


def _audit(
    session: Any,
    at: datetime,
    actor: str,
    action: str,
    entity: str,
    entity_id: object,
    detail: Mapping[str, Any],
) -> None:
    session.add(
        AuditEntry(
            at=at, actor=actor, action=action, entity=entity, entity_id=str(entity_id), detail=dict(detail)
        )
    )


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# ---------------------------------------------------------------------------
# The import's writer


class LeadInserter:
    """Inserts new leads of one list straight through the driver, many rows per statement.

    For imports of millions of rows: no ORM, no per-row type processing (the
    constant columns are encoded once), one statement per batch (SQLite: an
    ``executemany``; PostgreSQL: ``INSERT ... SELECT FROM unnest(...)``).  A row
    whose number is already a lead of the campaign is skipped by the database
    (``ON CONFLICT DO NOTHING``) and returned by :meth:`insert`.
    """

    COLUMNS = (
        "campaign_id",
        "lead_list_id",
        "status",
        "attempt_count",
        "next_attempt_at",
        "created_at",
        "updated_at",
        "phone",
        "timezones",
        "timezone_source",
        "consent",
        "consent_given_at",
        "consent_source",
        "priority",
        "first_name",
        "last_name",
        "email",
        "external_id",
        "extra",
    )
    PHONE = 7  # index of the phone in a row

    def __init__(self, db: Database, campaign_id: int, lead_list_id: int, now: datetime) -> None:
        self._db = db
        self._sqlite = db.is_sqlite
        self.campaign_id = campaign_id
        self.lead_list_id = lead_list_id
        self._head = (campaign_id, lead_list_id, LeadStatus.NEW.value, 0, *(self.stamp(now),) * 3)
        if self._sqlite:
            marks = ", ".join("?" for _ in self.COLUMNS)
            self._touch = "UPDATE lead_lists SET imported = imported + ?, heartbeat_at = ? WHERE id = ?"
        else:
            marks = ", ".join(f"${i}" for i in range(1, len(self.COLUMNS) + 1))
            self._touch = "UPDATE lead_lists SET imported = imported + $1, heartbeat_at = $2 WHERE id = $3"
        self._sql = (
            f"INSERT INTO {Lead.__tablename__} ({', '.join(self.COLUMNS)}) VALUES ({marks}) "
            "ON CONFLICT (campaign_id, phone) DO NOTHING"
        )
        # PostgreSQL: the whole batch in one statement, one array per column, which says which
        # rows went in (RETURNING), in number order: two imports inserting the same numbers in
        # different orders would each wait for the other's uncommitted row (a deadlock); in one
        # order the later one waits, then skips.
        varying = self.COLUMNS[self.PHONE :]
        types = (
            "text",
            "text",
            "text",
            "bool",
            "timestamptz",
            "text",
            "int",
            "text",
            "text",
            "text",
            "text",
            "text",
        )
        self._pg_sql = (
            f"INSERT INTO {Lead.__tablename__} ({', '.join(self.COLUMNS)}) "
            f"SELECT $1, $2, $3, $4, $5, $5, $5, {', '.join(varying[:-1])}, extra::json "
            f"FROM unnest({', '.join(f'${i}::{t}[]' for i, t in enumerate(types, 6))}) "
            f"AS batch({', '.join(varying)}) ORDER BY phone "
            "ON CONFLICT (campaign_id, phone) DO NOTHING RETURNING phone"
        )

    def stamp(self, when: datetime) -> object:
        """A time as the driver takes it: SQLite keeps naive UTC text in SQLAlchemy's format."""
        utc = when.astimezone(UTC)
        return utc.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f") if self._sqlite else utc

    def row(
        self,
        phone: str,
        timezones: Sequence[str],
        timezone_source: str,
        consent: bool | None,
        consent_given_at: datetime | None,
        consent_source: str | None,
        priority: int,
        first_name: str | None,
        last_name: str | None,
        email: str | None,
        external_id: str | None,
        extra_json: str | None,
    ) -> tuple[Any, ...]:
        """One row for :meth:`insert`; ``extra_json``: the unmapped columns as a JSON object's text."""
        consent_value: Any = consent if consent is None or not self._sqlite else int(consent)
        return (
            *self._head,
            phone,
            ",".join(timezones),
            timezone_source,
            consent_value,
            self.stamp(consent_given_at) if consent_given_at is not None else None,
            consent_source,
            priority,
            first_name,
            last_name,
            email,
            external_id,
            extra_json,
        )

    async def insert(self, rows: Sequence[tuple[Any, ...]]) -> set[str]:
        """Insert rows made by :meth:`row` in one transaction; return the numbers already leads."""
        if not rows:
            return set()
        if not self._sqlite:
            return await self._insert_pg(rows)
        phones = [r[self.PHONE] for r in rows]
        async with self._db.engine.begin() as conn:
            await conn.exec_driver_sql(f"PRAGMA cache_size=-{SQLITE_IMPORT_CACHE_KIB}")
            try:
                return await self._insert_sqlite(conn, rows, phones)
            finally:
                await conn.exec_driver_sql(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")

    async def _insert_sqlite(
        self, conn: AsyncConnection, rows: Sequence[tuple[Any, ...]], phones: list[str]
    ) -> set[str]:
        result = await conn.exec_driver_sql(self._sql, list(rows))
        inserted = result.rowcount
        if inserted is None or inserted < 0 or inserted != len(rows):
            # Some rows were skipped (or the driver cannot say how many went in): which ones?
            query = select(Lead.phone).where(
                Lead.campaign_id == self.campaign_id, Lead.lead_list_id == self.lead_list_id
            )
            ours: set[str] = set()
            for chunk in _chunks(phones, _LOOKUP_CHUNK):
                found = await conn.execute(query.where(Lead.phone.in_(list(chunk))))
                ours.update(p for (p,) in found)
            skipped = {p for p in phones if p not in ours}
        else:
            skipped = set()
        await conn.exec_driver_sql(
            self._touch, [(len(rows) - len(skipped), self.stamp(utcnow()), self.lead_list_id)]
        )
        return skipped

    async def _insert_pg(self, rows: Sequence[tuple[Any, ...]]) -> set[str]:
        columns = list(zip(*rows, strict=True))
        phones: tuple[str, ...] = columns[self.PHONE]
        async with self._db.engine.begin() as conn:
            result = await conn.exec_driver_sql(
                self._pg_sql, (*self._head[:5], *(list(c) for c in columns[self.PHONE :]))
            )
            inserted = {phone for (phone,) in result}
            skipped = set(phones) - inserted if len(inserted) != len(phones) else set()
            await conn.exec_driver_sql(
                self._touch, [(len(inserted), self.stamp(utcnow()), self.lead_list_id)]
            )
        return skipped

    async def claim(self) -> None:
        """Name this process as the list's importer (host:pid), so a killed import is found at once."""
        async with self._db.engine.begin() as conn:
            await conn.execute(
                update(LeadList)
                .where(LeadList.id == self.lead_list_id)
                .values(import_owner=f"{HOST}:{os.getpid()}", heartbeat_at=utcnow())
            )

    async def heartbeat(self) -> None:
        """Say the import is alive when it has written nothing for a while (a long run of rejects)."""
        async with self._db.engine.begin() as conn:
            await conn.exec_driver_sql(self._touch, [(0, self.stamp(utcnow()), self.lead_list_id)])


# ---------------------------------------------------------------------------
# What the operator sees


@dataclass(frozen=True, slots=True)
class LeadListInfo:
    id: int
    campaign_id: int
    campaign: str
    name: str
    status: str  # importing / complete / failed / interrupted
    enabled: bool
    imported: int
    rejected: int
    created_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True, slots=True)
class RepairedList:
    id: int
    name: str
    campaign_id: int
    leads: int  # leads the list really holds
    last_seen: datetime


@dataclass(frozen=True, slots=True)
class CallbackInfo:
    id: int
    lead_id: int
    campaign_id: int
    phone: str  # E.164: mask it before showing it
    due_at: datetime
    agent_id: str | None
    status: str
    created_by: str | None


class ChangeRefused(StoreError):
    """The change would break a rule (a lead being dialed, a person who refused calls)."""


# Leads that reset / recycle never touch, and why.
_UNTOUCHABLE = {
    LeadStatus.IN_FLIGHT: "it is being dialed; wait for the call to end",
    LeadStatus.WRAP_UP: "its call waits for the agent's disposition",
    LeadStatus.DO_NOT_CALL: "the person asked not to be called; that cannot be undone here",
}
# Statuses `recycle` puts back in the list.
RECYCLABLE = (LeadStatus.EXHAUSTED, LeadStatus.DONE, LeadStatus.BLOCKED, LeadStatus.INVALID)


class UpdateOutcome(enum.StrEnum):
    UPDATED = "updated"
    UNBLOCKED = "unblocked"  # updated, and its new consent puts it back in the list


@dataclass(frozen=True, slots=True)
class LeadChange:
    """Fields to change on one lead, by number; None: leave as is."""

    phone: str
    consent: bool | None = None
    consent_given_at: datetime | None = None
    consent_source: str | None = None
    timezones: tuple[str, ...] | None = None
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    external_id: str | None = None
    priority: int | None = None
    extra: Mapping[str, str] | None = None  # merged into the lead's extra fields


class LeadAdmin:
    """Lists, leads and callbacks for the operator's commands."""

    def __init__(self, db: Database) -> None:
        self._db = db

    # -- lead lists ---------------------------------------------------------------

    async def lists(self, campaign_id: int | None = None) -> list[LeadListInfo]:
        query = select(LeadList, Campaign.name).join(Campaign, Campaign.id == LeadList.campaign_id)
        if campaign_id is not None:
            query = query.where(LeadList.campaign_id == campaign_id)
        async with self._db.read_session() as s:
            return [
                LeadListInfo(
                    row.id,
                    row.campaign_id,
                    name,
                    row.name,
                    row.status,
                    row.enabled,
                    row.imported,
                    row.rejected,
                    row.created_at,
                    row.finished_at,
                )
                for row, name in await s.execute(query.order_by(LeadList.id))
            ]

    async def set_list_enabled(self, list_id: int, enabled: bool, *, actor: str = "cli") -> bool:
        """Enable or disable a list; returns False when it already was."""
        at = utcnow()
        async with self._db.session() as s, s.begin():
            row = await s.get(LeadList, list_id)
            if row is None:
                raise NotFound(f"no lead list with id {list_id}; `dialer lists list` shows them")
            if row.enabled == enabled:
                return False
            row.enabled = enabled
            _audit(
                s, at, actor, "lead_list.enable" if enabled else "lead_list.disable", "lead_list", list_id, {}
            )
            return True

    async def repair_interrupted_imports(
        self,
        campaign_id: int | None = None,
        *,
        stale_after: timedelta = STALE_IMPORT_AFTER,
        now: datetime | None = None,
        actor: str = "system",
    ) -> list[RepairedList]:
        """Mark lists whose import stopped midway ``interrupted``, with the leads they really hold.

        An import is known dead when its process ran on this host and is gone,
        or when it has written nothing for ``stale_after`` (another host).
        """
        at = now or utcnow()
        limit = at - stale_after
        query = select(LeadList).where(LeadList.status == "importing")
        if campaign_id is not None:
            query = query.where(LeadList.campaign_id == campaign_id)
        repaired: list[RepairedList] = []
        async with self._db.session() as s, s.begin():
            for row in (await s.execute(query.with_for_update(skip_locked=True))).scalars():
                last = row.heartbeat_at or row.created_at
                if last >= limit and not _gone(row.import_owner):
                    continue
                count = (
                    await s.execute(select(func.count()).select_from(Lead).where(Lead.lead_list_id == row.id))
                ).scalar_one()
                row.status, row.imported, row.finished_at = "interrupted", int(count), at
                _audit(
                    s,
                    at,
                    actor,
                    "leads.import",
                    "lead_list",
                    row.id,
                    {"status": "interrupted", "imported": int(count), "last_seen": last.isoformat()},
                )
                repaired.append(RepairedList(row.id, row.name, row.campaign_id, int(count), last))
        return repaired

    # -- leads ----------------------------------------------------------------------

    async def leads(
        self,
        campaign_id: int,
        *,
        statuses: Collection[LeadStatus] = (),
        list_id: int | None = None,
        after_id: int = 0,
        limit: int = 50,
    ) -> list[LeadRecord]:
        query = select(Lead).where(Lead.campaign_id == campaign_id, Lead.id > after_id)
        if statuses:
            query = query.where(Lead.status.in_([s.value for s in statuses]))
        if list_id is not None:
            query = query.where(Lead.lead_list_id == list_id)
        async with self._db.read_session() as s:
            rows = (await s.execute(query.order_by(Lead.id).limit(limit))).scalars()
            return [lead_record(r) for r in rows]

    async def lead(self, lead_id: int) -> LeadRecord:
        async with self._db.read_session() as s:
            row = await s.get(Lead, lead_id)
            if row is None:
                raise NotFound(f"no lead with id {lead_id}; `dialer leads list --campaign NAME` shows them")
            return lead_record(row)

    async def reset(self, lead_ids: Sequence[int], *, actor: str = "cli") -> list[int]:
        """Put leads back to ``new``, due now, with no attempt counted; all of them or none.

        Raises :class:`ChangeRefused` naming each lead that cannot be reset and why.
        """
        at = utcnow()
        async with self._db.session() as s, s.begin():
            rows = {
                r.id: r
                for r in (
                    await s.execute(select(Lead).where(Lead.id.in_(list(lead_ids))).with_for_update())
                ).scalars()
            }
            problems = [f"lead {i}: no such lead" for i in lead_ids if i not in rows]
            for row in rows.values():
                why = _UNTOUCHABLE.get(LeadStatus(row.status))
                if why is None and row.claimed_by is not None:
                    why = f"node {row.claimed_by} is about to dial it; try again in a few seconds"
                if why is not None:
                    problems.append(f"lead {row.id} ({row.status}): {why}")
            if problems:
                raise ChangeRefused("nothing was reset: " + "; ".join(problems))
            for row in rows.values():
                _audit(
                    s,
                    at,
                    actor,
                    "lead.reset",
                    "lead",
                    row.id,
                    {"from": row.status, "attempt_count": row.attempt_count},
                )
                row.status, row.attempt_count, row.next_attempt_at, row.updated_at = (
                    LeadStatus.NEW.value,
                    0,
                    at,
                    at,
                )
            return sorted(rows)

    async def recycle(
        self,
        campaign_id: int,
        statuses: Collection[LeadStatus],
        *,
        list_id: int | None = None,
        actor: str = "cli",
    ) -> int:
        """Put a campaign's finished leads of ``statuses`` back in the list (``retry``, due now, count 0)."""
        refused = [s for s in statuses if s not in RECYCLABLE]
        if refused:
            raise ChangeRefused(
                f"leads that are {', '.join(s.value for s in refused)} cannot be recycled; "
                f"recyclable statuses: {', '.join(s.value for s in RECYCLABLE)}"
            )
        at = utcnow()
        conditions = [
            Lead.campaign_id == campaign_id,
            Lead.status.in_([s.value for s in statuses]),
            Lead.claimed_by.is_(None),
        ]
        if list_id is not None:
            conditions.append(Lead.lead_list_id == list_id)
        async with self._db.session() as s, s.begin():
            result = await s.execute(
                update(Lead)
                .where(*conditions)
                .values(status=LeadStatus.RETRY.value, attempt_count=0, next_attempt_at=at, updated_at=at)
            )
            count = int(result.rowcount)  # type: ignore[attr-defined]
            _audit(
                s,
                at,
                actor,
                "leads.recycle",
                "campaign",
                campaign_id,
                {"statuses": sorted(s.value for s in statuses), "list_id": list_id, "leads": count},
            )
            return count

    async def apply_changes(
        self, campaign_id: int, changes: Sequence[LeadChange], *, actor: str = "cli"
    ) -> dict[str, UpdateOutcome]:
        """Update leads of a campaign by number, in one transaction; return what happened to each number.

        Numbers that are not leads of the campaign are left out of the answer.
        A ``blocked`` lead (the gate found no consent) that now has consent goes
        back in the list, due now.
        """
        at = utcnow()
        outcome: dict[str, UpdateOutcome] = {}
        by_phone = {c.phone: c for c in changes}
        async with self._db.session() as s, s.begin():
            for chunk in _chunks(list(by_phone), _LOOKUP_CHUNK):
                query = select(Lead).where(Lead.campaign_id == campaign_id, Lead.phone.in_(list(chunk)))
                for row in (await s.execute(query.with_for_update())).scalars():
                    change = by_phone[row.phone]
                    _apply(row, change, at)
                    outcome[row.phone] = UpdateOutcome.UPDATED
                    if row.status == LeadStatus.BLOCKED.value and change.consent and row.claimed_by is None:
                        row.status = LeadStatus.RETRY.value if row.attempt_count else LeadStatus.NEW.value
                        row.next_attempt_at = at
                        outcome[row.phone] = UpdateOutcome.UNBLOCKED
            _audit(
                s,
                at,
                actor,
                "leads.update",
                "campaign",
                campaign_id,
                {
                    "updated": len(outcome),
                    "unblocked": sum(1 for o in outcome.values() if o is UpdateOutcome.UNBLOCKED),
                },
            )
        return outcome

    # -- callbacks ------------------------------------------------------------------

    async def callbacks(
        self,
        campaign_id: int | None = None,
        *,
        agent_id: str | None = None,
        statuses: Collection[str] = ("pending",),
        limit: int = 100,
    ) -> list[CallbackInfo]:
        query = select(Callback, Lead.phone).join(Lead, Lead.id == Callback.lead_id)
        if campaign_id is not None:
            query = query.where(Callback.campaign_id == campaign_id)
        if agent_id is not None:
            query = query.where(Callback.agent_id == agent_id)
        if statuses:
            query = query.where(Callback.status.in_(list(statuses)))
        query = query.order_by(Callback.due_at, Callback.id).limit(limit)
        async with self._db.read_session() as s:
            return [
                CallbackInfo(
                    c.id, c.lead_id, c.campaign_id, phone, c.due_at, c.agent_id, c.status, c.created_by
                )
                for c, phone in await s.execute(query)
            ]

    async def reassign_callback(
        self, callback_id: int, agent_id: str | None, *, actor: str = "cli"
    ) -> str | None:
        """Give a pending callback to another agent (None: to any agent); return the former agent."""
        at = utcnow()
        async with self._db.session() as s, s.begin():
            row = await s.get(Callback, callback_id, with_for_update=True)
            if row is None:
                raise NotFound(f"no callback with id {callback_id}; `dialer callbacks list` shows them")
            if row.status != "pending":
                raise ChangeRefused(
                    f"callback {callback_id} is {row.status}: only a pending callback can be reassigned"
                )
            if agent_id is not None:
                agents = [u for (u,) in await s.execute(select(User.id).where(User.role == "agent"))]
                if agents and agent_id not in agents:
                    raise NotFound(f"no agent {agent_id!r}; agents are: {', '.join(sorted(agents))}")
            before = row.agent_id
            row.agent_id = agent_id
            _audit(
                s, at, actor, "callback.reassign", "callback", callback_id, {"from": before, "to": agent_id}
            )
            return before


def _gone(owner: str | None) -> bool:
    """True when ``owner`` (host:pid) names a process of this host that no longer runs."""
    host, _, pid = (owner or "").rpartition(":")
    if host != HOST or not pid.isdigit():
        return False
    if int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # it runs, as another user
    return False


def _apply(row: Lead, change: LeadChange, at: datetime) -> None:
    if change.consent is not None:
        row.consent = change.consent
    if change.consent_given_at is not None:
        row.consent_given_at = change.consent_given_at
    if change.consent_source is not None:
        row.consent_source = change.consent_source
    if change.timezones is not None:
        row.timezones, row.timezone_source = ",".join(change.timezones), "column"
    for name in ("first_name", "last_name", "email", "external_id", "priority"):
        value = getattr(change, name)
        if value is not None:
            setattr(row, name, value)
    if change.extra:
        row.extra = {**(row.extra or {}), **change.extra}
    row.updated_at = at


__all__ = [
    "RECYCLABLE",
    "STALE_IMPORT_AFTER",
    "CallbackInfo",
    "ChangeRefused",
    "LeadAdmin",
    "LeadChange",
    "LeadInserter",
    "LeadListInfo",
    "RepairedList",
    "UpdateOutcome",
]
