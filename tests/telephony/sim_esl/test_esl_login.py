"""The ESL simulator's agent phone: it dials the login extension 9<id> and types a PIN.

No capture of this flow exists; the events are recorded ones of a parked channel turned
inbound (``Switch.dial_in``).  These tests pin what the adapter relies on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from telephony.sim.freeswitch import FreeSwitchSimulator
from telephony.sim.model import ScriptedCallee
from tests.telephony.sim_esl.test_esl_server import connect


@pytest.fixture
async def sim() -> AsyncIterator[FreeSwitchSimulator]:
    simulator = FreeSwitchSimulator(ScriptedCallee(), time_scale=50.0)
    await simulator.start()
    yield simulator
    await simulator.stop()


def _is(name: str, uuid: str) -> object:
    return lambda f: f.get("Event-Name") == name and f.get("Unique-ID") == uuid


async def test_the_phone_answers_asks_for_the_pin_and_parks_with_the_login_variables(
    sim: FreeSwitchSimulator,
) -> None:
    client = await connect(sim)
    uuid = sim.agent_dials_in("1001", "4321")
    frames = await client.until(_is("CHANNEL_PARK", uuid))
    names = [(f.get("Event-Name"), f.get("Application")) for f in frames if f.is_event]
    assert names == [
        ("CHANNEL_CREATE", ""),
        ("CHANNEL_ANSWER", ""),
        ("CHANNEL_EXECUTE_COMPLETE", "answer"),
        ("CHANNEL_EXECUTE_COMPLETE", "play_and_get_digits"),
        ("CHANNEL_PARK", ""),
    ]
    park = frames[-1]
    assert park.get("variable_dialer_login_agent") == "1001"
    assert park.get("variable_dialer_login_pin") == "4321"
    assert park.get("Call-Direction") == "inbound"
    assert park.get("Caller-Destination-Number") == "91001"
    assert not [f for f in frames if f.get("variable_dialer_attempt")]
    rows = await client.command("api show channels as json")
    assert '"direction": "inbound"' in rows.body


async def test_uuid_setvar_without_a_value_takes_the_pin_out_of_later_events(
    sim: FreeSwitchSimulator,
) -> None:
    client = await connect(sim)
    uuid = sim.agent_dials_in("1001", "4321")
    await client.until(_is("CHANNEL_PARK", uuid))
    assert (await client.command(f"api uuid_setvar {uuid} dialer_login_pin")).body == "+OK\n"
    assert sim.agent_phone_hangs_up(uuid)
    frames = await client.until(_is("CHANNEL_HANGUP_COMPLETE", uuid))
    assert all(f.get("variable_dialer_login_pin") == "" for f in frames)
    assert frames[-1].get("variable_dialer_login_agent") == "1001"
    assert frames[-1].get("variable_sip_hangup_disposition") == "recv_bye"


async def test_moved_into_its_conference_the_phone_is_a_member_until_it_hangs_up(
    sim: FreeSwitchSimulator,
) -> None:
    client = await connect(sim)
    uuid = sim.agent_dials_in("1001", "4321")
    await client.until(_is("CHANNEL_PARK", uuid))
    assert (await client.command(f"api uuid_transfer {uuid} agent_1001 XML dialer")).body == "+OK\n"
    added = await client.until(lambda f: f.get("Action") == "add-member")
    assert added[-1].get("Unique-ID") == uuid
    assert added[-1].get("Conference-Name") == "agent_1001"
    sim.agent_phone_hangs_up(uuid)
    frames = await client.until(_is("CHANNEL_HANGUP_COMPLETE", uuid))
    left = [f for f in frames if f.get("Action") == "del-member"]
    assert [f.get("Unique-ID") for f in left] == [uuid]
    assert left[0].get("Hangup-Cause") == "NORMAL_CLEARING"


async def test_sent_back_to_the_login_extension_the_phone_types_its_next_pin(
    sim: FreeSwitchSimulator,
) -> None:
    client = await connect(sim)
    uuid = sim.agent_dials_in("1001", ["1111", "2222"])
    await client.until(_is("CHANNEL_PARK", uuid))
    for app, arg in (("playback", "voicemail/vm-fail_auth.wav"), ("transfer", "91001 XML dialer")):
        reply = await client.command(
            f"sendmsg {uuid}\ncall-command: execute\nexecute-app-name: {app}\n"
            f"execute-app-arg: {arg}\nevent-lock: true"
        )
        assert reply.outer["Reply-Text"] == "+OK"
    frames = await client.until(_is("CHANNEL_PARK", uuid))
    apps = [f.get("Application") for f in frames if f.get("Event-Name") == "CHANNEL_EXECUTE_COMPLETE"]
    assert apps == ["playback", "park", "play_and_get_digits"]
    assert frames[-1].get("variable_dialer_login_pin") == "2222"
