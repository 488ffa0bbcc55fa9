"""What the field calendar's API reads and writes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, Field

from dialer.api.schemas import Line, Strict, Text, UserId

Postcode = Annotated[str, Field(min_length=1, max_length=20, pattern=r"^[A-Za-z0-9 -]+$")]
Areas = Annotated[list[Postcode], Field(min_length=1, max_length=200)]
Hours = Annotated[
    str, Field(min_length=1, max_length=400, description="e.g. 'mon-fri 08:00-18:00, sat 09:00-12:00'")
]
TimeZone = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_+/-]+$")]
Email = Annotated[str, Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")]


class SlotOut(BaseModel):
    salesperson_id: str
    salesperson_name: str
    starts_at: datetime
    ends_at: datetime


class SlotsOut(BaseModel):
    postcode: str
    slots: list[SlotOut]


class BookIn(Strict):
    attempt_id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]
    salesperson_id: UserId
    starts_at: AwareDatetime
    postcode: Postcode | None = Field(default=None, description="when the record has none, or it changed")
    notes: Text | None = None


class MoveIn(Strict):
    starts_at: AwareDatetime
    salesperson_id: UserId | None = Field(default=None, description="another salesperson takes the visit")


class AppointmentOut(BaseModel):
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


class SalespersonIn(Strict):
    id: UserId
    name: Line
    email: Email
    timezone: TimeZone
    home_postcode: Postcode
    home_lat: Annotated[float, Field(ge=-90, le=90)] | None = None
    home_lon: Annotated[float, Field(ge=-180, le=180)] | None = None
    areas: Areas
    hours: Hours


class SalespersonPatch(Strict):
    name: Line | None = None
    email: Email | None = None
    timezone: TimeZone | None = None
    home_postcode: Postcode | None = None
    home_lat: Annotated[float, Field(ge=-90, le=90)] | None = None
    home_lon: Annotated[float, Field(ge=-180, le=180)] | None = None
    areas: Areas | None = None
    hours: Hours | None = None
    active: bool | None = None


class SalespersonOut(BaseModel):
    id: str
    name: str
    email: str
    timezone: str
    home_postcode: str
    home_lat: float | None
    home_lon: float | None
    areas: list[str]
    hours: str
    active: bool


class CalendarConfigIn(Strict):
    config: dict[str, Any] = Field(
        description="the calendar settings as in `dialer calendar config` (TOML keys)"
    )
