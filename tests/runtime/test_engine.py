"""The campaign engine on fake ports: the order of record and originate, answers, abandons, drain."""

from __future__ import annotations

import asyncio
import time

import pytest

from dialer.domain.agent import AgentState
from dialer.runtime.agents import AgentRegistry
from dialer.runtime.engine import Engine
from dialer.runtime.ports import AmdPolicy, CampaignPlan, Lead
from telephony.base import (
    AgentLegEnded,
    AmdResult,
    Answered,
    AnsweredCall,
    Connected,
    ConnectFailed,
    ConnectToAgent,
    Failed,
    HangupCall,
    HungUp,
    Outcome,
    PlayMessageThenHangup,
    Ringing,
)
from tests.runtime.fakes import FakeGate, FakePbx, FixedPacer, MemoryRecord

PLAN = CampaignPlan(
    campaign_id="c1",
    name="spring",
    dial_string_template="PJSIP/{digits}@trunk",
    caller_id_number="0100000000",
    answer_to_agent_limit_s=0.05,
    wrap_up_limit_s=0.05,
    amd_policy=AmdPolicy.HANGUP,
)


def lead(n: int) -> Lead:
    return Lead(f"L{n}", "c1", f"+3312345{n:04d}")


def build(leads=1, lines=1, plan=PLAN):
    pbx, record, gate, pacer = (
        FakePbx(),
        MemoryRecord([lead(i) for i in range(leads)]),
        FakeGate(),
        FixedPacer(lines),
    )
    agents = AgentRegistry(time.monotonic)
    engine = Engine(pbx, record, gate, agents)
    engine.add_campaign(plan, pacer)
    return engine, pbx, record, gate, pacer, agents


async def test_attempt_row_is_written_before_the_originate_is_sent():
    engine, pbx, record, *_ = build()
    seen_at_originate = []
    pbx.on_originate.append(lambda req: seen_at_originate.append(req.attempt_id in record.attempts))
    assert await engine.tick() == 1
    assert seen_at_originate == [True]
    (req,) = pbx.originates
    assert req.dial_string == "PJSIP/33123450000@trunk" and req.amd is True


async def test_blocked_lead_is_released_with_the_rule_and_never_dialed():
    engine, pbx, record, gate, *_ = build()
    gate.block[lead(0).number] = "dnc"
    assert await engine.tick() == 0
    assert pbx.originates == [] and record.attempts == {}
    assert record.released[0][1].rule == "dnc"
    assert engine.blocked["dnc"] == 1


async def test_gate_that_cannot_decide_blocks_the_call():
    engine, pbx, record, gate, *_ = build()
    gate.explode = True
    assert await engine.tick() == 0
    assert pbx.originates == []
    assert record.released[0][1].rule == "gate_error"


async def test_refused_originate_closes_the_attempt_as_failed():
    engine, pbx, record, *_ = build()
    pbx.refuse_next = "no such trunk"
    await engine.tick()
    (row,) = record.attempts.values()
    assert row["result"].outcome == "failed" and "no such trunk" in row["result"].detail
    assert engine.calls == {}


async def test_busy_outcome_is_written_once_even_when_the_event_repeats():
    engine, pbx, record, _, pacer, _ = build()
    await engine.tick()
    attempt = pbx.originates[0].attempt_id
    for _ in range(2):
        await engine.handle(Ringing(attempt, time.time()))
        await engine.handle(Failed(attempt, time.time(), outcome=Outcome.BUSY, cause=17))
    assert record.log == [f"open {attempt}", f"close {attempt} busy"]
    assert ("ring", "failed") in pacer.seen


