"""The field salespeople's calendar: free slots, bookings."""

from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query

from dialer.api.auth import RANK, Admin, Anyone, Supervisor
from dialer.api.calendar_schemas import (
    AppointmentOut,
    BookIn,
    CalendarConfigIn,
    MoveIn,
    SalespersonIn,
    SalespersonOut,
    SalespersonPatch,
    SlotOut,
    SlotsOut,
)
from dialer.calendar.model import CalendarError, Salesperson, format_hours
from dialer.calendar.travel import CalendarConfig
from dialer.service import Invalid
from dialer.service.accounts import Principal
from dialer.service.calendar import AppointmentView, CalendarService
from dialer.service.desk import Desk
from dialer.store.repositories import Role

AppointmentId = Annotated[int, Path(ge=1, le=2**31 - 1)]
SalespersonId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._@-]+$")]


def _supervises(who: Principal) -> bool:
    return RANK[who.role] >= RANK[Role.SUPERVISOR]


def _appointment_out(a: AppointmentView) -> AppointmentOut:
    return AppointmentOut(
        id=a.id,
        salesperson_id=a.salesperson_id,
        starts_at=a.starts_at,
        ends_at=a.ends_at,
        postcode=a.postcode,
        status=a.status,
        sequence=a.sequence,
        attempt_id=a.attempt_id,
        lead_id=a.lead_id,
        campaign_id=a.campaign_id,
        booked_by=a.booked_by,
        disposition_id=a.disposition_id,
    )


def _salesperson_out(sp: Salesperson) -> SalespersonOut:
    return SalespersonOut(
        id=sp.id,
        name=sp.name,
        email=sp.email,
        timezone=sp.timezone,
        home_postcode=sp.home.postcode,
        home_lat=sp.home.lat,
        home_lon=sp.home.lon,
        areas=list(sp.areas),
        hours=format_hours(sp.hours),
        active=sp.active,
    )


def router(desk: Desk) -> APIRouter:
    calendar = CalendarService(desk.db)
    r = APIRouter(prefix="/api/calendar", tags=["calendar"])

    def on_desk(who: Principal, attempt_id: str) -> bool:
        """The call is on this agent's desk now (the record names its agent only once it ends)."""
        return desk.status(who.user_id).attempt_id == attempt_id

    @r.get("/slots", response_model=SlotsOut)
    async def slots(
        who: Anyone,
        attempt_id: Annotated[str | None, Query(max_length=64, pattern=r"^[A-Za-z0-9._-]+$")] = None,
        postcode: Annotated[str | None, Query(max_length=20, pattern=r"^[A-Za-z0-9 -]+$")] = None,
        count: Annotated[int, Query(ge=1, le=50)] = 5,
    ) -> SlotsOut:
        """The next free slots for the customer of a call (its postcode), or for a postcode."""
        if postcode is None and attempt_id is None:
            raise Invalid("give attempt_id (the call on your desk) or postcode")
        if postcode is None and attempt_id is not None:
            postcode = await calendar.postcode_of_call(
                who.user_id, attempt_id, supervisor=_supervises(who), on_desk=on_desk(who, attempt_id)
            )
        assert postcode is not None
        found = await calendar.offer_slots(postcode, count)
        return SlotsOut(
            postcode="".join(postcode.split()).upper(),
            slots=[
                SlotOut(
                    salesperson_id=s.salesperson_id,
                    salesperson_name=s.salesperson_name,
                    starts_at=s.starts_at,
                    ends_at=s.ends_at,
                )
                for s in found
            ],
        )

    @r.post("/appointments", response_model=AppointmentOut, status_code=201)
    async def book(who: Anyone, body: BookIn) -> AppointmentOut:
        """Book a visit for the customer of your call (checked again: someone may have taken the slot)."""
        booked = await calendar.book(
            who.user_id,
            body.attempt_id,
            body.salesperson_id,
            body.starts_at,
            postcode=body.postcode,
            notes=body.notes,
            supervisor=_supervises(who),
            on_desk=on_desk(who, body.attempt_id),
        )
        return _appointment_out(booked)

    @r.patch("/appointments/{appointment_id}", response_model=AppointmentOut)
    async def move(who: Anyone, appointment_id: AppointmentId, body: MoveIn) -> AppointmentOut:
        """Move a visit (the booking agent or a supervisor); the customer and the salesperson are told."""
        moved = await calendar.move(
            who.user_id,
            appointment_id,
            body.starts_at,
            salesperson_id=body.salesperson_id,
            supervisor=_supervises(who),
        )
        return _appointment_out(moved)

    @r.delete("/appointments/{appointment_id}", response_model=AppointmentOut)
    async def cancel(who: Anyone, appointment_id: AppointmentId) -> AppointmentOut:
        """Cancel a visit (the booking agent or a supervisor); the customer and the salesperson are told."""
        return _appointment_out(
            await calendar.cancel(who.user_id, appointment_id, supervisor=_supervises(who))
        )

    @r.get("/appointments", response_model=list[AppointmentOut])
    async def appointments(
        who: Supervisor,
        salesperson_id: Annotated[str | None, Query(max_length=64)] = None,
        day: Annotated[date | None, Query(description="a UTC day, YYYY-MM-DD")] = None,
        include_cancelled: bool = False,
    ) -> list[AppointmentOut]:
        found = await calendar.appointments(
            salesperson_id=salesperson_id,
            day=None if day is None else datetime(day.year, day.month, day.day, tzinfo=UTC),
            include_cancelled=include_cancelled,
        )
        return [_appointment_out(a) for a in found]

    @r.get("/salespeople", response_model=list[SalespersonOut])
    async def salespeople(who: Supervisor, include_inactive: bool = False) -> list[SalespersonOut]:
        return [_salesperson_out(sp) for sp in await calendar.salespeople(include_inactive=include_inactive)]

    @r.post("/salespeople", response_model=SalespersonOut, status_code=201)
    async def add_salesperson(who: Admin, body: SalespersonIn) -> SalespersonOut:
        added = await calendar.add_salesperson(
            body.id,
            name=body.name,
            email=body.email,
            timezone=body.timezone,
            home_postcode=body.home_postcode,
            areas=body.areas,
            hours=body.hours,
            home_lat=body.home_lat,
            home_lon=body.home_lon,
        )
        return _salesperson_out(added)

    @r.patch("/salespeople/{salesperson_id}", response_model=SalespersonOut)
    async def update_salesperson(
        who: Admin, salesperson_id: SalespersonId, body: SalespersonPatch
    ) -> SalespersonOut:
        changed = await calendar.update_salesperson(salesperson_id, **body.model_dump(exclude_none=True))
        return _salesperson_out(changed)

    @r.get("/config")
    async def config(who: Supervisor) -> dict[str, object]:
        return (await calendar.config()).to_dict()

    @r.put("/config")
    async def set_config(who: Admin, body: CalendarConfigIn) -> dict[str, object]:
        try:
            config = CalendarConfig.from_dict(body.config)
        except CalendarError as exc:
            raise Invalid(str(exc)) from None
        return (await calendar.set_config(config, who.user_id)).to_dict()

    return r
