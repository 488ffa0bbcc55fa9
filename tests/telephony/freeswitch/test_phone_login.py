"""Phone login on FreeSWITCH: an agent dials 9<id>, types a PIN, and its leg joins agent_<id>.

Against the ESL simulator over TCP, with the shipped dialplan (``dialer_agent_login``).
"""

from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from telephony.base import AgentLegEnded, Connected, ConnectToAgent
from telephony.freeswitch.adapter import FreeSwitchPbx
from telephony.freeswitch.agent_login import AGENT_VARIABLE, PIN_VARIABLE, login_extension
from telephony.sim.esl_switch import LOGIN_DIGITS_DATA
from telephony.sim.freeswitch import FreeSwitchSimulator
from telephony.sim.model import ScriptedCallee
from tests.telephony.freeswitch.conftest import TIME_SCALE, Recorder, ScriptedRouter, settings_for
from tests.telephony.freeswitch.test_adapter import _until, request

PIN = "908172"
DIALPLAN = Path(__file__).resolve().parents[3] / "config" / "freeswitch" / "dialplan" / "dialer.xml"


def test_the_shipped_login_extension_sets_what_the_adapter_and_the_simulator_expect() -> None:
    root = ET.parse(DIALPLAN).getroot()
    extension = root.find("context[@name='dialer']/extension[@name='dialer_agent_login']")
    assert extension is not None
    condition = extension.find("condition")
    assert condition is not None
    assert re.match(condition.get("expression", ""), login_extension("1001"))
    assert not re.match(condition.get("expression", ""), "agent_1001")
    actions = [(a.get("application"), a.get("data", "")) for a in condition.iter("action")]
    assert actions[0] == ("answer", "") and actions[-1] == ("park", "")
    assert ("set", f"{AGENT_VARIABLE}=$1") in actions
    digits = next(data for app, data in actions if app == "play_and_get_digits")
    assert digits == LOGIN_DIGITS_DATA  # the simulator plays the same application
    words = digits.split()
    assert (words[0], words[1], words[2], words[4], words[7]) == ("4", "12", "3", "#", PIN_VARIABLE)


@dataclass
class Logins:
    """``PhoneLogin`` that knows one PIN per agent and remembers every question."""

    pins: dict[str, str] = field(default_factory=lambda: {"1001": PIN})
    asked: list[tuple[str, str, str]] = field(default_factory=list)

    async def on_phone_login(self, agent_id: str, pin: str, leg_id: str) -> str | None:
        self.asked.append((agent_id, pin, leg_id))
        return None if self.pins.get(agent_id) == pin else "wrong PIN"


@pytest.fixture
async def sim() -> AsyncIterator[FreeSwitchSimulator]:
    server = FreeSwitchSimulator(ScriptedCallee(), time_scale=TIME_SCALE)  # the shipped dialplan
    await server.start()
    yield server
    await server.stop()


async def _pbx(sim: FreeSwitchSimulator, logins: Logins | None) -> FreeSwitchPbx:
    pbx = FreeSwitchPbx(settings_for(sim.port))
    if logins is not None:
        pbx.set_phone_login(logins)
    await pbx.start()
    return pbx


def _members(sim: FreeSwitchSimulator, conference: str) -> list[str]:
    room = sim.switch.conferences.get(conference)
    return [m.uuid for m in room.members] if room is not None else []