async def test_answered_person_goes_to_the_longest_waiting_ready_agent_then_wrap_up_then_ready():
    engine, pbx, record, gate, pacer, agents = build()
    for agent_id in ("1001", "1002"):
        agents.login(agent_id, ["c1"])
    agents.ready("1002")
    agents.ready("1001")
    await engine.tick()
    attempt = pbx.originates[0].attempt_id
    await engine.handle(Answered(attempt, time.time()))
    decision = await engine.on_answered(AnsweredCall(attempt, time.time(), amd=AmdResult.PERSON))
    assert decision == ConnectToAgent("1002")
    assert agents.state_of("1002") is AgentState.RESERVED  # sent, not yet confirmed by the PBX
    await engine.handle(Connected(attempt, time.time(), "1002"))
    assert agents.state_of("1002") is AgentState.ON_CALL
    await engine.handle(HungUp(attempt, time.time(), cause=16))
    assert record.attempts[attempt]["result"].outcome == "connected"
    assert record.attempts[attempt]["result"].agent_id == "1002"
    assert agents.state_of("1002") is AgentState.WRAP_UP
    await engine.dispose("1002", attempt, "sale")
    assert agents.state_of("1002") is AgentState.READY
    assert record.dispositions == [(attempt, "1002", "sale")]
    assert ("agent", "wrap") in pacer.seen and ("agent", "ready") in pacer.seen
    assert ("ring", "person") in pacer.seen and ("person", False) in pacer.seen


async def test_person_with_nobody_free_in_time_hears_the_message_and_counts_as_abandoned():
    engine, pbx, record, gate, pacer, _ = build()
    await engine.tick()
    attempt = pbx.originates[0].attempt_id
    await engine.handle(Answered(attempt, time.time()))
    decision = await engine.on_answered(AnsweredCall(attempt, time.time(), amd=AmdResult.PERSON))
    assert decision == PlayMessageThenHangup(PLAN.identification_message)
    await engine.handle(HungUp(attempt, time.time(), cause=16))
    result = record.attempts[attempt]["result"]
    assert result.outcome == "abandoned" and result.abandoned and result.person_answered
    assert (lead(0).number, "abandoned") in gate.outcomes
    assert ("person", True) in pacer.seen


async def test_agent_freed_within_the_limit_takes_the_call():
    plan = CampaignPlan(**{**PLAN.__dict__, "answer_to_agent_limit_s": 1.0})
    engine, pbx, record, gate, pacer, agents = build(plan=plan)
    agents.login("1001", ["c1"])
    await engine.tick()
    attempt = pbx.originates[0].attempt_id
    await engine.handle(Answered(attempt, time.time()))
    asyncio.get_running_loop().call_later(0.1, agents.ready, "1001")
    decision = await engine.on_answered(AnsweredCall(attempt, time.time()))
    assert decision == ConnectToAgent("1001")


async def test_machine_is_hung_up_under_the_hangup_policy():
    engine, pbx, record, gate, *_ = build()
    await engine.tick()
    attempt = pbx.originates[0].attempt_id
    await engine.handle(Answered(attempt, time.time()))
    decision = await engine.on_answered(AnsweredCall(attempt, time.time(), amd=AmdResult.MACHINE))
    assert decision == HangupCall()
    await engine.handle(HungUp(attempt, time.time(), cause=16))
    result = record.attempts[attempt]["result"]
    assert result.outcome == "machine" and not result.person_answered


async def test_answer_for_an_unknown_attempt_is_hung_up_not_connected():
    engine, *_ = build()
    assert await engine.on_answered(AnsweredCall("stranger", time.time())) == HangupCall()
    assert engine.errors["unknown_answer"] == 1


async def test_wrap_up_limit_gives_the_default_disposition():
    engine, pbx, record, gate, pacer, agents = build()
    agents.login("1001", ["c1"])
    agents.ready("1001")
    await engine.tick()
    attempt = pbx.originates[0].attempt_id
    await engine.handle(Answered(attempt, time.time()))
    await engine.on_answered(AnsweredCall(attempt, time.time()))
    await engine.handle(Connected(attempt, time.time(), "1001"))
    await engine.handle(HungUp(attempt, time.time(), cause=16))
    await asyncio.sleep(0.15)
    assert record.dispositions == [(attempt, "1001", "not_qualified")]
    assert agents.state_of("1001") is AgentState.READY


