"""Salespeople as the calendar sees them: working hours per weekday, a time zone, a home base, areas."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HOURS = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")


class CalendarError(ValueError):
    """A salesperson, a travel matrix or a booking request that cannot be used; the message says why."""


def normalize_postcode(raw: str) -> str:
    """Postcodes compare without spaces and case: ``"sw1a 1aa"`` is ``"SW1A1AA"``."""
    return "".join(raw.split()).upper()


@dataclass(frozen=True, slots=True)
class Place:
    """Where a visit happens or a salesperson starts from: a postcode, coordinates when known."""

    postcode: str
    lat: float | None = None
    lon: float | None = None


@dataclass(frozen=True, slots=True)
class Salesperson:
    id: str
    name: str
    email: str
    timezone: str
    home: Place
    areas: tuple[str, ...]  # postcode prefixes the salesperson visits ("75", "92", "SW1")
    # weekday (0 = Monday) -> (start, end) of the working day in the salesperson's time zone
    hours: Mapping[int, tuple[time, time]] = field(default_factory=dict)
    active: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "areas", tuple(normalize_postcode(a) for a in self.areas))

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def covers(self, postcode: str) -> bool:
        code = normalize_postcode(postcode)
        return any(code.startswith(a) for a in self.areas)

    def working_day(self, day: date) -> tuple[datetime, datetime] | None:
        """The working day ``day`` (a local date) as aware datetimes, or None on a day off."""
        hours = self.hours.get(day.weekday())
        if hours is None:
            return None
        zone = self.zone
        start, end = datetime.combine(day, hours[0], zone), datetime.combine(day, hours[1], zone)
        return start.astimezone(UTC), end.astimezone(UTC)


def check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise CalendarError(
            f"time zone {name!r} is unknown; give an IANA name such as Europe/Paris"
        ) from None
    return name


def parse_hours(text: str) -> dict[int, tuple[time, time]]:
    """``"mon-fri 08:00-18:00, sat 09:00-12:00"`` -> {0: (08:00, 18:00), ..., 5: (09:00, 12:00)}."""
    hours: dict[int, tuple[time, time]] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        days, _, span = part.partition(" ")
        match = _HOURS.match(span.strip())
        if match is None:
            raise CalendarError(f"working hours {part!r}: write e.g. 'mon-fri 08:00-18:00'")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59 or (h2, m2) <= (h1, m1):
            raise CalendarError(
                f"working hours {part!r}: the day must end after it starts, within 00:00-23:59"
            )
        for day in _weekdays(days.strip().lower(), part):
            hours[day] = (time(h1, m1), time(h2, m2))
    if not hours:
        raise CalendarError("working hours are empty: write e.g. 'mon-fri 08:00-18:00'")
    return hours


def _weekdays(spec: str, part: str) -> list[int]:
    first, _, last = spec.partition("-")
    if first not in WEEKDAYS or (last and last not in WEEKDAYS):
        raise CalendarError(f"working hours {part!r}: days are {', '.join(WEEKDAYS)} (e.g. 'mon-fri')")
    a = WEEKDAYS.index(first)
    b = WEEKDAYS.index(last) if last else a
    if b < a:
        raise CalendarError(f"working hours {part!r}: write the days in order (mon-fri, not fri-mon)")
    return list(range(a, b + 1))


def format_hours(hours: Mapping[int, tuple[time, time]]) -> str:
    """The inverse of :func:`parse_hours`, with runs of days alike written as one: 'mon-fri 08:00-18:00'."""
    runs: list[tuple[int, int, tuple[time, time]]] = []
    for day, span in sorted(hours.items()):
        if runs and runs[-1][1] == day - 1 and runs[-1][2] == span:
            runs[-1] = (runs[-1][0], day, span)
        else:
            runs.append((day, day, span))
    return ", ".join(
        (WEEKDAYS[a] if a == b else f"{WEEKDAYS[a]}-{WEEKDAYS[b]}") + f" {s:%H:%M}-{e:%H:%M}"
        for a, b, (s, e) in runs
    )


def hours_to_json(hours: Mapping[int, tuple[time, time]]) -> dict[str, list[str]]:
    return {str(d): [s.strftime("%H:%M"), e.strftime("%H:%M")] for d, (s, e) in sorted(hours.items())}


def hours_from_json(raw: Mapping[str, Sequence[str]]) -> dict[int, tuple[time, time]]:
    return {int(d): (time.fromisoformat(v[0]), time.fromisoformat(v[1])) for d, v in raw.items()}


def parse_areas(text: str | Sequence[str]) -> tuple[str, ...]:
    parts = text.split(",") if isinstance(text, str) else list(text)
    areas = tuple(dict.fromkeys(normalize_postcode(p) for p in parts if p.strip()))
    if not areas:
        raise CalendarError("areas are empty: give the postcode prefixes the salesperson visits, e.g. 75,92")
    return areas
