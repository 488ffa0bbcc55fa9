"""The simulator's dial-in phones, ChanSpy and ConfBridge manager actions beyond the captured run."""

from __future__ import annotations

import pytest

from telephony.sim.asterisk import AsteriskSimulator
from tests.telephony.sim.ami_client import AmiTestClient, event, response

FAST = 50.0


async def test_phone_dials_in_answers_joins_its_bridge_and_sends_bye() -> None:
    async with AsteriskSimulator(time_scale=FAST, lab_peers=True, version="22.10.1") as sim:
        client = await AmiTestClient.connect(sim.port)
        uid = sim.phone_dials_in("agentphone", "92107", hangs_up_after_s=2.0)
        new = await client.wait_for(event("Newchannel", Uniqueid=uid))
        assert (new["Context"], new["Exten"], new["ChannelStateDesc"]) == ("dialer-agent", "92107", "Ring")
        assert (new["CallerIDNum"], new["CallerIDName"]) == ("agentphone", "Agent")
        join = await client.wait_for(event("ConfbridgeJoin", Uniqueid=uid))
        assert (join["Conference"], join["Admin"], join["Muted"], join["Priority"]) == (
            "agent_2107",
            "No",
            "No",
            "2",
        )
        hangup = await client.wait_for(event("Hangup", Uniqueid=uid))
        assert hangup["Cause"] == "16"
        assert client.matching(event("ConfbridgeEnd", Conference="agent_2107"))
        assert sim.live_channels() == []
        await client.close()


async def test_phone_dials_in_on_the_lab_dialplan_uses_the_projects_dialer_agent() -> None:
    async with AsteriskSimulator(time_scale=FAST, dialplan="lab") as sim:
        client = await AmiTestClient.connect(sim.port)
        uid = sim.phone_dials_in("agentphone", "91001")
        join = await client.wait_for(event("ConfbridgeJoin", Uniqueid=uid))
        assert join["Conference"] == "agent_1001"
        await client.close()


async def _phone_in_bridge(sim: AsteriskSimulator, client: AmiTestClient, exten: str) -> str:
    uid = sim.phone_dials_in("agentphone", exten)
    join = await client.wait_for(event("ConfbridgeJoin", Uniqueid=uid))
    return join["Channel"]


async def test_chanspy_stops_and_hangs_up_the_spy_when_the_spied_phone_hangs_up() -> None:
    async with AsteriskSimulator(time_scale=FAST, lab_peers=True, version="22.10.1") as sim:
        client = await AmiTestClient.connect(sim.port)
        phone = await _phone_in_bridge(sim, client, "92108")
        client.send(
            Action="Originate",
            ActionID="spy",
            Channel="PJSIP/listen@supervisor",
            Application="ChanSpy",
            Data="PJSIP/agentphone,qE",
            Async="true",
            ChannelId="spy-1",
        )
        start = await client.wait_for(event("ChanSpyStart", SpyerUniqueid="spy-1"))
        assert start["SpyeeChannel"] == phone
        client.send(Action="Hangup", ActionID="h", Channel=phone)
        await client.wait_for(event("ChanSpyStop", SpyerUniqueid="spy-1"))
        await client.wait_for(event("Hangup", Uniqueid="spy-1"))
        await client.close()


async def test_chanspy_waits_silently_for_a_channel_to_spy_on() -> None:
    async with AsteriskSimulator(time_scale=FAST, lab_peers=True, version="22.10.1") as sim:
        client = await AmiTestClient.connect(sim.port)
        client.send(
            Action="Originate",
            ActionID="spy",
            Channel="PJSIP/listen@supervisor",
            Application="ChanSpy",
            Data="PJSIP/agentphone,q",
            Async="true",
            ChannelId="spy-2",
        )
        await client.wait_for(event("OriginateResponse", ActionID="spy"))
        phone = await _phone_in_bridge(sim, client, "92109")
        start = await client.wait_for(event("ChanSpyStart", SpyerUniqueid="spy-2"))
        assert start["SpyeeChannel"] == phone
        spy = start["SpyerChannel"]
        client.send(Action="Hangup", ActionID="h", Channel=spy)
        assert (await client.wait_for(response("h")))["Response"] == "Success"
        hangup = await client.wait_for(event("Hangup", Uniqueid="spy-2"))
        assert hangup["Cause"] == "0"
        assert len(client.matching(event("ChanSpyStop", SpyerUniqueid="spy-2"))) == 1
        await client.close()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "No Conference name provided."),
        ({"Conference": "agent_9999", "Channel": "PJSIP/x-00000000"}, "No Conference by that name found."),
        ({"Conference": "agent_2110"}, "No channel name provided."),
        (
            {"Conference": "agent_2110", "Channel": "PJSIP/nobody-00000009"},
            "No Channel by that name found in Conference.",
        ),
    ],
)
async def test_confbridge_mute_refusals(fields: dict[str, str], message: str) -> None:
    async with AsteriskSimulator(time_scale=FAST, lab_peers=True, version="22.10.1") as sim:
        client = await AmiTestClient.connect(sim.port)
        await _phone_in_bridge(sim, client, "92110")
        client.send(Action="ConfbridgeMute", ActionID="m", **fields)
        reply = await client.wait_for(response("m"))
        assert (reply["Response"], reply["Message"]) == ("Error", message)
        assert not client.matching(event("ConfbridgeMute"))
        await client.close()


async def test_confbridge_list_of_a_member_muted_then_unmuted() -> None:
    async with AsteriskSimulator(time_scale=FAST, lab_peers=True, version="22.10.1") as sim:
        client = await AmiTestClient.connect(sim.port)
        phone = await _phone_in_bridge(sim, client, "92111")
        client.send(Action="ConfbridgeMute", ActionID="m", Conference="agent_2111", Channel=phone)
        assert (await client.wait_for(response("m")))["Message"] == "User muted"
        muted = await client.wait_for(event("ConfbridgeMute", Channel=phone))
        assert muted["Admin"] == "No"
        client.send(Action="ConfbridgeList", ActionID="l", Conference="agent_2111")
        await client.wait_for(event("ConfbridgeListComplete", ActionID="l"))
        listed = client.matching(event("ConfbridgeList", ActionID="l"))
        assert [(m["Channel"], m["Muted"]) for m in listed] == [(phone, "Yes")]
        client.send(Action="ConfbridgeList", ActionID="l2", Conference="agent_0000")
        reply = await client.wait_for(response("l2"))
        assert (reply["Response"], reply["Message"]) == ("Error", "No Conference by that name found.")
        await client.close()