async def test_do_not_call_disposition_is_written_with_its_gate_message():
    engine, pbx, record, gate, pacer, agents = build()
    agents.login("1001", ["c1"])
    agents.ready("1001")
    await engine.tick()
    attempt = pbx.originates[0].attempt_id
    await engine.handle(Answered(attempt, time.time()))
    await engine.on_answered(AnsweredCall(attempt, time.time()))
    await engine.handle(Connected(attempt, time.time(), "1001"))
    await engine.handle(HungUp(attempt, time.time(), cause=16))
    await engine.dispose("1001", attempt, "do_not_call")
    # in the same unit of work as the disposition: the outbox relay carries it to the gate
    assert record.outbox == [(lead(0).number, "do_not_call")]


async def test_reconcile_closes_every_attempt_left_open_with_the_reason():
    engine, pbx, record, *_ = build(leads=2, lines=2)
    await engine.tick()
    a1, a2 = (r.attempt_id for r in pbx.originates)
    engine.calls.clear()  # a restarted engine knows no call
    pbx.live = {a2}
    assert await engine.reconcile() == 2
    assert record.attempts[a1]["result"].outcome == "lost"
    assert "cut by the crash" in record.attempts[a1]["result"].detail
    assert "still live" in record.attempts[a2]["result"].detail


async def test_stop_drains_calls_in_progress_before_returning():
    engine, pbx, record, *_ = build()
    stop = asyncio.Event()
    task = asyncio.create_task(engine.run(stop, drain_timeout_s=5))
    while not pbx.originates:
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.sleep(0.05)
    assert not task.done()  # the call is still up
    attempt = pbx.originates[0].attempt_id
    await pbx.queue.put(Failed(attempt, time.time(), outcome=Outcome.NO_ANSWER, cause=19))
    await asyncio.wait_for(task, 2)
    assert record.attempts[attempt]["result"].outcome == "no_answer"
    assert len(pbx.originates) == 1


@pytest.mark.parametrize("events", [1, 3])
async def test_no_new_dial_while_lines_are_full(events):
    engine, pbx, *_ = build(leads=5, lines=1)
    for _ in range(events):
        await engine.tick()
    assert len(pbx.originates) == 1


async def test_graceful_stop_flushes_the_default_disposition_of_calls_still_in_wrap_up():
    plan = CampaignPlan(**{**PLAN.__dict__, "wrap_up_limit_s": 60.0})
    engine, pbx, record, gate, pacer, agents = build(plan=plan)
    agents.login("1001", ["c1"])
    agents.ready("1001")
    stop = asyncio.Event()
    task = asyncio.create_task(engine.run(stop, drain_timeout_s=0.2))
    while not pbx.originates:
        await asyncio.sleep(0.01)
    attempt = pbx.originates[0].attempt_id
    await pbx.queue.put(Answered(attempt, time.time()))
    await asyncio.sleep(0.02)
    await engine.on_answered(AnsweredCall(attempt, time.time()))
    await pbx.queue.put(Connected(attempt, time.time(), "1001"))
    await pbx.queue.put(HungUp(attempt, time.time(), cause=16))
    while agents.state_of("1001") is not AgentState.WRAP_UP:
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, 2)
    assert record.dispositions == [(attempt, "1001", "not_qualified")]
    assert agents.state_of("1001") is AgentState.READY


async def test_drain_waits_until_the_last_outcome_is_written_not_only_received():
    engine, pbx, record, *_ = build()
    slow_close = record.close_attempt

    async def close_slowly(attempt_id, result):
        await asyncio.sleep(0.3)
        return await slow_close(attempt_id, result)

    record.close_attempt = close_slowly
    stop = asyncio.Event()
    task = asyncio.create_task(engine.run(stop, drain_timeout_s=5))
    while not pbx.originates:
        await asyncio.sleep(0.01)
    stop.set()
    attempt = pbx.originates[0].attempt_id
    await pbx.queue.put(Failed(attempt, time.time(), outcome=Outcome.BUSY, cause=17))
    await asyncio.wait_for(task, 3)
    assert record.attempts[attempt]["result"].outcome == "busy"


