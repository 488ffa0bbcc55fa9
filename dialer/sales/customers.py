"""The customer record: one per person across campaigns, with who wrote what and when.

What every agent who reaches the customer sees (through their current call
only): the identity fields verified and by whom, every disposition's
objections, results, callback and appointment dates, next actions and
comments, the notes written outside a disposition, and the sales.  Supervisors
search the records and read them; a person's data is exported (JSON) or erased
on request.  Erasure blanks every personal field the dialer holds in clear and
keeps the skeleton of the record (times, outcomes, codes, amounts) for the
figures; the do-not-call entries that protect the person are kept as a keyed
hash (``dnc_erased``), which the compliance gate reads.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.compliance.dnc import GLOBAL, RedisIndex, e164_digits
from dialer.compliance.erased import erased_keyer, keep_hashed
from dialer.compliance.tables import DncEntry
from dialer.domain.campaign import DIALABLE_STATUSES, LeadStatus
from dialer.notify.messages import Notification, Status
from dialer.sales.confirmation import format_price
from dialer.sales.service import sale_ref
from dialer.sales.tables import CustomerErasure, CustomerNote, Sale
from dialer.service import Invalid, NotFound, Refused
from dialer.store.db import Database
from dialer.store.models import (
    Appointment,
    Attempt,
    AuditEntry,
    Callback,
    Campaign,
    Customer,
    DispositionRecord,
    Lead,
)
from dialer.store.repositories import HistoryEntry
from telephony.base import mask_number

log = logging.getLogger(__name__)

# Every node reloads the erased numbers at least this often (the gate's DNC refresh, 1 s, with margin):
# the number leaves the shared index only once every gate refuses it by its hash.
ERASED_SETTLE_S = 2.0
ERASED = "erased"  # what an erased number reads as; a customer's tombstone is "erased-<id>"
MAX_NOTE = 4000


@dataclass(frozen=True, slots=True)
class Verified:
    field: str
    value: str
    by: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class Note:
    id: int
    at: datetime
    author: str
    text: str


@dataclass(frozen=True, slots=True)
class SaleLine:
    id: int
    ref: str
    at: datetime
    product: str
    price: str
    currency: str
    status: str
    withdrawal_end: date | None


@dataclass(frozen=True, slots=True)
class CustomerFile:
    id: int
    number_masked: str
    first_name: str | None
    last_name: str | None
    email: str | None
    address: str | None
    postcode: str | None
    preferred_channel: str | None
    identity: dict[str, Any]
    verified: list[Verified]  # newest verification of each field
    history: list[HistoryEntry]  # newest first (the same entries the agent screen shows)
    notes: list[Note]  # newest first
    sales: list[SaleLine]
    erased: bool = False


@dataclass(frozen=True, slots=True)
class CustomerSummary:
    id: int
    number_masked: str
    first_name: str | None
    last_name: str | None
    email: str | None
    last_contact_at: datetime | None
    erased: bool


@dataclass
class ErasureReport:
    customer_id: int
    counts: dict[str, int] = field(default_factory=dict)


def _is_erased(row: Customer) -> bool:
    return row.phone.startswith(ERASED)


class CustomerRecords:
    def __init__(
        self,
        db: Database,
        *,
        redis_url: str | None = None,
        redis_namespace: str = "dialer:",
        settle_s: float = ERASED_SETTLE_S,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.db = db
        self._redis_url = redis_url  # the nodes' shared DNC index, which holds numbers in clear
        self._redis_namespace = redis_namespace
        self._settle_s = settle_s
        self._wall = wall

    # -- reading ----------------------------------------------------------------------------

    async def search(self, text: str, limit: int = 50) -> list[CustomerSummary]:
        """Records whose number (E.164, or its last digits), name or email match ``text``."""
        text = text.strip()
        if len(text) < 2:
            raise Invalid("give at least 2 characters to search: a name, an email, or a number's last digits")
        pattern = f"%{text.lower().replace('%', '').replace('_', '')}%"
        digits = "".join(c for c in text if c.isdigit())
        conditions = [
            func.lower(Customer.first_name).like(pattern),
            func.lower(Customer.last_name).like(pattern),
            func.lower(
                func.coalesce(Customer.first_name, "") + " " + func.coalesce(Customer.last_name, "")
            ).like(pattern),
            func.lower(Customer.email).like(pattern),
        ]
        if len(digits) >= 4:
            conditions.append(Customer.phone.like(f"%{digits}"))
        last = (
            select(DispositionRecord.customer_id, func.max(DispositionRecord.created_at).label("at"))
            .group_by(DispositionRecord.customer_id)
            .subquery()
        )
        query = (
            select(Customer, last.c.at)
            .outerjoin(last, last.c.customer_id == Customer.id)
            .where(or_(*conditions))
            .order_by(Customer.id.desc())
            .limit(limit)
        )
        async with self.db.read_session() as s:
            return [
                CustomerSummary(c.id, _masked(c), c.first_name, c.last_name, c.email, at, _is_erased(c))
                for c, at in await s.execute(query)
            ]

    async def get(self, customer_id: int) -> CustomerFile:
        async with self.db.read_session() as s:
            row = await s.get(Customer, customer_id)
            if row is None:
                raise NotFound(f"no customer {customer_id}; find them with GET /api/customers?q=...")
            return await _file(s, row)

    async def for_number(self, number: str) -> CustomerFile | None:
        """The record of the person on a call (the agent screen), or None for a first contact."""
        async with self.db.read_session() as s:
            row = (await s.execute(select(Customer).where(Customer.phone == number))).scalar_one_or_none()
            return None if row is None else await _file(s, row)

    async def id_of(self, number: str) -> int | None:
        async with self.db.read_session() as s:
            return (await s.execute(select(Customer.id).where(Customer.phone == number))).scalar_one_or_none()

    # -- writing ----------------------------------------------------------------------------

    async def add_note(
        self,
        customer_id: int | None,
        author: str,
        text: str,
        *,
        number: str | None = None,
        attempt_id: str | None = None,
    ) -> Note:
        """A comment on the record, signed and dated; by number when the person has no record yet."""
        text = text.strip()
        if not text:
            raise Invalid("the note is empty; write what the next agent should know")
        if len(text) > MAX_NOTE:
            raise Invalid(f"the note has {len(text)} characters; keep it under {MAX_NOTE}")
        now = self._wall()
        async with self.db.session() as s, s.begin():
            if customer_id is None:
                assert number is not None
                row = (await s.execute(select(Customer).where(Customer.phone == number))).scalar_one_or_none()
                if row is None:
                    row = Customer(phone=number, created_at=now, updated_at=now)
                    s.add(row)
                    await s.flush()
            else:
                row = await s.get(Customer, customer_id)
                if row is None:
                    raise NotFound(f"no customer {customer_id}")
            if _is_erased(row):
                raise Refused(f"customer {row.id} was erased on request; nothing more is written about them")
            note = CustomerNote(
                customer_id=row.id, author=author, text=text, attempt_id=attempt_id, created_at=now
            )
            s.add(note)
            await s.flush()
            return Note(note.id, now, author, text)

    # -- export and erasure -----------------------------------------------------------------

    async def export(self, customer_id: int, actor: str) -> dict[str, Any]:
        """Everything the dialer holds about the person, as JSON-ready values (the access request)."""
        now = self._wall()
        async with self.db.session() as s, s.begin():
            row = await s.get(Customer, customer_id)
            if row is None:
                raise NotFound(f"no customer {customer_id}")
            number = row.phone
            lead_rows = (await s.execute(select(Lead).where(Lead.phone == number))).scalars().all()
            out: dict[str, Any] = {
                "exported_at": now,
                "customer": _columns(row),
                "leads": [_columns(r) for r in lead_rows],
                "calls": [
                    _columns(r, ("recording_file",))
                    for r in (await s.execute(select(Attempt).where(Attempt.number == number))).scalars()
                ],
                "dispositions": [
                    _columns(r)
                    for r in (
                        await s.execute(
                            select(DispositionRecord).where(DispositionRecord.customer_id == row.id)
                        )
                    ).scalars()
                ],
                "appointments": [
                    _columns(r)
                    for r in (
                        await s.execute(select(Appointment).where(Appointment.customer_id == row.id))
                    ).scalars()
                ],
                "callbacks": [
                    _columns(r)
                    for r in (
                        await s.execute(
                            select(Callback).where(Callback.lead_id.in_([r.id for r in lead_rows]))
                        )
                    ).scalars()
                ],
                "notes": [
                    _columns(r)
                    for r in (
                        await s.execute(select(CustomerNote).where(CustomerNote.customer_id == row.id))
                    ).scalars()
                ],
                "sales": [
                    _columns(r)
                    for r in (await s.execute(select(Sale).where(Sale.customer_id == row.id))).scalars()
                ],
                "messages": [
                    _columns(r, ("attachments", "ical"))
                    for r in (
                        await s.execute(select(Notification).where(Notification.customer_id == row.id))
                    ).scalars()
                ],
                "do_not_call": [
                    _columns(r)
                    for r in (await s.execute(select(DncEntry).where(DncEntry.number == number))).scalars()
                ],
            }
            s.add(_audit(now, actor, "customer.exported", row.id, {}))
        exported: dict[str, Any] = _jsonable(out)
        return exported

    async def erase(self, customer_id: int, actor: str) -> ErasureReport:
        """Erase the person's data in one transaction; their do-not-call entries stay, hashed."""
        keyer = await erased_keyer(self.db.engine)
        now = self._wall()
        report = ErasureReport(customer_id)
        counts = report.counts
        async with self.db.session() as s, s.begin():
            row = await s.get(Customer, customer_id, with_for_update=True)
            if row is None:
                raise NotFound(f"no customer {customer_id}")
            if _is_erased(row):
                raise Refused(f"customer {customer_id} was already erased")
            number = row.phone
            leads = (
                (await s.execute(select(Lead).where(Lead.phone == number).with_for_update())).scalars().all()
            )
            busy = [
                lead.id
                for lead in leads
                if lead.claimed_by is not None or lead.status in (LeadStatus.IN_FLIGHT, LeadStatus.WRAP_UP)
            ]
            open_calls = (
                await s.execute(
                    select(func.count()).where(Attempt.number == number, Attempt.status == "open")
                )
            ).scalar_one()
            if busy or open_calls:
                raise Refused(
                    "a call with this customer is being placed or is in progress; erase once it has ended "
                    "and been qualified (try again in a few minutes)"
                )
            dnc = (
                await s.execute(
                    select(DncEntry.campaign_id, DncEntry.source, DncEntry.expires_at).where(
                        DncEntry.number == number, DncEntry.removed_at.is_(None)
                    )
                )
            ).all()
            entries = [(c, src, exp) for c, src, exp in dnc]
            scopes = {GLOBAL, *(c for c, _, _ in entries if c)}
            counts["dnc_kept_hashed"] = keep_hashed(s, keyer, number, entries, now)
            counts["dnc_entries_deleted"] = _rows(
                await s.execute(delete(DncEntry).where(DncEntry.number == number))
            )
            for lead in leads:
                lead.phone = f"{ERASED}-{lead.id}"
                lead.first_name = lead.last_name = lead.email = lead.external_id = None
                lead.extra = None
                lead.postcode = lead.consent_source = None
                if lead.status in DIALABLE_STATUSES:
                    lead.status = LeadStatus.DONE.value
                    lead.next_attempt_at = None
                lead.updated_at = now
            counts["leads"] = len(leads)
            lead_ids = [lead.id for lead in leads]
            if lead_ids:
                counts["callbacks_cancelled"] = _rows(
                    await s.execute(
                        update(Callback)
                        .where(Callback.lead_id.in_(lead_ids), Callback.status == "pending")
                        .values(status="cancelled")
                    )
                )
            counts["calls"] = _rows(
                await s.execute(update(Attempt).where(Attempt.number == number).values(number=ERASED))
            )
            counts["dispositions"] = _rows(
                await s.execute(
                    update(DispositionRecord)
                    .where(DispositionRecord.customer_id == row.id)
                    .values(identity=None, objections=None, result=None, next_actions=None, comments=None)
                )
            )
            counts["appointments"] = _rows(
                await s.execute(
                    update(Appointment).where(Appointment.customer_id == row.id).values(notes=None)
                )
            )
            counts["notes_deleted"] = _rows(
                await s.execute(delete(CustomerNote).where(CustomerNote.customer_id == row.id))
            )
            messages = (
                (await s.execute(select(Notification).where(Notification.customer_id == row.id)))
                .scalars()
                .all()
            )
            for message in messages:
                message.recipient = ERASED
                message.subject = ERASED
                message.body = ""
                message.attachments = None
                message.ical = None
                if message.status in (Status.PENDING.value, Status.TO_MAIL.value):
                    message.status = Status.FAILED.value
                    message.last_error = "not sent: the customer's data was erased on request"
            counts["messages"] = len(messages)
            row.phone = f"{ERASED}-{row.id}"
            row.first_name = row.last_name = row.email = row.address = row.postcode = None
            row.identity = None
            row.preferred_channel = None
            row.updated_at = now
            s.add(CustomerErasure(customer_id=row.id, erased_by=actor, erased_at=now, counts=dict(counts)))
            s.add(_audit(now, actor, "customer.erased", row.id, dict(counts)))
        if self._redis_url and number.startswith("+"):
            # Removed only once every node's gate has loaded the hashed entries: never a moment unrefused.
            await asyncio.sleep(self._settle_s)
            redis = Redis.from_url(self._redis_url)
            try:
                index = RedisIndex(redis, self._redis_namespace)
                for scope in sorted(scopes):
                    await index.remove(e164_digits(number), scope)
            except (RedisError, OSError) as exc:
                # Still refused (the index and the hash both block it); the number waits for the next rebuild.
                log.warning(
                    "customer %s erased, but the shared DNC index was not cleared: %s", customer_id, exc
                )
                counts["shared_index_not_cleared"] = 1
            finally:
                await redis.aclose()
        log.info("customer %s erased by %s: %s", customer_id, actor, counts)
        return report


