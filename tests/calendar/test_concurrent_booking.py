"""Two nodes booking one salesperson's slot at the same moment: the database lets exactly one win."""

from __future__ import annotations

import asyncio

import pytest

from dialer.service import Refused
from dialer.service.calendar import CalendarService
from dialer.store.db import Database
from tests.calendar.conftest import make_record, paris


@pytest.mark.parametrize("database_url", ["postgresql", "sqlite"], indirect=True)
async def test_concurrent_bookings_of_one_slot_on_two_nodes_exactly_one_wins(database_url: str) -> None:
    first = Database(database_url)
    await first.connect()
    await first.migrate()
    second = Database(database_url)
    await second.connect()
    try:
        record = await make_record(first)
        calls = [(f"agent{n}", await record.call(agent_id=f"agent{n}")) for n in range(8)]
        nodes = [CalendarService(db, wall=lambda: record.clock[0]) for db in (first, second)]
        for round_, hour in enumerate((10, 14, 16)):
            results = await asyncio.gather(
                *(
                    nodes[n % 2].book(agent, call, "alice", paris(7 + round_, hour))
                    for n, (agent, call) in enumerate(calls)
                ),
                return_exceptions=True,
            )
            won = [r for r in results if not isinstance(r, BaseException)]
            lost = [r for r in results if isinstance(r, BaseException)]
            assert len(won) == 1, results
            assert all(isinstance(e, Refused) and "taken" in str(e) for e in lost), lost
            calls = [(a, c) for a, c in calls if c != won[0].attempt_id]  # the others race again
        booked = await record.calendar.appointments(salesperson_id="alice")
        assert len(booked) == 3
    finally:
        await second.close()
        await first.close()