async def test_the_right_pin_puts_the_phone_in_the_agents_conference_and_its_hangup_ends_dialing(
    sim: FreeSwitchSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    logins = Logins()
    pbx = await _pbx(sim, logins)
    pbx.set_answer_router(ScriptedRouter(ConnectToAgent("1001")))
    rec = Recorder(pbx)
    try:
        leg = sim.agent_dials_in("1001", PIN)
        await _until(lambda: pbx.agent_legs("1001") == {leg})
        assert logins.asked == [("1001", PIN, leg)]
        assert _members(sim, "agent_1001") == [leg]
        assert pbx.phone_logins_accepted == 1
        # the PIN was taken off the channel at once
        assert "dialer_login_pin" not in sim.switch.channels[leg].login_vars
        # the seat works: a customer is connected to the phone's conference
        await pbx.originate(request("cust-1", number="+33100002001"))
        connected = await rec.wait(Connected, "cust-1")
        assert isinstance(connected, Connected) and connected.agent_id == "1001"
        assert sorted(_members(sim, "agent_1001")) == sorted([leg, "cust-1"])
        # the phone hangs up: the agent is out of dialing at once
        assert sim.agent_phone_hangs_up(leg)
        ended = await rec.wait(AgentLegEnded, leg)
        assert isinstance(ended, AgentLegEnded)
        assert (ended.agent_id, ended.cause) == ("1001", 16)
        assert len(rec.of(AgentLegEnded, leg)) == 1
        assert pbx.agent_legs("1001") == frozenset()
    finally:
        await rec.close()
        await pbx.stop()
    assert PIN not in caplog.text


async def test_a_wrong_pin_is_refused_three_times_then_the_phone_is_hung_up(
    sim: FreeSwitchSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    logins = Logins()
    pbx = await _pbx(sim, logins)
    rec = Recorder(pbx)
    try:
        wrong = ["111111", "222222", "333333", PIN]  # the fourth PIN is never asked for
        leg = sim.agent_dials_in("1001", wrong)
        await _until(lambda: sim.switch.find(leg) is None, wait_s=5.0)
        assert logins.asked == [("1001", p, leg) for p in wrong[:3]]
        assert pbx.phone_logins_refused == 3 and pbx.phone_logins_accepted == 0
        assert _members(sim, "agent_1001") == []
        assert pbx.agent_legs("1001") == frozenset()
        assert not rec.of(AgentLegEnded)  # never seated: nothing to end
    finally:
        await rec.close()
        await pbx.stop()
    assert not any(p in caplog.text for p in wrong)


async def test_a_wrong_pin_then_the_right_one_logs_the_agent_in(sim: FreeSwitchSimulator) -> None:
    logins = Logins()
    pbx = await _pbx(sim, logins)
    try:
        leg = sim.agent_dials_in("1001", ["1234", PIN])
        await _until(lambda: pbx.agent_legs("1001") == {leg}, wait_s=5.0)
        assert logins.asked == [("1001", "1234", leg), ("1001", PIN, leg)]
        assert _members(sim, "agent_1001") == [leg]
    finally:
        await pbx.stop()


async def test_a_phone_login_replaces_the_agents_older_leg(sim: FreeSwitchSimulator) -> None:
    logins = Logins()
    pbx = await _pbx(sim, logins)
    rec = Recorder(pbx)
    try:
        first = sim.agent_dials_in("1001", PIN)
        await _until(lambda: pbx.agent_legs("1001") == {first})
        second = sim.agent_dials_in("1001", PIN)
        await _until(lambda: pbx.agent_legs("1001") == {second})
        await _until(lambda: sim.switch.find(first) is None)
        assert _members(sim, "agent_1001") == [second]
        assert not rec.of(AgentLegEnded)  # the old leg was ours to clear, not a lost agent
    finally:
        await rec.close()
        await pbx.stop()


async def test_without_a_phone_login_the_call_is_refused_once_and_hung_up(sim: FreeSwitchSimulator) -> None:
    pbx = await _pbx(sim, None)
    try:
        leg = sim.agent_dials_in("1001", [PIN, PIN])
        await _until(lambda: sim.switch.find(leg) is None, wait_s=5.0)
        assert pbx.phone_logins_refused == 1
        assert _members(sim, "agent_1001") == []
    finally:
        await pbx.stop()


async def test_a_phone_that_hangs_up_while_the_pin_is_checked_ends_the_agent(
    sim: FreeSwitchSimulator,
) -> None:
    """Signed in with a leg that is gone before the move: AgentLegEnded tells the runtime."""

    class Slow(Logins):
        async def on_phone_login(self, agent_id: str, pin: str, leg_id: str) -> str | None:
            sim.agent_phone_hangs_up(leg_id)
            await _until(lambda: sim.switch.find(leg_id) is None)
            return await super().on_phone_login(agent_id, pin, leg_id)

    pbx = await _pbx(sim, Slow())
    rec = Recorder(pbx)
    try:
        leg = sim.agent_dials_in("1001", PIN)
        ended = await rec.wait(AgentLegEnded, leg)
        assert isinstance(ended, AgentLegEnded) and ended.agent_id == "1001"
        assert pbx.agent_legs("1001") == frozenset()
    finally:
        await rec.close()
        await pbx.stop()
