"""The calendar's pure rules: hours, areas, travel times, booking checks with their reasons, slot search."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from dialer.calendar.model import CalendarError, Place, Salesperson, format_hours, parse_areas, parse_hours
from dialer.calendar.slots import Reason, Visit, check_visit, free_slots
from dialer.calendar.travel import CalendarConfig, TravelModel, haversine_km
from tests.calendar.conftest import NOW, TRAVEL_TOML, paris

CONFIG = CalendarConfig.from_toml(TRAVEL_TOML)
TRAVEL = CONFIG.travel
ALICE = Salesperson(
    "alice",
    "Alice",
    "alice@example.com",
    "Europe/Paris",
    Place("75001"),
    ("75", "92"),
    parse_hours("mon-fri 08:00-18:00"),
)
HOUR = timedelta(hours=1)


def visit(n: int, start: datetime, postcode: str = "75011") -> Visit:
    return Visit(n, start, start + HOUR, Place(postcode))


def test_working_hours_are_parsed_per_weekday() -> None:
    hours = parse_hours("mon-thu 08:00-18:00, fri 08:00-12:30")
    assert hours[0] == (time(8), time(18)) and hours[3] == (time(8), time(18))
    assert hours[4] == (time(8), time(12, 30)) and 5 not in hours
    for bad in ("monday 08-18", "fri-mon 08:00-18:00", "mon 18:00-08:00", ""):
        with pytest.raises(CalendarError):
            parse_hours(bad)
    assert parse_areas(" 75 , sw1a ,75") == ("75", "SW1A")
    assert format_hours(hours) == "mon-thu 08:00-18:00, fri 08:00-12:30"
    assert parse_hours(format_hours(hours)) == hours
    assert format_hours(parse_hours("mon 08:00-12:00, wed 08:00-12:00")) == "mon 08:00-12:00, wed 08:00-12:00"


def test_travel_time_comes_from_the_matrix_then_coordinates_then_the_same_area() -> None:
    assert TRAVEL.travel(Place("75011"), Place("92100")) == timedelta(minutes=40)
    assert TRAVEL.travel(Place("92100"), Place("75011")) == timedelta(minutes=40)  # both directions
    km = haversine_km((48.857, 2.352), (48.910, 2.480))
    assert 10 < km < 12
    assert TRAVEL.travel(Place("75011"), Place("93100")) == timedelta(minutes=round(km / 40 * 60 + 0.5))
    assert TRAVEL.travel(Place("75011"), Place("75015")) == timedelta(minutes=20)
    assert TravelModel().travel(Place("13001"), Place("13008")) == timedelta(minutes=20)  # area "13"
    assert TravelModel(area_length=5).travel(Place("13001"), Place("13008")) is None
    assert TRAVEL.travel(Place("75011"), Place("13001")) is None  # nothing known about Marseille
    assert TRAVEL.leg(Place("75011"), Place("92100")) == timedelta(minutes=55)  # with the buffer
    explicit = Place("13001", 43.30, 5.37)
    assert TRAVEL.travel(Place("75011"), explicit) is not None  # coordinates given on the place


def test_bad_travel_settings_name_the_key() -> None:
    with pytest.raises(CalendarError, match="buffer_minutes"):
        CalendarConfig.from_toml("[travel]\nbuffer_minutes = -3\n")
    with pytest.raises(CalendarError, match="unknown calendar setting"):
        CalendarConfig.from_toml("slot_minutes = 30\n")
    with pytest.raises(CalendarError, match=r"areas\.75"):
        CalendarConfig.from_toml('[travel]\nareas = { "75" = [200, 2] }\n')
    assert CalendarConfig.from_dict(CONFIG.to_dict()) == CONFIG


@pytest.mark.parametrize(
    ("start", "postcode", "others", "reason", "says"),
    [
        (NOW - HOUR, "75011", [], Reason.IN_PAST, "in the past"),
        (paris(7, 10), "13001", [], Reason.NOT_COVERED, "does not cover postcode 13001"),
        (paris(5, 10), "75011", [], Reason.OUTSIDE_HOURS, "a day off"),  # Saturday
        (paris(7, 17, 30), "75011", [], Reason.OUTSIDE_HOURS, "08:00-18:00"),
        (paris(7, 10), "75011", [visit(3, paris(7, 10, 30))], Reason.TAKEN, "appointment 3"),
        # home 75001 -> 75011: 20 + 15 min; the day starts at 08:00
        (paris(7, 8), "75011", [], Reason.UNREACHABLE_BEFORE, "from home"),
        # appointment 4 in 92 ends at 11:00; 40 + 15 min to Paris: 11:55 at the earliest
        (paris(7, 11, 30), "75011", [visit(4, paris(7, 10), "92100")], Reason.UNREACHABLE_BEFORE, "11:55"),
        (
            paris(7, 9),
            "75011",
            [visit(5, paris(7, 10, 30), "92100")],
            Reason.UNREACHABLE_AFTER,
            "appointment 5",
        ),
        # back home by 18:00: a 17:00 visit ends at 18:00
        (paris(7, 16, 45), "75011", [], Reason.UNREACHABLE_AFTER, "home by the end of the day"),
    ],
)
def test_a_visit_that_does_not_fit_is_refused_with_its_reason(
    start: datetime, postcode: str, others: list[Visit], reason: Reason, says: str
) -> None:
    refusal = check_visit(ALICE, others, start, start + HOUR, Place(postcode), TRAVEL, NOW)
    assert refusal is not None
    assert refusal.reason is reason
    assert says in refusal.message


def test_a_visit_that_fits_between_two_others_is_accepted() -> None:
    others = [visit(1, paris(7, 9)), visit(2, paris(7, 13), "92100")]
    # 10:00 ends 10:35 after the 20+15 min drive; 11:00-12:00 then 55 min to 92 before 13:00
    assert check_visit(ALICE, others, paris(7, 11), paris(7, 12), Place("75015"), TRAVEL, NOW) is None
    assert check_visit(ALICE, others, paris(7, 11, 30), paris(7, 12, 30), Place("75015"), TRAVEL, NOW)


def test_no_travel_time_known_is_a_refusal_not_a_guess() -> None:
    far = Salesperson("x", "X", "x@example.com", "Europe/Paris", Place("13001"), ("75",), ALICE.hours)
    refusal = check_visit(far, [], paris(7, 12), paris(7, 13), Place("75011"), TravelModel(), NOW)
    assert refusal is not None and refusal.reason is Reason.NO_TRAVEL_TIME


def test_slots_are_the_earliest_that_fit_in_time_order() -> None:
    others = {"alice": [visit(1, paris(7, 9)), visit(2, paris(7, 11))]}
    now = datetime(2026, 12, 6, 12, tzinfo=UTC)  # Sunday: the first working day is Monday the 7th
    slots = free_slots([ALICE], others, Place("75011"), CONFIG, now, count=4)
    starts = [s.starts_at for s in slots]
    assert starts == sorted(starts) and len(starts) == 4
    # 08:00 + 35 min from home leaves no hour before 09:00; after 12:00 the drive ends 12:35: 13:00
    assert starts[0] == paris(7, 13)
    for s in slots:
        assert (
            check_visit(ALICE, others["alice"], s.starts_at, s.ends_at, Place("75011"), TRAVEL, now) is None
        )


def test_slots_respect_the_notice_and_the_salespeople_covering_the_area() -> None:
    bob = Salesperson("bob", "Bob", "b@example.com", "Europe/Paris", Place("93100"), ("93",), ALICE.hours)
    slots = free_slots([ALICE, bob], {}, Place("93200"), CONFIG, paris(7, 9), count=3)
    assert {s.salesperson_id for s in slots} == {"bob"}
    assert slots[0].starts_at >= paris(7, 9) + CONFIG.notice
    assert free_slots([ALICE], {}, Place("13001"), CONFIG, NOW) == []