async def test_bridge_that_refuses_the_customer_pauses_that_agent_and_gives_the_next_free_one():
    engine, pbx, record, gate, pacer, agents = build()
    for agent_id in ("1001", "1002"):
        agents.login(agent_id, ["c1"])
    agents.ready("1001")
    agents.ready("1002")
    await engine.tick()
    attempt = pbx.originates[0].attempt_id
    await engine.handle(Answered(attempt, time.time()))
    call = AnsweredCall(attempt, time.time(), amd=AmdResult.PERSON)
    assert await engine.on_answered(call) == ConnectToAgent("1001")
    again = await engine.on_connect_failed(call, "1001", "conf-locked")
    assert again == ConnectToAgent("1002")
    assert agents.state_of("1001") is AgentState.PAUSED  # the seat is checked before the next call
    assert engine.errors["seat_fault"] == 1
    await engine.handle(Connected(attempt, time.time(), "1002"))
    await engine.handle(HungUp(attempt, time.time(), cause=16))
    result = record.attempts[attempt]["result"]
    assert (result.outcome, result.agent_id) == ("connected", "1002")


async def test_customer_in_an_empty_bridge_is_never_recorded_connected_and_hears_the_message():
    engine, pbx, record, gate, pacer, agents = build()
    agents.login("1001", ["c1"], leg_id="leg-1001")
    agents.ready("1001")
    await engine.tick()
    attempt = pbx.originates[0].attempt_id
    await engine.handle(Answered(attempt, time.time()))
    assert await engine.on_answered(AnsweredCall(attempt, time.time())) == ConnectToAgent("1001")
    await engine.handle(AgentLegEnded("leg-1001", time.time(), "1001", 16, "Normal Clearing"))
    assert agents.state_of("1001") is None  # out of dialing at once
    await engine.handle(ConnectFailed(attempt, time.time(), "1001", "bridge agent_1001 empty"))
    assert pbx.messages == [(attempt, PLAN.identification_message)]
    await engine.handle(HungUp(attempt, time.time(), cause=16))
    result = record.attempts[attempt]["result"]
    assert result.outcome == "abandoned" and result.agent_id is None


async def test_customer_gone_before_the_connect_frees_the_agent():
    engine, pbx, record, gate, pacer, agents = build()
    agents.login("1001", ["c1"])
    agents.ready("1001")
    await engine.tick()
    attempt = pbx.originates[0].attempt_id
    await engine.handle(Answered(attempt, time.time()))
    await engine.on_answered(AnsweredCall(attempt, time.time()))
    await engine.handle(ConnectFailed(attempt, time.time(), "1001", "HANGUP", customer_gone=True))
    assert agents.state_of("1001") is AgentState.READY
    await engine.handle(HungUp(attempt, time.time(), cause=16))
    assert record.attempts[attempt]["result"].outcome != "connected"
    assert pbx.messages == []


async def test_agent_leg_hanging_up_mid_call_hangs_up_the_customer_and_logs_out_after_wrap_up():
    engine, pbx, record, gate, pacer, agents = build()
    agents.login("1001", ["c1"], leg_id="leg-1001")
    agents.ready("1001")
    await engine.tick()
    attempt = pbx.originates[0].attempt_id
    await engine.handle(Answered(attempt, time.time()))
    await engine.on_answered(AnsweredCall(attempt, time.time()))
    await engine.handle(Connected(attempt, time.time(), "1001"))
    await engine.handle(AgentLegEnded("an-old-stale-leg", time.time(), "1001", 16))
    assert agents.state_of("1001") is AgentState.ON_CALL  # not this agent's leg
    await engine.handle(AgentLegEnded("leg-1001", time.time(), "1001", 16))
    assert pbx.hangups == [attempt]
    await engine.handle(HungUp(attempt, time.time(), cause=16))
    assert record.attempts[attempt]["result"].outcome == "connected"
    await engine.dispose("1001", attempt, "sale")
    assert agents.state_of("1001") is None


async def test_answered_call_cut_by_a_pbx_restart_before_an_agent_is_lost():
    engine, pbx, record, gate, pacer, agents = build()
    await engine.tick()
    attempt = pbx.originates[0].attempt_id
    await engine.handle(Answered(attempt, time.time()))
    await engine.handle(HungUp(attempt, time.time(), cause=0, cause_text="cut by a PBX restart", lost=True))
    result = record.attempts[attempt]["result"]
    assert result.outcome == "lost" and "restart" in result.detail


