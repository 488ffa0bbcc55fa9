"""The field calendar's use cases: offer free slots, book, move and cancel visits, manage salespeople.

Booking is one unit of work: the salesperson's row is locked (``SELECT ... FOR
UPDATE``), their calendar read again and the visit checked against it, then
the appointment and both notifications (the customer by their preferred
channel, the salesperson by email with the invitation) are written together.
Two agents booking the same salesperson at the same moment on two nodes
queue on that lock: the second sees the first's appointment and is refused
with the reason.  On SQLite every write transaction already holds the one
write lock.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.calendar.invite import Invitation, ics
from dialer.calendar.model import (
    CalendarError,
    Place,
    Salesperson,
    check_timezone,
    hours_from_json,
    hours_to_json,
    normalize_postcode,
    parse_areas,
    parse_hours,
)
from dialer.calendar.slots import Slot, Visit, check_visit, free_slots
from dialer.calendar.tables import CalendarSettingsRow, SalespersonRow
from dialer.calendar.travel import CalendarConfig
from dialer.notify.messages import Channel, queue_notification
from dialer.notify.routing import route
from dialer.notify.worker import wake_workers
from dialer.service import Invalid, NotFound, Refused
from dialer.service.uow import SqlUnitOfWork
from dialer.store.db import Database
from dialer.store.models import Appointment, Attempt, Customer, Lead
from dialer.store.repositories import _customer_id

log = logging.getLogger(__name__)

LIVE = ("booked", "moved")
_ID = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True, slots=True)
class AppointmentView:
    id: int
    salesperson_id: str | None
    starts_at: datetime
    ends_at: datetime | None
    postcode: str | None
    status: str
    sequence: int
    attempt_id: str | None
    lead_id: int
    campaign_id: int
    booked_by: str | None
    disposition_id: int | None


def _view(row: Appointment) -> AppointmentView:
    return AppointmentView(
        row.id,
        row.salesperson,
        row.starts_at,
        row.ends_at,
        row.postcode,
        row.status,
        row.sequence,
        row.attempt_id,
        row.lead_id,
        row.campaign_id,
        row.booked_by,
        row.disposition_id,
    )


def salesperson_of(row: SalespersonRow) -> Salesperson:
    home = Place(row.home_postcode, row.home_lat, row.home_lon)
    return Salesperson(
        row.id,
        row.name,
        row.email,
        row.timezone,
        home,
        tuple(row.areas),
        hours_from_json(row.hours),
        row.active,
    )


@dataclass(frozen=True, slots=True)
class _Party:
    """Who the visit is for, and how they want to hear of it."""

    name: str
    channel: Channel
    recipient: str
    email: str | None


class CalendarService:
    def __init__(
        self,
        db: Database,
        *,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
        organizer: str = "calendar@dialer.invalid",
    ) -> None:
        self.db = db
        self._wall = wall
        self._organizer = organizer

    # -- settings --------------------------------------------------------------------------

    async def config(self) -> CalendarConfig:
        async with self.db.read_session() as s:
            row = await s.get(CalendarSettingsRow, 1)
        return CalendarConfig() if row is None else CalendarConfig.from_dict(row.config)

    async def set_config(self, config: CalendarConfig, actor: str) -> CalendarConfig:
        now = self._wall()
        async with SqlUnitOfWork(self.db) as uow:
            row = await uow.session.get(CalendarSettingsRow, 1, with_for_update=True)
            if row is None:
                uow.session.add(
                    CalendarSettingsRow(id=1, config=config.to_dict(), updated_at=now, updated_by=actor)
                )
            else:
                row.config, row.updated_at, row.updated_by = config.to_dict(), now, actor
            await uow.commit()
        return config

    # -- salespeople -----------------------------------------------------------------------

    async def salespeople(self, *, include_inactive: bool = False) -> list[Salesperson]:
        async with self.db.read_session() as s:
            query = select(SalespersonRow).order_by(SalespersonRow.id)
            if not include_inactive:
                query = query.where(SalespersonRow.active.is_(True))
            return [salesperson_of(r) for r in (await s.execute(query)).scalars()]

    async def salesperson(self, salesperson_id: str) -> Salesperson:
        async with self.db.read_session() as s:
            row = await s.get(SalespersonRow, salesperson_id)
        if row is None:
            raise NotFound(f"no salesperson {salesperson_id!r}; see `dialer salespeople list`")
        return salesperson_of(row)

    async def add_salesperson(
        self,
        salesperson_id: str,
        *,
        name: str,
        email: str,
        timezone: str,
        home_postcode: str,
        areas: str | Sequence[str],
        hours: str,
        home_lat: float | None = None,
        home_lon: float | None = None,
    ) -> Salesperson:
        if not _ID.match(salesperson_id):
            raise Invalid(f"salesperson id {salesperson_id!r}: use 1-64 letters, digits, . _ @ -")
        row = SalespersonRow(id=salesperson_id, active=True, created_at=self._wall(), updated_at=self._wall())
        self._fill(row, name, email, timezone, home_postcode, areas, hours, home_lat, home_lon)
        async with SqlUnitOfWork(self.db) as uow:
            if await uow.session.get(SalespersonRow, salesperson_id) is not None:
                raise Refused(f"salesperson {salesperson_id!r} exists already; change them instead")
            uow.session.add(row)
            await uow.commit()
        return salesperson_of(row)

    async def update_salesperson(
        self,
        salesperson_id: str,
        *,
        name: str | None = None,
        email: str | None = None,
        timezone: str | None = None,
        home_postcode: str | None = None,
        areas: str | Sequence[str] | None = None,
        hours: str | None = None,
        home_lat: float | None = None,
        home_lon: float | None = None,
        active: bool | None = None,
    ) -> Salesperson:
        """Change some fields; booked appointments stay (move or cancel those that no longer fit)."""
        async with SqlUnitOfWork(self.db) as uow:
            row = await uow.session.get(SalespersonRow, salesperson_id, with_for_update=True)
            if row is None:
                raise NotFound(f"no salesperson {salesperson_id!r}; see `dialer salespeople list`")
            current = salesperson_of(row)
            self._fill(
                row,
                name if name is not None else row.name,
                email if email is not None else row.email,
                timezone if timezone is not None else row.timezone,
                home_postcode if home_postcode is not None else row.home_postcode,
                areas if areas is not None else current.areas,
                hours if hours is not None else None,
                home_lat if home_lat is not None else row.home_lat,
                home_lon if home_lon is not None else row.home_lon,
            )
            if active is not None:
                row.active = active
            row.updated_at = self._wall()
            await uow.commit()
            return salesperson_of(row)

    @staticmethod
    def _fill(
        row: SalespersonRow,
        name: str,
        email: str,
        timezone: str,
        home_postcode: str,
        areas: str | Sequence[str],
        hours: str | None,
        home_lat: float | None,
        home_lon: float | None,
    ) -> None:
        try:
            if not name.strip() or len(name) > 200:
                raise CalendarError("give the salesperson's name (at most 200 characters)")
            if not _EMAIL.match(email) or len(email) > 320:
                raise CalendarError(f"{email!r} is not an email address; the invitations go there")
            if not normalize_postcode(home_postcode) or len(home_postcode) > 20:
                raise CalendarError("give the home base's postcode (at most 20 characters)")
            if (home_lat is None) != (home_lon is None):
                raise CalendarError("give both the home base's latitude and longitude, or neither")
            if (
                home_lat is not None
                and home_lon is not None
                and not (-90 <= home_lat <= 90 and -180 <= home_lon <= 180)
            ):
                raise CalendarError(
                    "the home base's coordinates are out of range (latitude ±90, longitude ±180)"
                )
            row.name, row.email, row.timezone = name.strip(), email, check_timezone(timezone)
            row.home_postcode = normalize_postcode(home_postcode)
            row.home_lat, row.home_lon = home_lat, home_lon
            row.areas = list(parse_areas(areas))
            if hours is not None:
                row.hours = hours_to_json(parse_hours(hours))
        except CalendarError as exc:
            raise Invalid(str(exc)) from None

    # -- slots -----------------------------------------------------------------------------

    async def offer_slots(self, postcode: str, count: int = 5) -> list[Slot]:
        """The next ``count`` free slots, over every salesperson covering ``postcode``."""
        place = _place(postcode)
        now = self._wall()
        config = await self.config()
        salespeople = [sp for sp in await self.salespeople() if sp.covers(place.postcode)]
        if not salespeople:
            raise Refused(
                f"no salesperson covers postcode {place.postcode}; check the postcode with the customer"
            )
        async with self.db.read_session() as s:
            visits = {
                sp.id: await _visits(
                    s, sp.id, now - timedelta(days=1), now + timedelta(days=config.horizon_days + 2)
                )
                for sp in salespeople
            }
        return free_slots(salespeople, visits, place, config, now, count)

    async def postcode_of_call(
        self, agent_id: str, attempt_id: str, *, supervisor: bool = False, on_desk: bool = False
    ) -> str:
        """Where the customer of this call is: the lead's postcode, else the customer record's.

        ``on_desk``: the call is on the agent's desk now (the record names the agent only once it ends).
        """
        async with self.db.read_session() as s:
            attempt = await self._attempt(s, agent_id, attempt_id, supervisor or on_desk)
            postcode = await _postcode(s, attempt)
        if postcode is None:
            raise Invalid("the customer has no postcode in the record: ask for it and give it (postcode=...)")
        return postcode

    # -- booking ---------------------------------------------------------------------------

    async def book(
        self,
        agent_id: str,
        attempt_id: str,
        salesperson_id: str,
        starts_at: datetime,
        *,
        postcode: str | None = None,
        notes: str | None = None,
        supervisor: bool = False,
        on_desk: bool = False,
    ) -> AppointmentView:
        """Book a visit for the customer of the agent's call; refused with the reason when it does not fit.

        ``on_desk``: the call is on the agent's desk now, talking or in wrap-up (see ``postcode_of_call``).
        """
        starts_at = _utc(starts_at)
        now = self._wall()
        config = await self.config()
        async with SqlUnitOfWork(self.db) as uow:
            s = uow.session
            sp = await _lock_salesperson(s, salesperson_id)
            attempt = await self._attempt(s, agent_id, attempt_id, supervisor or on_desk)
            live = (
                await s.execute(
                    select(Appointment.id).where(
                        Appointment.attempt_id == attempt_id, Appointment.status.in_(LIVE)
                    )
                )
            ).scalar()
            if live is not None:
                raise Refused(f"appointment {live} is already booked on this call: move it instead")
            where = postcode or await _postcode(s, attempt)
            if where is None:
                raise Invalid(
                    "the customer has no postcode in the record: ask for it and give it (postcode=...)"
                )
            place = _place(where)
            ends_at = starts_at + config.appointment
            await _check(s, sp, starts_at, ends_at, place, config, now, exclude=None)
            customer_id = await _customer_id(s, self.db.engine.dialect.name, attempt.number, {}, now)
            row = Appointment(
                lead_id=attempt.lead_id,
                campaign_id=attempt.campaign_id,
                customer_id=customer_id,
                disposition_id=None,
                starts_at=starts_at,
                ends_at=ends_at,
                salesperson=sp.id,
                status="booked",
                notes=notes,
                created_at=now,
                attempt_id=attempt_id,
                postcode=place.postcode,
                booked_by=agent_id,
                sequence=0,
                updated_at=now,
            )
            s.add(row)
            await s.flush()
            lead = await s.get(Lead, attempt.lead_id)
            if lead is not None and postcode and not lead.postcode:
                lead.postcode = place.postcode
            party = await _customer_party(s, attempt, lead)
            self._notify(s, row, sp, party, "booked", now)
            view = _view(row)
            await uow.commit()
        wake_workers()  # the invitations go now, not at the worker's next poll
        return view

    async def move(
        self,
        actor: str,
        appointment_id: int,
        starts_at: datetime,
        *,
        salesperson_id: str | None = None,
        supervisor: bool = False,
    ) -> AppointmentView:
        """Move a visit (another time or salesperson): checked like a booking, both sides told again."""
        starts_at = _utc(starts_at)
        now = self._wall()
        config = await self.config()
        async with SqlUnitOfWork(self.db) as uow:
            s = uow.session
            current = await self._appointment(s, actor, appointment_id, supervisor, lock=False)
            old_id = current.salesperson or ""
            new_id = salesperson_id or old_id
            locked = {
                i: await _lock_salesperson(s, i, to_book=i == new_id) for i in sorted({old_id, new_id}) if i
            }
            row = await self._appointment(s, actor, appointment_id, supervisor, lock=True)
            if row.salesperson != current.salesperson:
                raise Refused(f"appointment {appointment_id} changed meanwhile: look at it again")
            sp = locked.get(new_id)
            if sp is None:
                raise Invalid("say which salesperson takes the visit (salesperson_id)")
            place = _place(row.postcode or "")
            ends_at = starts_at + config.appointment
            await _check(s, sp, starts_at, ends_at, place, config, now, exclude=row.id)
            row.starts_at, row.ends_at, row.salesperson = starts_at, ends_at, sp.id
            row.status, row.sequence, row.updated_at = "moved", row.sequence + 1, now
            attempt = await s.get(Attempt, row.attempt_id) if row.attempt_id else None
            lead = await s.get(Lead, row.lead_id)
            party = await _customer_party(s, attempt, lead, row.customer_id)
            old = locked.get(old_id)
            if old is not None and old.id != sp.id:
                self._tell_salesperson(s, row, old, party, "cancelled", now)
            self._notify(s, row, sp, party, "moved", now)
            view = _view(row)
            await uow.commit()
        wake_workers()  # the invitations go now, not at the worker's next poll
        return view

    async def cancel(self, actor: str, appointment_id: int, *, supervisor: bool = False) -> AppointmentView:
        """Cancel a visit: the slot is free again; both sides are told (the invitation: METHOD:CANCEL)."""
        now = self._wall()
        async with SqlUnitOfWork(self.db) as uow:
            s = uow.session
            current = await self._appointment(s, actor, appointment_id, supervisor, lock=False)
            sp = (
                await _lock_salesperson(s, current.salesperson, to_book=False)
                if current.salesperson
                else None
            )
            row = await self._appointment(s, actor, appointment_id, supervisor, lock=True)
            row.status, row.sequence, row.updated_at = "cancelled", row.sequence + 1, now
            attempt = await s.get(Attempt, row.attempt_id) if row.attempt_id else None
            lead = await s.get(Lead, row.lead_id)
            party = await _customer_party(s, attempt, lead, row.customer_id)
            if sp is not None:
                self._notify(s, row, sp, party, "cancelled", now)
            view = _view(row)
            await uow.commit()
        wake_workers()  # the invitations go now, not at the worker's next poll
        return view

    async def appointments(
        self,
        *,
        salesperson_id: str | None = None,
        day: datetime | None = None,
        include_cancelled: bool = False,
        limit: int = 500,
    ) -> list[AppointmentView]:
        """Appointments of the field calendar, soonest first: one salesperson's, one UTC day's, or all."""
        query = select(Appointment).where(Appointment.salesperson.is_not(None))
        if salesperson_id is not None:
            query = query.where(Appointment.salesperson == salesperson_id)
        if day is not None:
            start = _utc(day).replace(hour=0, minute=0, second=0, microsecond=0)
            query = query.where(
                Appointment.starts_at >= start, Appointment.starts_at < start + timedelta(days=1)
            )
        if not include_cancelled:
            query = query.where(Appointment.status.in_(LIVE))
        async with self.db.read_session() as s:
            rows = (
                await s.execute(query.order_by(Appointment.starts_at, Appointment.id).limit(limit))
            ).scalars()
            return [_view(r) for r in rows]

    # -- helpers ---------------------------------------------------------------------------

    async def _attempt(self, s: AsyncSession, agent_id: str, attempt_id: str, supervisor: bool) -> Attempt:
        attempt = await s.get(Attempt, attempt_id)
        if attempt is None or (not supervisor and attempt.agent_id != agent_id):
            raise NotFound(f"you have no call {attempt_id}")
        return attempt

    async def _appointment(
        self, s: AsyncSession, actor: str, appointment_id: int, supervisor: bool, *, lock: bool
    ) -> Appointment:
        row = await s.get(Appointment, appointment_id, with_for_update=lock, populate_existing=lock)
        if row is None or row.salesperson is None or (not supervisor and row.booked_by != actor):
            raise NotFound(f"no appointment {appointment_id} of yours in the field calendar")
        if row.status not in LIVE:
            raise Refused(f"appointment {appointment_id} is {row.status}: book a new one instead")
        return row

    def _notify(
        self,
        s: AsyncSession,
        row: Appointment,
        sp: Salesperson,
        party: _Party | None,
        what: str,
        now: datetime,
    ) -> None:
        self._tell_salesperson(s, row, sp, party, what, now)
        if party is None:
            return
        local = row.starts_at.astimezone(sp.zone)
        when = f"{local:%A %d %B %Y at %H:%M} ({sp.timezone})"
        text = {
            "booked": f"Your appointment with {sp.name} is booked for {when}, postcode {row.postcode}.",
            "moved": f"Your appointment with {sp.name} has been moved to {when}, postcode {row.postcode}.",
            "cancelled": f"Your appointment with {sp.name} on {when} has been cancelled.",
        }[what]
        invite = None
        if party.channel is Channel.EMAIL:
            invite = ics(self._invitation(row, sp, party.recipient, party.name, what), now)
        queue_notification(
            s,
            channel=party.channel,
            recipient=party.recipient,
            subject=f"Appointment {what}: {local:%a %d %b %H:%M}",
            body=text,
            reason=f"appointment.{what}",
            now=now,
            ref=f"appointment:{row.id}",
            ical=invite,
            campaign_id=row.campaign_id,
            customer_id=row.customer_id,
        )

    def _tell_salesperson(
        self,
        s: AsyncSession,
        row: Appointment,
        sp: Salesperson,
        party: _Party | None,
        what: str,
        now: datetime,
    ) -> None:
        local = row.starts_at.astimezone(sp.zone)
        who = party.name if party is not None else "the customer"
        body = (
            f"Visit {what}: {who}, postcode {row.postcode}, {local:%A %d %B %Y %H:%M}-"
            f"{(row.ends_at or row.starts_at).astimezone(sp.zone):%H:%M} ({sp.timezone}). "
            f"Appointment {row.id}, version {row.sequence}."
        )
        queue_notification(
            s,
            channel=Channel.EMAIL,
            recipient=sp.email,
            subject=f"Visit {what}: {local:%a %d %b %H:%M}, {row.postcode}",
            body=body,
            reason=f"appointment.{what}",
            now=now,
            ref=f"appointment:{row.id}",
            ical=ics(self._invitation(row, sp, sp.email, sp.name, what), now),
            campaign_id=row.campaign_id,
            customer_id=row.customer_id,
        )

    def _invitation(self, row: Appointment, sp: Salesperson, email: str, name: str, what: str) -> Invitation:
        return Invitation(
            appointment_id=row.id,
            sequence=row.sequence,
            starts_at=row.starts_at,
            ends_at=row.ends_at or row.starts_at,
            summary=f"Visit with {sp.name}, postcode {row.postcode}",
            location=row.postcode or "",
            organizer_email=self._organizer,
            attendee_email=email,
            attendee_name=name,
            cancelled=what == "cancelled",
        )


def _utc(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise Invalid(
            f"{at.isoformat()} has no time zone: give it with its offset, e.g. 2026-12-08T10:00:00+01:00"
        )
    return at.astimezone(UTC)


def _place(postcode: str) -> Place:
    code = normalize_postcode(postcode)
    if not code or len(code) > 20 or not code.replace("-", "").isalnum():
        raise Invalid(f"postcode {postcode!r} is not a postcode: give letters and digits, at most 20")
    return Place(code)


async def _lock_salesperson(s: AsyncSession, salesperson_id: str, *, to_book: bool = True) -> Salesperson:
    """The salesperson, their row locked until the transaction ends: bookings for them queue here.

    ``to_book``: a new visit goes to them, so they must be active (an inactive one's visits can still be
    moved away or cancelled).
    """
    row = (
        await s.execute(select(SalespersonRow).where(SalespersonRow.id == salesperson_id).with_for_update())
    ).scalar_one_or_none()
    if row is None:
        raise NotFound(f"no salesperson {salesperson_id!r}")
    if to_book and not row.active:
        raise Refused(f"salesperson {row.name} is not active; choose another one")
    return salesperson_of(row)


async def _visits(
    s: AsyncSession, salesperson_id: str, start: datetime, end: datetime, exclude: int | None = None
) -> list[Visit]:
    query = select(Appointment).where(
        Appointment.salesperson == salesperson_id,
        Appointment.status.in_(LIVE),
        Appointment.starts_at < end,
        Appointment.starts_at >= start - timedelta(days=1),
    )
    if exclude is not None:
        query = query.where(Appointment.id != exclude)
    rows = (await s.execute(query)).scalars()
    return [
        Visit(r.id, r.starts_at, r.ends_at or r.starts_at + timedelta(hours=1), Place(r.postcode or ""))
        for r in rows
        if r.ends_at is None or r.ends_at > start
    ]


async def _check(
    s: AsyncSession,
    sp: Salesperson,
    starts_at: datetime,
    ends_at: datetime,
    place: Place,
    config: CalendarConfig,
    now: datetime,
    *,
    exclude: int | None,
) -> None:
    visits = await _visits(s, sp.id, starts_at - timedelta(days=2), ends_at + timedelta(days=2), exclude)
    refusal = check_visit(sp, visits, starts_at, ends_at, place, config.travel, now)
    if refusal is not None:
        raise Refused(f"{refusal.reason.value}: {refusal.message}")


async def _postcode(s: AsyncSession, attempt: Attempt) -> str | None:
    lead = await s.get(Lead, attempt.lead_id)
    if lead is not None and lead.postcode:
        return lead.postcode
    customer = (
        await s.execute(select(Customer).where(Customer.phone == attempt.number))
    ).scalar_one_or_none()
    return customer.postcode if customer is not None else None


async def _customer_party(
    s: AsyncSession, attempt: Attempt | None, lead: Lead | None, customer_id: int | None = None
) -> _Party | None:
    """How the customer hears of the visit: their preferred channel, else whatever reaches them in writing.

    The rule is ``dialer.notify.routing``'s, with the visit as something that must be in writing
    (a customer who prefers the telephone still gets the time and place); None when nothing on
    record reaches them (the salesperson is still told).
    """
    customer: Customer | None = None
    if customer_id is not None:
        customer = await s.get(Customer, customer_id)
    elif attempt is not None:
        found = await s.execute(select(Customer).where(Customer.phone == attempt.number))
        customer = found.scalar_one_or_none()
    phone = attempt.number if attempt is not None else customer.phone if customer is not None else None
    prefer = (customer.preferred_channel if customer is not None else None) or (
        lead.preferred_channel if lead is not None else None
    )
    email = (customer.email if customer is not None else None) or (lead.email if lead is not None else None)
    address = customer.address if customer is not None else None
    first = (customer.first_name if customer else None) or (lead.first_name if lead else None) or ""
    last = (customer.last_name if customer else None) or (lead.last_name if lead else None) or ""
    name = f"{first} {last}".strip() or "Customer"
    try:
        chosen = route(prefer, email=email, phone=phone, address=address, required=True)
    except ValueError:  # a preference the routing does not know: as if none was recorded
        chosen = route(None, email=email, phone=phone, address=address, required=True)
    if chosen.channel is None or chosen.recipient is None:
        log.info("appointment: the customer cannot be told in writing (%s)", chosen.reason)
        return None
    return _Party(name, chosen.channel, chosen.recipient, email)
