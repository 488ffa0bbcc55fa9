"""The demo's field calendar: salespeople cover every postcode the leads get; the agents book visits."""

from __future__ import annotations

import random

from dialer.runtime.demo_agents import ApiAgent
from dialer.runtime.demo_calendar import POSTCODES, seed_field_calendar
from dialer.service.calendar import CalendarService
from dialer.store.db import Database
from tests.api.conftest import PASSWORD, build_stack
from tests.calendar.test_api import connected_call


async def test_the_demo_agents_book_visits_for_the_demo_leads(db: Database) -> None:
    async for stack in build_stack(db):
        assert await seed_field_calendar(db, stack.campaign_id, random.Random(1)) == 0  # no lead yet
        people = await CalendarService(db).salespeople()
        assert all(any(sp.covers(p) for sp in people) for p in POSTCODES)
        agent = ApiAgent(stack.client, "agent1", PASSWORD, random.Random(2))
        reply = await stack.client.post("/api/login", json={"user": "agent1", "password": PASSWORD})
        agent.headers = {"Authorization": f"Bearer {reply.json()['token']}"}
        starts = [await agent.book_visit(await connected_call(stack, "agent1", p)) for p in POSTCODES]
        assert all(starts) and agent.visits == len(POSTCODES) and agent.failures == 0
        booked = await CalendarService(db).appointments()
        assert sorted(a.postcode or "" for a in booked) == sorted(POSTCODES)
        assert await agent.book_visit(await connected_call(stack, "agent1", "13001")) is None  # not covered