def _rows(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def _audit(now: datetime, actor: str, action: str, customer_id: int, detail: dict[str, Any]) -> AuditEntry:
    return AuditEntry(
        at=now, actor=actor, action=action, entity="customer", entity_id=str(customer_id), detail=detail
    )


def _masked(row: Customer) -> str:
    return ERASED if _is_erased(row) else mask_number(row.phone)


def _columns(row: Any, leave_out: Sequence[str] = ()) -> dict[str, Any]:
    return {c.key: getattr(row, c.key) for c in row.__mapper__.column_attrs if c.key not in leave_out}


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


async def _file(s: AsyncSession, row: Customer) -> CustomerFile:
    dispositions = (
        await s.execute(
            select(DispositionRecord, Campaign.name)
            .join(Campaign, Campaign.id == DispositionRecord.campaign_id)
            .where(DispositionRecord.customer_id == row.id)
            .order_by(DispositionRecord.created_at.desc(), DispositionRecord.id.desc())
        )
    ).all()
    verified: dict[str, Verified] = {}
    for d, _ in dispositions:  # newest first: the first time a field is seen is its latest check
        for name, value in (d.identity or {}).items():
            verified.setdefault(name, Verified(name, str(value), d.agent_id, d.created_at))
    notes = (
        await s.execute(
            select(CustomerNote)
            .where(CustomerNote.customer_id == row.id)
            .order_by(CustomerNote.created_at.desc(), CustomerNote.id.desc())
        )
    ).scalars()
    sales = (
        await s.execute(select(Sale).where(Sale.customer_id == row.id).order_by(Sale.id.desc()))
    ).scalars()
    return CustomerFile(
        id=row.id,
        number_masked=_masked(row),
        first_name=row.first_name,
        last_name=row.last_name,
        email=row.email,
        address=row.address,
        postcode=row.postcode,
        preferred_channel=row.preferred_channel,
        identity=dict(row.identity or {}),
        verified=sorted(verified.values(), key=lambda v: v.field),
        history=[
            HistoryEntry(
                d.created_at,
                name,
                d.agent_id,
                d.code,
                d.result,
                tuple(d.objections or ()),
                tuple(d.next_actions or ()),
                d.comments,
                d.callback_at,
                d.appointment_at,
            )
            for d, name in dispositions
        ],
        notes=[Note(n.id, n.created_at, n.author, n.text) for n in notes],
        sales=[
            SaleLine(
                x.id,
                sale_ref(x.attempt_id),
                x.created_at,
                x.product,
                format_price(x.price_cents),
                x.currency,
                x.status,
                x.withdrawal_end,
            )
            for x in sales
        ],
        erased=_is_erased(row),
    )


def file_as_dict(f: CustomerFile) -> dict[str, Any]:
    out: dict[str, Any] = _jsonable(asdict(f))
    return out
