"""Whether a visit fits a salesperson's calendar, and the next free slots that fit.

A visit fits when it lies inside the salesperson's working day, is in an area
they cover, overlaps none of their appointments, and leaves time to drive
(plus the buffer) from the previous appointment of the day, or from home at
the start of the day, and on to the next one, or home by the end of the day.
The slot search offers only starts that :func:`check_visit` accepts, so an
offered slot is bookable unless someone takes it first.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from dialer.calendar.model import Place, Salesperson
from dialer.calendar.travel import CalendarConfig, TravelModel


class Reason(enum.StrEnum):
    IN_PAST = "in_past"
    NOT_COVERED = "not_covered"
    OUTSIDE_HOURS = "outside_hours"
    TAKEN = "taken"
    NO_TRAVEL_TIME = "no_travel_time"
    UNREACHABLE_BEFORE = "unreachable_before"  # cannot get there from the previous appointment / home
    UNREACHABLE_AFTER = "unreachable_after"  # cannot get on to the next appointment / home in time


@dataclass(frozen=True, slots=True)
class Refusal:
    reason: Reason
    describe: Callable[[], str]  # the message is written only when read: the slot search reads none

    @property
    def message(self) -> str:
        return self.describe()


@dataclass(frozen=True, slots=True)
class Visit:
    """An appointment already in a salesperson's calendar."""

    id: int
    starts_at: datetime
    ends_at: datetime
    place: Place


@dataclass(frozen=True, slots=True)
class Slot:
    salesperson_id: str
    salesperson_name: str
    starts_at: datetime
    ends_at: datetime


def _hm(at: datetime, sp: Salesperson) -> str:
    return at.astimezone(sp.zone).strftime("%a %d %b %H:%M")


def check_visit(
    sp: Salesperson,
    visits: Iterable[Visit],
    starts_at: datetime,
    ends_at: datetime,
    place: Place,
    travel: TravelModel,
    now: datetime,
) -> Refusal | None:
    """None when the visit fits ``sp``'s calendar (``visits``: their other live appointments)."""
    if starts_at <= now:
        return Refusal(Reason.IN_PAST, lambda: f"{starts_at.isoformat()} is in the past; choose a later slot")
    if ends_at <= starts_at:
        return Refusal(Reason.OUTSIDE_HOURS, lambda: "the appointment must end after it starts")
    if not sp.covers(place.postcode):
        return Refusal(
            Reason.NOT_COVERED,
            lambda: (
                f"{sp.name} does not cover postcode {place.postcode} (areas {', '.join(sp.areas)}); "
                "choose a salesperson who does"
            ),
        )
    day = sp.working_day(starts_at.astimezone(sp.zone).date())
    if day is None or starts_at < day[0] or ends_at > day[1]:
        hours = (
            "a day off"
            if day is None
            else f"{day[0].astimezone(sp.zone):%H:%M}-{day[1].astimezone(sp.zone):%H:%M}"
        )
        return Refusal(
            Reason.OUTSIDE_HOURS,
            lambda: (
                f"{_hm(starts_at, sp)} is outside {sp.name}'s working hours ({hours}); choose an offered slot"
            ),
        )
    day_start, day_end = day
    before: Visit | None = None
    after: Visit | None = None
    for v in visits:
        if v.starts_at < ends_at and starts_at < v.ends_at:
            return _taken(sp, v)
        if (
            day_start <= v.starts_at
            and v.ends_at <= starts_at
            and (before is None or v.ends_at > before.ends_at)
        ):
            before = v
        if (
            ends_at <= v.starts_at
            and v.ends_at <= day_end
            and (after is None or v.starts_at < after.starts_at)
        ):
            after = v
    origin, free_from = (sp.home, day_start) if before is None else (before.place, before.ends_at)
    leg_in = travel.leg(origin, place)
    dest, free_until = (sp.home, day_end) if after is None else (after.place, after.starts_at)
    leg_out = travel.leg(place, dest)
    if leg_in is None or leg_out is None:
        a, b = (origin, place) if leg_in is None else (place, dest)
        return Refusal(
            Reason.NO_TRAVEL_TIME,
            lambda: (
                f"no travel time is known between {a.postcode} and {b.postcode}: add their areas to the "
                "travel matrix or give their coordinates (dialer calendar config)"
            ),
        )
    if free_from + leg_in > starts_at:
        source = "home" if before is None else f"appointment {before.id} (ends {_hm(before.ends_at, sp)})"
        return Refusal(
            Reason.UNREACHABLE_BEFORE,
            lambda: (
                f"{sp.name} cannot get there from {source} in time: the drive with the buffer takes "
                f"{_minutes(leg_in)} min, so the earliest start is {_hm(free_from + leg_in, sp)}"
            ),
        )
    if ends_at + leg_out > free_until:
        target = "home by the end of the day" if after is None else f"appointment {after.id}"
        return Refusal(
            Reason.UNREACHABLE_AFTER,
            lambda: (
                f"{sp.name} could not get on to {target} ({_hm(free_until, sp)}) in time: the drive with the "
                f"buffer takes {_minutes(leg_out)} min; choose an earlier slot"
            ),
        )
    return None


def _taken(sp: Salesperson, v: Visit) -> Refusal:
    return Refusal(
        Reason.TAKEN,
        lambda: (
            f"{sp.name} already has appointment {v.id} from {_hm(v.starts_at, sp)} to "
            f"{v.ends_at.astimezone(sp.zone):%H:%M}; choose another slot"
        ),
    )


def _minutes(d: timedelta) -> int:
    return round(d.total_seconds() / 60)


def free_slots(
    salespeople: Sequence[Salesperson],
    visits: Mapping[str, Sequence[Visit]],
    place: Place,
    config: CalendarConfig,
    now: datetime,
    count: int = 5,
) -> list[Slot]:
    """The ``count`` earliest starts (on each working day's step grid) that fit a covering salesperson."""
    earliest = now + config.notice
    found: list[Slot] = []
    for sp in salespeople:
        if not sp.active or not sp.covers(place.postcode):
            continue
        theirs = visits.get(sp.id, ())
        mine = 0
        today = now.astimezone(sp.zone).date()
        for offset in range(config.horizon_days + 1):
            if mine >= count:
                break
            day = sp.working_day(today + timedelta(days=offset))
            if day is None or day[1] <= earliest:
                continue
            # only the visits meeting the working day can overlap a slot in it or be its neighbours
            todays = [v for v in theirs if v.starts_at < day[1] and v.ends_at > day[0]]
            start = day[0]
            while start + config.appointment <= day[1] and mine < count:
                if start >= earliest:
                    end = start + config.appointment
                    if check_visit(sp, todays, start, end, place, config.travel, now) is None:
                        found.append(Slot(sp.id, sp.name, start, end))
                        mine += 1
                start += config.step
    found.sort(key=lambda s: (s.starts_at, s.salesperson_id))
    return found[:count]
