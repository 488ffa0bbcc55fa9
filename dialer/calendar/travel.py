"""How long a salesperson needs from one place to another, and the calendar's other settings.

Travel time comes from a matrix of minutes between areas (postcode prefixes,
both directions), else from the two places' coordinates (straight-line
distance at a speed), else it is unknown and the visit is refused: an
appointment is only offered where the salesperson can surely get to it.  A
buffer (parking, the doorstep, a late customer) is added to every leg.

The settings come from a TOML file (``dialer calendar config FILE``):

    appointment_minutes = 60
    slot_step_minutes = 30
    horizon_days = 14
    notice_minutes = 120        # the earliest slot offered is this long after now

    [travel]
    buffer_minutes = 15
    speed_kmh = 40
    same_area_minutes = 20      # two places in one area, when the matrix says nothing
    area_length = 2             # a postcode in no named area belongs to the area of its first characters
    areas = { "75" = [48.857, 2.352], "92" = [48.892, 2.207] }   # coordinates of areas

    [[travel.times]]
    from = "75"
    to = "92"
    minutes = 35
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from dialer.calendar.model import CalendarError, Place, normalize_postcode

EARTH_RADIUS_KM = 6371.0


def haversine_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat1, lon1, lat2, lon2 = (math.radians(v) for v in (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(min(1.0, h)))


@dataclass(frozen=True, slots=True)
class TravelModel:
    buffer: timedelta = timedelta(minutes=15)
    speed_kmh: float = 40.0
    same_area: timedelta = timedelta(minutes=20)
    times: Mapping[frozenset[str], timedelta] = field(default_factory=dict)  # {area, area} -> minutes
    coords: Mapping[str, tuple[float, float]] = field(default_factory=dict)  # area -> (lat, lon)
    area_length: int = 2
    _areas: dict[str, str] = field(default_factory=dict, init=False, repr=False, compare=False)  # memo

    def area_of(self, postcode: str) -> str:
        """The longest known area the postcode starts with, else its first ``area_length`` characters."""
        found = self._areas.get(postcode)
        if found is None:
            code = normalize_postcode(postcode)
            known = set(self.coords).union(*self.times)
            matches = [a for a in known if code.startswith(a)]
            found = max(matches, key=len) if matches else code[: self.area_length]
            self._areas[postcode] = found
        return found

    def _coords(self, place: Place) -> tuple[float, float] | None:
        if place.lat is not None and place.lon is not None:
            return place.lat, place.lon
        return self.coords.get(self.area_of(place.postcode))

    def travel(self, a: Place, b: Place) -> timedelta | None:
        """The drive from ``a`` to ``b`` without the buffer; None when nothing says how long it is."""
        area_a, area_b = self.area_of(a.postcode), self.area_of(b.postcode)
        given = self.times.get(frozenset((area_a, area_b)))
        if given is not None:
            return given
        ca, cb = self._coords(a), self._coords(b)
        if ca is not None and cb is not None and (area_a != area_b or ca != cb):
            minutes = haversine_km(ca, cb) / self.speed_kmh * 60
            return timedelta(minutes=math.ceil(minutes))
        if area_a == area_b:
            return self.same_area
        return None

    def leg(self, a: Place, b: Place) -> timedelta | None:
        """What the calendar keeps free between ``a`` and ``b``: the drive and the buffer."""
        drive = self.travel(a, b)
        return None if drive is None else drive + self.buffer


@dataclass(frozen=True, slots=True)
class CalendarConfig:
    travel: TravelModel = field(default_factory=TravelModel)
    appointment: timedelta = timedelta(minutes=60)
    step: timedelta = timedelta(minutes=30)
    horizon_days: int = 14
    notice: timedelta = timedelta(minutes=120)

    @classmethod
    def from_toml(cls, text: str) -> CalendarConfig:
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise CalendarError(f"the calendar settings are not valid TOML: {exc}") from None
        return cls.from_dict(raw)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> CalendarConfig:
        known = {"appointment_minutes", "slot_step_minutes", "horizon_days", "notice_minutes", "travel"}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise CalendarError(
                f"unknown calendar setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        travel_raw = raw.get("travel", {})
        if not isinstance(travel_raw, Mapping):
            raise CalendarError("[travel] must be a table")
        return cls(
            travel=_travel_from(travel_raw),
            appointment=timedelta(minutes=_number(raw, "appointment_minutes", 60, 5, 24 * 60)),
            step=timedelta(minutes=_number(raw, "slot_step_minutes", 30, 5, 24 * 60)),
            horizon_days=int(_number(raw, "horizon_days", 14, 1, 366)),
            notice=timedelta(minutes=_number(raw, "notice_minutes", 120, 0, 30 * 24 * 60)),
        )

    def to_dict(self) -> dict[str, Any]:
        t = self.travel
        return {
            "appointment_minutes": self.appointment.total_seconds() / 60,
            "slot_step_minutes": self.step.total_seconds() / 60,
            "horizon_days": self.horizon_days,
            "notice_minutes": self.notice.total_seconds() / 60,
            "travel": {
                "buffer_minutes": t.buffer.total_seconds() / 60,
                "speed_kmh": t.speed_kmh,
                "same_area_minutes": t.same_area.total_seconds() / 60,
                "area_length": t.area_length,
                "areas": {a: list(c) for a, c in sorted(t.coords.items())},
                "times": [
                    {"from": min(p), "to": max(p), "minutes": m.total_seconds() / 60}
                    for p, m in sorted(t.times.items(), key=lambda kv: sorted(kv[0]))
                ],
            },
        }


def _number(raw: Mapping[str, Any], key: str, default: float, low: float, high: float) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise CalendarError(f"calendar setting {key} = {value!r}: give a number from {low:g} to {high:g}")
    return float(value)


def _travel_from(raw: Mapping[str, Any]) -> TravelModel:
    known = {"buffer_minutes", "speed_kmh", "same_area_minutes", "area_length", "areas", "times"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise CalendarError(
            f"unknown [travel] setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    coords: dict[str, tuple[float, float]] = {}
    areas = raw.get("areas", {})
    if not isinstance(areas, Mapping):
        raise CalendarError("[travel] areas must be a table: area = [latitude, longitude]")
    for area, value in areas.items():
        if (
            not isinstance(value, list)
            or len(value) != 2
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
            or not (-90 <= value[0] <= 90 and -180 <= value[1] <= 180)
        ):
            raise CalendarError(f"[travel] areas.{area}: give [latitude, longitude] in degrees")
        coords[normalize_postcode(area)] = (float(value[0]), float(value[1]))
    times: dict[frozenset[str], timedelta] = {}
    entries = raw.get("times", [])
    if not isinstance(entries, list):
        raise CalendarError("[[travel.times]] must be a list of {from, to, minutes}")
    for n, entry in enumerate(entries, 1):
        if not isinstance(entry, Mapping) or not {"from", "to", "minutes"} <= set(entry):
            raise CalendarError(f"travel time {n}: give from = AREA, to = AREA, minutes = N")
        minutes = _number(entry, "minutes", 0, 0, 24 * 60)
        pair = frozenset((normalize_postcode(str(entry["from"])), normalize_postcode(str(entry["to"]))))
        times[pair] = timedelta(minutes=minutes)
    return TravelModel(
        buffer=timedelta(minutes=_number(raw, "buffer_minutes", 15, 0, 24 * 60)),
        speed_kmh=_number(raw, "speed_kmh", 40, 1, 300),
        same_area=timedelta(minutes=_number(raw, "same_area_minutes", 20, 0, 24 * 60)),
        times=times,
        coords=coords,
        area_length=int(_number(raw, "area_length", 2, 1, 20)),
    )
