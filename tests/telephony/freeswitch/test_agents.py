"""Agent legs and connects on the ESL simulator: a connect counts when the switch confirms it,
a dead agent leg is reported at once, and stale legs never receive a customer."""

from __future__ import annotations

import asyncio

from telephony.base import (
    AgentLegEnded,
    Answered,
    Connected,
    ConnectFailed,
    ConnectToAgent,
    HungUp,
    PlayMessageThenHangup,
)
from telephony.freeswitch.adapter import FreeSwitchPbx, _Live, parse_show_channels
from telephony.freeswitch.protocol import EslFrame, EslParser
from telephony.sim.freeswitch import FreeSwitchSimulator
from telephony.sim.model import CalleeKind, CalleePlan, ScriptedCallee
from tests.captures import load_freeswitch
from tests.telephony.freeswitch.conftest import TIME_SCALE, Recorder, ScriptedRouter, lab_pbx, settings_for
from tests.telephony.freeswitch.test_adapter import _until, request

SOFTPHONE = "sofia/dialer/1001@127.0.0.1:5081"
SOFTPHONE_BYE = "sofia/dialer/1002@127.0.0.1:5182"  # answers, hangs up 6 s later (agent_bye)


class Peers(ScriptedCallee):
    """The lab peers, plus agent_bye: an agent softphone that hangs up 6 s after answering."""

    def plan(self, number: str) -> CalleePlan:
        if number == "1002":
            return CalleePlan(CalleeKind.AGENT, 0.02, 6.0)
        return super().plan(number)


async def _sim() -> FreeSwitchSimulator:
    sim = FreeSwitchSimulator(Peers(), time_scale=TIME_SCALE)
    await sim.start()
    return sim


async def test_an_agent_leg_that_hangs_up_is_reported_at_once() -> None:
    sim = await _sim()
    pbx = lab_pbx(sim)
    await pbx.start()
    rec = Recorder(pbx)
    try:
        leg = await pbx.login_agent("1001", SOFTPHONE_BYE)
        await _until(lambda: pbx.agent_legs("1001") == {leg})
        ended = await rec.wait(AgentLegEnded, leg)
        assert isinstance(ended, AgentLegEnded)
        assert (ended.agent_id, ended.cause, ended.detail) == ("1001", 16, "hung up (NORMAL_CLEARING)")
        await rec.wait(HungUp, leg)
        # reported from the del-member, before the leg's own end, and once
        kinds = [type(e) for e in rec.events if e.attempt_id == leg]
        assert kinds.index(AgentLegEnded) < kinds.index(HungUp)
        assert kinds.count(AgentLegEnded) == 1
        assert pbx.agent_legs("1001") == frozenset()
    finally:
        await rec.close()
        await pbx.stop()
        await sim.stop()


async def test_a_customer_sent_to_an_agent_whose_leg_ended_is_offered_again() -> None:
    sim = await _sim()
    router = ScriptedRouter(ConnectToAgent("1001"), retry=PlayMessageThenHangup("dialer/abandon"))
    pbx = lab_pbx(sim)
    pbx.set_answer_router(router)
    await pbx.start()
    rec = Recorder(pbx)
    try:
        leg = await pbx.login_agent("1001", SOFTPHONE_BYE)
        await rec.wait(AgentLegEnded, leg)
        await pbx.originate(request("to-dead-seat", number="+33100002001"))
        await rec.wait(HungUp, "to-dead-seat", wait_s=5.0)  # after the identification message
        reason = "agent 1001 has no phone leg in conference agent_1001"
        assert router.failures == [("to-dead-seat", "1001", reason)]  # asked again, customer held
        assert not rec.of(Connected) and not rec.of(ConnectFailed)  # no transfer was even tried
        assert pbx.tracker.outcome_label("to-dead-seat") == "answered"
    finally:
        await rec.close()
        await pbx.stop()
        await sim.stop()


async def test_a_customer_gone_before_the_move_is_connect_failed_never_connected() -> None:
    sim = await _sim()
    # the customer (a short call: 1 s) hangs up while the router thinks (2 PBX seconds)
    router = ScriptedRouter(ConnectToAgent("1001"), delay_s=2.0 / TIME_SCALE)
    pbx = lab_pbx(sim)
    pbx.set_answer_router(router)
    await pbx.start()
    rec = Recorder(pbx)
    try:
        leg = await pbx.login_agent("1001", SOFTPHONE)
        await _until(lambda: pbx.agent_legs("1001") == {leg})
        await pbx.originate(request("gone", number="+33100008001"))
        failed = await rec.wait(ConnectFailed, "gone")
        assert isinstance(failed, ConnectFailed)
        assert (failed.agent_id, failed.reason, failed.customer_gone) == (
            "1001",
            "-ERR No such channel!",
            True,
        )
        assert rec.of(HungUp, "gone")
        assert not rec.of(Connected, "gone")
        assert router.failures == []  # nobody left to offer again
        assert pbx.agent_legs("1001") == {leg}  # the agent is untouched
    finally:
        await rec.close()
        await pbx.stop()
        await sim.stop()


