"""The adapter end to end against the ESL simulator (real framing, the captures' event sequences)."""

from __future__ import annotations

from telephony.base import Answered, CallEvent, Connected, ConnectToAgent, HungUp, PlayMessageThenHangup
from telephony.sim.freeswitch import FreeSwitchSimulator
from tests.telephony.freeswitch.conftest import ScriptedRouter, collect_until_ended, lab_pbx
from tests.telephony.freeswitch.test_adapter import _until, request

# lab numbering (4th digit from the end) -> the outcome label the tracker must give
LAB = {
    "+33100002001": "answered",
    "+33100003001": "busy",
    "+33100004001": "no_answer",
    "+33100005001": "congestion",
    "+33100006001": "invalid_number",
    "+33100007001": "answered",  # a greeting with no beep looks like a person to avmd
    "+33100009001": "answered:machine",
}


async def test_every_lab_callee_gets_its_outcome_through_the_simulator(sim: FreeSwitchSimulator) -> None:
    router = ScriptedRouter(ConnectToAgent("1001"))
    pbx = lab_pbx(sim, amd_window_s=2.0)
    pbx.set_answer_router(router)
    await pbx.start()
    try:
        ids = {}
        for i, number in enumerate(LAB):
            attempt = f"sim-{i}"
            ids[attempt] = number
            # detection for the machines only: a person is routed as soon as it is parked
            amd = number[-4] in "79"
            await pbx.originate(request(attempt, number=number, amd=amd, ring_timeout_s=6))
        events = await collect_until_ended(pbx, set(ids))
        got = {a: pbx.tracker.outcome_label(a) for a in ids}
        assert got == {a: LAB[n] for a, n in ids.items()}
        assert sorted(sim.originates_received) == sorted(ids)
        # the person was moved into the agent's conference
        person = next(a for a, n in ids.items() if n == "+33100002001")
        assert any(isinstance(e, Connected) and e.attempt_id == person for e in events)
        assert pbx.client.protocol_errors == 0
    finally:
        await pbx.stop()


async def test_agent_login_then_a_customer_joins_the_agent_conference(sim: FreeSwitchSimulator) -> None:
    router = ScriptedRouter(ConnectToAgent("1001"))
    pbx = lab_pbx(sim)
    pbx.set_answer_router(router)
    await pbx.start()
    try:
        leg = await pbx.login_agent("1001", "sofia/dialer/1001@127.0.0.1:5081")
        events: list[CallEvent] = []
        async for event in pbx.events():
            events.append(event)
            if isinstance(event, Answered) and event.attempt_id == leg:
                break
        await _until(lambda: pbx.agent_legs("1001") == {leg})
        # the agent's own leg joining its conference is no customer's connect
        assert not [e for e in events if isinstance(e, Connected)]
        await pbx.originate(request("joins", number="+33100002001"))
        joined = await collect_until_ended(pbx, {"joins"})
        assert [(e.attempt_id, e.agent_id) for e in joined if isinstance(e, Connected)] == [("joins", "1001")]
        assert [c.attempt_id for c in router.calls] == ["joins"]  # the agent leg is never routed
        assert leg in await pbx.live_attempts()
        await pbx.hangup(leg)
        await collect_until_ended(pbx, {leg})
        assert pbx.router_errors == pbx.action_errors == 0
    finally:
        await pbx.stop()


async def test_abandon_message_is_played_then_the_call_hangs_up(sim: FreeSwitchSimulator) -> None:
    router = ScriptedRouter(PlayMessageThenHangup("dialer/abandon"))
    pbx = lab_pbx(sim)
    pbx.set_answer_router(router)
    await pbx.start()
    try:
        await pbx.originate(request("abandoned", number="+33100002002"))
        events = await collect_until_ended(pbx, {"abandoned"})
        assert pbx.tracker.outcome_label("abandoned") == "answered"
        hung = [e for e in events if isinstance(e, HungUp)]
        assert [(h.attempt_id, h.cause) for h in hung] == [("abandoned", 16)]
        assert [c.attempt_id for c in router.calls] == ["abandoned"]
        assert pbx.router_errors == pbx.action_errors == 0
    finally:
        await pbx.stop()
