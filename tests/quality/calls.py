"""Calls through the real engine of the API stack: a lead, the agent ready, answered, connected, ended."""

from __future__ import annotations

import time
from itertools import count

from dialer.store.repositories import NewLead
from telephony.base import AnsweredCall, Connected, ConnectToAgent, HungUp
from tests.api.conftest import T0, Stack

_n = count()


async def add_lead(stack: Stack, first_name: str, last_name: str = "Martin") -> str:
    number = f"+3361{next(_n) + 5000000:07d}"
    list_id = await stack.db.leads.create_list(stack.campaign_id, "test", "test.csv", "FR", now=T0)
    lead = NewLead(  # type: ignore[call-arg]
        phone=number, timezones=("Europe/Paris",), first_name=first_name, last_name=last_name
    )
    await stack.db.leads.add(stack.campaign_id, list_id, [lead], now=T0)
    return number


async def call_reaches(stack: Stack, agent: str) -> str:
    """The dialer places a call, the customer answers, the PBX connects them to ``agent``."""
    assert await stack.engine.tick() == 1
    attempt_id = stack.pbx.originates[-1].attempt_id
    decision = await stack.engine.on_answered(AnsweredCall(attempt_id, time.time()))
    assert decision == ConnectToAgent(agent)
    await stack.engine.handle(Connected(attempt_id, time.time(), agent))
    return attempt_id


async def hang_up(stack: Stack, attempt_id: str) -> None:
    await stack.engine.handle(HungUp(attempt_id, time.time(), cause=16))
