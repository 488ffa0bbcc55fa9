"""The same properties through the service and the record: random bookings, moves and cancels of calls.

Each example gets a salesperson of its own on one migrated database, so the
examples do not see each other's visits.  What the record holds afterwards is
checked from scratch: no two live visits of a salesperson overlap, and each
working day is a drivable chain from home through the visits back home.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dialer.calendar.model import Place
from dialer.calendar.slots import Visit
from dialer.service import Refused
from tests.calendar.conftest import Record
from tests.calendar.test_properties import POSTCODES, assert_calendar_holds

MONDAY = datetime(2026, 12, 7, tzinfo=UTC)
counter = itertools.count()

ops = st.lists(
    st.tuples(
        st.sampled_from(("book", "book", "book", "move", "cancel")),
        st.tuples(st.integers(0, 4), st.integers(6 * 4, 19 * 4)).map(lambda d: d[0] * 1440 + d[1] * 15),
        st.sampled_from(POSTCODES),
        st.integers(0, 50),
    ),
    min_size=1,
    max_size=14,
)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=ops)
async def test_the_record_never_holds_a_double_booking_or_an_unreachable_visit(
    record: Record, steps: list[tuple[str, int, str, int]]
) -> None:
    sp_id = f"sp{next(counter)}"
    await record.calendar.add_salesperson(
        sp_id,
        name=sp_id,
        email=f"{sp_id}@example.com",
        timezone="Europe/Paris",
        home_postcode="75001",
        areas="75,92,93",
        hours="mon-fri 08:00-18:00",
    )
    accepted = refused = 0
    for action, minutes, postcode, pick in steps:
        start = MONDAY + timedelta(minutes=minutes)
        mine = await record.calendar.appointments(salesperson_id=sp_id)
        try:
            if action == "book" or not mine:
                await record.calendar.book("agent1", await record.call(postcode=postcode), sp_id, start)
            elif action == "move":
                await record.calendar.move("agent1", mine[pick % len(mine)].id, start)
            else:
                await record.calendar.cancel("agent1", mine[pick % len(mine)].id)
            accepted += 1
        except Refused:
            refused += 1
    live = await record.calendar.appointments(salesperson_id=sp_id)
    sp = await record.calendar.salesperson(sp_id)
    visits = [Visit(a.id, a.starts_at, a.ends_at or a.starts_at, Place(a.postcode or "")) for a in live]
    assert_calendar_holds(sp, visits)
    for a, b in itertools.pairwise(sorted(visits, key=lambda v: v.starts_at)):
        assert a.ends_at <= b.starts_at, "double booking in the record"
    assert accepted + refused == len(steps)
