"""The calendar's rows: salespeople and the calendar's settings (appointments live in the core tables)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from dialer.store.base import Base, UtcDateTime


class SalespersonRow(Base):
    """A field salesperson.  Booking locks this row (FOR UPDATE): one booking per salesperson at a time."""

    __tablename__ = "salespeople"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320))
    timezone: Mapped[str] = mapped_column(String(64))
    home_postcode: Mapped[str] = mapped_column(String(20))
    home_lat: Mapped[float | None] = mapped_column(Float)
    home_lon: Mapped[float | None] = mapped_column(Float)
    areas: Mapped[list[str]] = mapped_column(JSON)  # postcode prefixes
    hours: Mapped[dict[str, list[str]]] = mapped_column(JSON)  # {"0": ["08:00", "18:00"], ...} 0 = Monday
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class CalendarSettingsRow(Base):
    """The one row of calendar settings (travel matrix, slot length...), shared by every node."""

    __tablename__ = "calendar_settings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    config: Mapped[dict[str, Any]] = mapped_column(JSON)  # CalendarConfig.to_dict()
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_by: Mapped[str] = mapped_column(String(64))


CALENDAR_TABLES = frozenset((SalespersonRow.__tablename__, CalendarSettingsRow.__tablename__))