async def test_call_that_ends_on_its_way_to_the_agent_leaves_no_agent_reserved():
    engine, pbx, record, gate, pacer, agents = build()
    agents.login("1001", ["c1"])
    agents.ready("1001")
    await engine.tick()
    attempt = pbx.originates[0].attempt_id
    await engine.handle(Answered(attempt, time.time()))
    assert await engine.on_answered(AnsweredCall(attempt, time.time())) == ConnectToAgent("1001")
    await engine.handle(HungUp(attempt, time.time(), cause=0, cause_text="cut by a PBX restart", lost=True))
    assert agents.state_of("1001") is AgentState.READY
    result = record.attempts[attempt]["result"]
    assert (result.outcome, result.agent_id) == ("lost", None)
    # the FastAGI session's late report of the same failed connect changes nothing
    await engine.handle(ConnectFailed(attempt, time.time(), "1001", "HANGUP", customer_gone=True))
    assert agents.state_of("1001") is AgentState.READY


async def test_person_who_hangs_up_while_waiting_for_an_agent_has_one_result_everywhere():
    plan = CampaignPlan(**{**PLAN.__dict__, "answer_to_agent_limit_s": 1.0})
    engine, pbx, record, gate, pacer, agents = build(plan=plan)
    await engine.tick()
    attempt = pbx.originates[0].attempt_id
    await engine.handle(Answered(attempt, time.time()))
    waiting = asyncio.create_task(engine.on_answered(AnsweredCall(attempt, time.time())))
    await asyncio.sleep(0.1)
    await engine.handle(HungUp(attempt, time.time(), cause=16))  # gave up before the limit
    assert await waiting == HangupCall()
    result = record.attempts[attempt]["result"]
    assert (result.outcome, result.abandoned) == ("abandoned", True)
    assert ("person", True) in pacer.seen and ("person", False) not in pacer.seen
    assert gate.outcomes.count((lead(0).number, "abandoned")) == 1
    assert engine.outcomes == {"abandoned": 1}


@pytest.mark.parametrize("stall_s", [3.0])
async def test_a_stalled_store_and_gate_never_hold_the_answer_decision(stall_s):
    plan = CampaignPlan(**{**PLAN.__dict__, "answer_to_agent_limit_s": 0.5})
    engine, pbx, record, gate, pacer, agents = build(plan=plan, leads=2, lines=2)
    agents.login("1001", ["c1"])
    agents.ready("1001")
    await engine.tick()
    first, second = (r.attempt_id for r in pbx.originates)
    for attempt in (first, second):
        await engine.handle(Answered(attempt, time.time()))

    async def stall(*_args, **_kwargs):
        await asyncio.sleep(stall_s)

    record.attempt_event = stall
    gate.record_outcome = stall
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await engine.on_answered(AnsweredCall(first, time.time())) == ConnectToAgent("1001")
    assert await engine.on_answered(AnsweredCall(second, time.time())) == PlayMessageThenHangup(
        PLAN.identification_message
    )
    await engine.handle(Connected(first, time.time(), "1001"))
    assert loop.time() - started < 0.5 + 0.3  # the limit, not the stalled writes
    assert agents.state_of("1001") is AgentState.ON_CALL


async def test_two_answers_racing_for_the_one_free_agent_never_share_it():
    engine, pbx, record, gate, pacer, agents = build(leads=2, lines=2)
    agents.login("1001", ["c1"])
    agents.ready("1001")
    await engine.tick()
    first, second = (r.attempt_id for r in pbx.originates)
    for attempt in (first, second):
        await engine.handle(Answered(attempt, time.time()))
    decisions = await asyncio.gather(
        engine.on_answered(AnsweredCall(first, time.time())),
        engine.on_answered(AnsweredCall(second, time.time())),
    )
    assert sorted(map(type, decisions), key=lambda t: t.__name__) == [ConnectToAgent, PlayMessageThenHangup]
    assert agents.state_of("1001") is AgentState.RESERVED
