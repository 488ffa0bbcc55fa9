"""Over random calendars and random requests: no double booking, every visit reachable from its neighbours."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from dialer.calendar.model import Place, Salesperson, parse_hours
from dialer.calendar.slots import Visit, check_visit, free_slots
from dialer.calendar.travel import CalendarConfig
from tests.calendar.conftest import TRAVEL_TOML

CONFIG = CalendarConfig.from_toml(TRAVEL_TOML)
TRAVEL = CONFIG.travel
NOW = datetime(2026, 12, 6, 12, tzinfo=UTC)  # a Sunday: the week to fill starts tomorrow
POSTCODES = ("75001", "75011", "75015", "92100", "92400", "93100", "93200")
HOURS = ("mon-fri 08:00-18:00", "mon-sat 09:00-17:00", "tue-fri 07:30-12:30", "mon-fri 10:00-20:00")

people = st.lists(
    st.tuples(
        st.sampled_from(POSTCODES), st.sampled_from(HOURS), st.sampled_from(("75,92", "93", "75,92,93"))
    ),
    min_size=1,
    max_size=3,
).map(
    lambda rows: [
        Salesperson(
            f"sp{i}",
            f"SP {i}",
            f"sp{i}@example.com",
            "Europe/Paris",
            Place(home),
            tuple(areas.split(",")),
            parse_hours(h),
        )
        for i, (home, h, areas) in enumerate(rows)
    ]
)
# (salesperson index, minutes after Monday 00:00 UTC on a 5-min grid within working hours, postcode,
# length in 15-min steps, action)
requests = st.lists(
    st.tuples(
        st.integers(0, 2),
        st.tuples(st.integers(0, 5), st.integers(6 * 12, 19 * 12)).map(lambda d: d[0] * 1440 + d[1] * 5),
        st.sampled_from(POSTCODES),
        st.integers(2, 8),
        st.sampled_from(("book", "book", "book", "move", "cancel")),
    ),
    max_size=80,
)


def assert_calendar_holds(sp: Salesperson, visits: list[Visit]) -> None:
    """The invariant, checked from scratch: each working day is a drivable chain home -> visits -> home."""
    by_day: dict[object, list[Visit]] = {}
    for v in visits:
        by_day.setdefault(v.starts_at.astimezone(sp.zone).date(), []).append(v)
    for day, todays in by_day.items():
        window = sp.working_day(day)  # type: ignore[arg-type]
        assert window is not None, f"{sp.id}: visit on a day off"
        chain = sorted(todays, key=lambda v: v.starts_at)
        stops = [(sp.home, window[0], window[0])] + [(v.place, v.starts_at, v.ends_at) for v in chain]
        stops.append((sp.home, window[1], window[1]))
        for (a, _, a_end), (b, b_start, _) in itertools.pairwise(stops):
            leg = TRAVEL.leg(a, b)
            assert leg is not None
            assert a_end + leg <= b_start, f"{sp.id} cannot drive {a.postcode} -> {b.postcode} on {day}"
        for v in chain:
            assert sp.covers(v.place.postcode)


@settings(max_examples=150, deadline=None)
@given(people, requests)
def test_random_requests_never_double_book_and_keep_every_visit_reachable(
    salespeople: list[Salesperson], asks: list[tuple[int, int, str, int, str]]
) -> None:
    monday = datetime(2026, 12, 7, tzinfo=UTC)
    calendars: dict[str, list[Visit]] = {sp.id: [] for sp in salespeople}
    next_id = 1
    for index, minutes, postcode, quarters, action in asks:
        sp = salespeople[index % len(salespeople)]
        mine = calendars[sp.id]
        start = monday + timedelta(minutes=minutes)
        end = start + timedelta(minutes=15 * quarters)
        if action == "cancel" and mine:
            mine.pop(minutes % len(mine))
        elif action == "move" and mine:
            moving = mine[minutes % len(mine)]
            others = [v for v in mine if v.id != moving.id]
            length = moving.ends_at - moving.starts_at
            if check_visit(sp, others, start, start + length, moving.place, TRAVEL, NOW) is None:
                mine[mine.index(moving)] = Visit(moving.id, start, start + length, moving.place)
        elif action == "book" and check_visit(sp, mine, start, end, Place(postcode), TRAVEL, NOW) is None:
            mine.append(Visit(next_id, start, end, Place(postcode)))
            next_id += 1
        assert_calendar_holds(sp, mine)
    for sp in salespeople:
        ordered = sorted(calendars[sp.id], key=lambda v: v.starts_at)
        for a, b in itertools.pairwise(ordered):
            assert a.ends_at <= b.starts_at, "double booking"


@settings(max_examples=60, deadline=None)
@given(people, requests, st.sampled_from(POSTCODES))
def test_every_offered_slot_can_be_booked_one_after_the_other(
    salespeople: list[Salesperson], asks: list[tuple[int, int, str, int, str]], postcode: str
) -> None:
    monday = datetime(2026, 12, 7, tzinfo=UTC)
    calendars: dict[str, list[Visit]] = {sp.id: [] for sp in salespeople}
    for n, (index, minutes, where, quarters, _) in enumerate(asks):
        sp = salespeople[index % len(salespeople)]
        start = monday + timedelta(minutes=minutes)
        end = start + timedelta(minutes=15 * quarters)
        if check_visit(sp, calendars[sp.id], start, end, Place(where), TRAVEL, NOW) is None:
            calendars[sp.id].append(Visit(n, start, end, Place(where)))
    by_id = {sp.id: sp for sp in salespeople}
    for round_ in range(3):  # book the first offered slot, ask again: the calendar still holds
        slots = free_slots(salespeople, calendars, Place(postcode), CONFIG, NOW, count=5)
        assert [s.starts_at for s in slots] == sorted(s.starts_at for s in slots)
        for slot in slots:
            sp = by_id[slot.salesperson_id]
            assert slot.starts_at >= NOW + CONFIG.notice
            assert (
                check_visit(sp, calendars[sp.id], slot.starts_at, slot.ends_at, Place(postcode), TRAVEL, NOW)
                is None
            )
        if not slots:
            break
        first = slots[0]
        calendars[first.salesperson_id].append(
            Visit(1000 + round_, first.starts_at, first.ends_at, Place(postcode))
        )
        assert_calendar_holds(by_id[first.salesperson_id], calendars[first.salesperson_id])
