"""An agent-only callback: its agent is kept for it from the dial, anyone takes it after the grace."""

from __future__ import annotations

import time
from datetime import timedelta

from dialer.domain.agent import AgentState
from dialer.runtime.agents import AgentRegistry
from dialer.runtime.engine import Engine
from dialer.runtime.ports import AmdPolicy, CampaignPlan, Lead
from dialer.store.db import Database
from dialer.store.repositories import CampaignRecord
from telephony.base import AmdResult, Answered, AnsweredCall, ConnectToAgent, Failed, Outcome
from tests.runtime.fakes import FakeGate, FakePbx, FixedPacer, MemoryRecord
from tests.store.conftest import T0
from tests.store.helpers import add_leads, fr_numbers

PLAN = CampaignPlan(
    campaign_id="c1",
    name="spring",
    dial_string_template="PJSIP/{digits}@trunk",
    caller_id_number="0100000000",
    answer_to_agent_limit_s=0.05,
    amd_policy=AmdPolicy.HANGUP,
)


def build(callback_agent: str | None) -> tuple[Engine, FakePbx, MemoryRecord, AgentRegistry]:
    record = MemoryRecord([Lead("L1", "c1", "+33123450001", callback_agent_id=callback_agent)])
    agents = AgentRegistry(time.monotonic)
    pbx = FakePbx()
    engine = Engine(pbx, record, FakeGate(), agents)
    engine.add_campaign(PLAN, FixedPacer(1))
    for agent_id in ("1001", "1002"):
        agents.login(agent_id, ["c1"])
    agents.ready("1001")  # waited longest: the one an ordinary call goes to
    agents.ready("1002")
    return engine, pbx, record, agents


async def test_agent_only_callback_goes_to_its_agent_who_is_kept_for_it_from_the_dial() -> None:
    engine, pbx, _, agents = build("1002")
    assert await engine.tick() == 1
    assert agents.state_of("1002") is AgentState.RESERVED  # nobody else's call can take them now
    assert agents.state_of("1001") is AgentState.READY
    attempt = pbx.originates[0].attempt_id
    await engine.handle(Answered(attempt, time.time()))
    decision = await engine.on_answered(AnsweredCall(attempt, time.time(), amd=AmdResult.PERSON))
    assert decision == ConnectToAgent("1002")


async def test_an_ordinary_callback_goes_to_the_longest_waiting_agent() -> None:
    engine, pbx, _, agents = build(None)
    await engine.tick()
    assert agents.state_of("1002") is AgentState.READY
    attempt = pbx.originates[0].attempt_id
    await engine.handle(Answered(attempt, time.time()))
    decision = await engine.on_answered(AnsweredCall(attempt, time.time(), amd=AmdResult.PERSON))
    assert decision == ConnectToAgent("1001")


async def test_an_unanswered_callback_gives_its_agent_back() -> None:
    engine, pbx, _, agents = build("1002")
    await engine.tick()
    attempt = pbx.originates[0].attempt_id
    await engine.handle(Failed(attempt, time.time(), outcome=Outcome.NO_ANSWER, cause=19))
    assert agents.state_of("1002") is AgentState.READY


async def test_a_callback_whose_agent_left_meanwhile_is_not_dialed_and_waits() -> None:
    engine, pbx, record, agents = build("1002")
    agents.pause("1002")  # between the claim and the dial
    assert await engine.tick() == 0
    assert pbx.originates == []
    assert record.released[0][1].rule == "callback_agent_away"
    assert agents.state_of("1001") is AgentState.READY


async def _book(db: Database, campaign: CampaignRecord, agent: str) -> int:
    [lead] = await db.hopper.claim_leads(campaign.id, 1, T0, "n")
    attempt_id = await db.attempts.open_attempt(lead.lead_id, campaign.id, lead.number, "n", T0)
    await db.attempts.close_attempt(attempt_id, "connected", 16, "person", T0, agent_id=agent)
    await db.dispositions.record_disposition(
        attempt_id,
        "callback_requested",
        agent,
        now=T0,
        callback_at=T0 + timedelta(hours=1),
        callback_agent_only=True,
    )
    return lead.lead_id


async def test_agent_only_callback_goes_to_anyone_once_its_agent_is_away_past_the_grace(
    db: Database, campaign: CampaignRecord
) -> None:
    assert campaign.settings.callback_grace_s == 600
    await add_leads(db, campaign.id, fr_numbers(1), T0)
    lead_id = await _book(db, campaign, "ag7")
    within = T0 + timedelta(hours=1, seconds=599)
    assert await db.hopper.claim_leads(campaign.id, 5, within, "n", ready_agents={"ag1"}) == []
    past = T0 + timedelta(hours=1, seconds=600)
    [claimed] = await db.hopper.claim_leads(campaign.id, 5, past, "n", ready_agents={"ag1"})
    assert claimed.lead_id == lead_id
    assert claimed.callback is not None and claimed.callback.agent_id is None  # anyone's now
    await db.hopper.release_claims("n")
    # Its agent back in time still gets it, past the grace as well.
    [claimed] = await db.hopper.claim_leads(campaign.id, 5, past, "n", ready_agents={"ag1", "ag7"})
    assert claimed.callback is not None and claimed.callback.agent_id == "ag7"
