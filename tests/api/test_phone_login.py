"""Agents who sign in from the phone: the PIN is checked against the users table, the leg is theirs."""

from __future__ import annotations

import time

from dialer.domain.agent import AgentState
from dialer.service.phone_login import PhoneLogins
from dialer.store.repositories import Role
from telephony.base import AgentLegEnded
from tests.api.conftest import PASSWORD, Stack


async def test_right_pin_signs_the_agent_in_paused_and_their_leg_hanging_up_signs_them_out(
    stack: Stack,
) -> None:
    await stack.accounts.set_pin("agent1", "4321", actor="test")
    logins = PhoneLogins(stack.accounts, stack.desk)
    assert await logins.on_phone_login("agent1", "4321", "1796399371.27") is None
    assert stack.agents.state_of("agent1") is AgentState.PAUSED
    assert stack.desk.status("agent1").campaigns == (str(stack.campaign_id),)
    await stack.engine.handle(AgentLegEnded("an-old-leg", time.time(), "agent1", 16))
    assert stack.agents.state_of("agent1") is AgentState.PAUSED  # another leg: nothing changes
    await stack.engine.handle(AgentLegEnded("1796399371.27", time.time(), "agent1", 16))
    assert stack.agents.state_of("agent1") is None


async def test_wrong_pin_unknown_agent_and_non_agents_are_refused_alike(stack: Stack) -> None:
    await stack.accounts.set_pin("agent1", "4321", actor="test")
    await stack.accounts.add_user("boss", "Boss", Role.SUPERVISOR, PASSWORD, actor="test")
    await stack.accounts.set_pin("boss", "9999", actor="test")
    logins = PhoneLogins(stack.accounts, stack.desk)
    refusals = [
        await logins.on_phone_login("agent1", "1111", "leg-1"),
        await logins.on_phone_login("nobody", "4321", "leg-2"),
        await logins.on_phone_login("boss", "9999", "leg-3"),
        await logins.on_phone_login("agent2", "4321", "leg-4"),  # no PIN set
    ]
    assert all(r is not None and "PIN" in r for r in refusals)
    assert [a.agent_id for a in stack.desk.agents()] == []


async def test_a_pin_alone_never_opens_the_api(stack: Stack) -> None:
    await stack.accounts.add_user("phoneonly", "Phone", Role.AGENT, None, actor="test")
    await stack.accounts.set_pin("phoneonly", "2468", actor="test")
    reply = await stack.client.post("/api/login", json={"user": "phoneonly", "password": "2468"})
    assert reply.status_code == 401
    reply = await stack.client.post("/api/login", json={"user": "phoneonly", "password": "!"})
    assert reply.status_code in (401, 422)


async def test_an_agent_signed_in_on_the_screen_who_dials_in_gets_the_leg_attached(stack: Stack) -> None:
    await stack.accounts.set_pin("agent1", "4321", actor="test")
    await stack.desk.login("agent1")
    assert await PhoneLogins(stack.accounts, stack.desk).on_phone_login("agent1", "4321", "leg-9") is None
    await stack.engine.handle(AgentLegEnded("leg-9", time.time(), "agent1", 16))
    assert stack.agents.state_of("agent1") is None