async def test_a_connect_is_reported_when_the_customer_joins_the_conference() -> None:
    sim = await _sim()
    router = ScriptedRouter(ConnectToAgent("1001"))
    pbx = lab_pbx(sim)
    pbx.set_answer_router(router)
    await pbx.start()
    rec = Recorder(pbx)
    try:
        leg = await pbx.login_agent("1001", SOFTPHONE)
        await _until(lambda: pbx.agent_legs("1001") == {leg})
        await pbx.originate(request("joins", number="+33100002001"))
        connected = await rec.wait(Connected, "joins")
        assert isinstance(connected, Connected) and connected.agent_id == "1001"
        member = next(m for m in sim.switch.conferences["agent_1001"].members if m.uuid == "joins")
        assert member.role == "cust"  # the switch has it in the room when we say so
        assert pbx.agent_legs("1001") == {leg}  # a customer is not an agent leg
    finally:
        await rec.close()
        await pbx.stop()
        await sim.stop()


async def test_stale_legs_are_adopted_at_start_and_hung_up_when_the_agent_logs_in_again() -> None:
    sim = await _sim()
    first = lab_pbx(sim)
    await first.start()
    try:
        old = await first.login_agent("1001", SOFTPHONE)
        await _until(lambda: first.agent_legs("1001") == {old})
    finally:
        await first.stop()  # a dialer that stopped (or died) leaves the agent's leg in the room
    second = lab_pbx(sim)
    await second.start()
    rec = Recorder(second)
    try:
        await _until(lambda: second.agent_legs("1001") == {old})  # found at start: adopted
        new = await second.login_agent("1001", SOFTPHONE)
        await _until(lambda: second.agent_legs("1001") == {new})
        await _until(lambda: sim.switch.find(old) is None)
        assert second.stale_legs_cleared == 1
        await rec.wait(Answered, new)
        assert not rec.of(AgentLegEnded)  # clearing a stale leg does not log the agent out
    finally:
        await rec.close()
        await second.stop()
        await sim.stop()


def _capture_frames(name: str) -> list[EslFrame]:
    parser = EslParser()
    return [f for _, raw in load_freeswitch(name).received for f in parser.feed(raw.encode())]


async def test_the_recorded_agent_leg_hang_ups_are_agent_leg_ended_once_each() -> None:
    """agent_leg_hangs_up as FreeSWITCH sent it: the legs are known from their add-member alone
    (as after a restart of the dialer), the customer is ours; each leg's BYE ends it once."""
    pbx = FreeSwitchPbx(settings_for(1))
    rec = Recorder(pbx)
    try:
        pbx._register("fs-custbye", "fs-custbye-job", _Live(connection=0, amd=False))
        for frame in _capture_frames("agent_leg_hangs_up"):
            await pbx._on_item(frame, 1.0)
        await asyncio.sleep(0)
        ended = [e for e in rec.events if isinstance(e, AgentLegEnded)]
        assert [(e.attempt_id, e.agent_id, e.cause, e.detail) for e in ended] == [
            ("agent-1001-bye1", "1001", 16, "hung up (NORMAL_CLEARING)"),
            ("agent-1001-bye2", "1001", 16, "hung up (NORMAL_CLEARING)"),
        ]
        # the customer left alone in agent_1001 is no agent leg, and the seat is empty
        assert pbx.agent_legs("1001") == frozenset()
        assert [e.attempt_id for e in rec.events if isinstance(e, Connected)] == ["fs-custbye"]
    finally:
        await rec.close()
        for task in list(pbx._tasks):
            task.cancel()


def test_the_show_channels_answer_of_a_restarted_switch_lists_no_channel() -> None:
    capture = load_freeswitch("restart_with_calls_after")
    frames = _capture_frames("restart_with_calls_after")
    replies = [f.reply_text for f in frames if f.content_type == "api/response"]
    assert any(s.startswith("api show channels as json") for _, s in capture.sent)
    assert parse_show_channels(replies[0]) == {}  # {"row_count": 0}: no "rows" key at all


async def test_a_second_leg_joining_the_room_of_an_agent_seated_here_is_hung_up() -> None:
    sim = await _sim()
    pbx = lab_pbx(sim)
    await pbx.start()
    rec = Recorder(pbx)
    try:
        leg = await pbx.login_agent("1001", SOFTPHONE)
        await _until(lambda: pbx.agent_legs("1001") == {leg})
        # someone (an operator, a dialer that did not stop) calls another phone into agent_1001
        sim.switch.originate("", "{origination_uuid=intruder}" + SOFTPHONE + " agent_1001 XML dialer")
        await _until(lambda: sim.switch.find("intruder") is not None)
        await _until(lambda: sim.switch.find("intruder") is None)  # hung up by the adapter
        assert pbx.agent_legs("1001") == {leg}
        assert pbx.stale_legs_cleared == 1
        assert not rec.of(AgentLegEnded)  # the agent's own leg is untouched, nobody logged out
        assert sim.switch.find(leg) is not None
    finally:
        await rec.close()
        await pbx.stop()
        await sim.stop()
