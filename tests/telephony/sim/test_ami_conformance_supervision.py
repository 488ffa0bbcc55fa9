"""The Asterisk simulator against the supervision captures of Asterisk 22.10.1.

``sip_agent_dials_login_extension`` and ``sip_supervisor_listen_whisper_barge``
(see the capture README): an agent's phone that dials in to ``[dialer-agent]``
(a channel the dialer did not originate), a customer connected by FastAGI, and
a supervisor who spies with ChanSpy (dtmf, listen, whisper, barge) and then
joins the agent's full ConfBridge as a muted admin, listed, unmuted and muted
by AMI.  Replayed as the fault captures are (``test_ami_conformance``: the
project's dialplan, the ``dialer`` user, the lab's SIP peers), the phone
dialling at the time its Newchannel was recorded (``capture_replay``), the
FastAGI side from ``fastagi_sessions_sip_supervision.json``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from telephony.asterisk.protocol import AmiMessage
from telephony.sim.asterisk import AsteriskSimulator
from tests.captures import Capture, load_asterisk
from tests.conftest import ASTERISK_CAPTURES
from tests.telephony.sim.capture_replay import (
    Normalizer,
    assert_same_instants,
    assert_same_order,
    capture_messages,
    device_summary,
    preset_ids,
    replay,
    split_noise,
)
from tests.telephony.sim.test_ami_conformance import FAULT_VERSION, TIME_SCALE, FaultAgiServer, _env_value

SCENARIOS = ["sip_agent_dials_login_extension", "sip_supervisor_listen_whisper_barge"]

# In-instant orders another capture of the same situation contradicts (see ORDER_RACES of
# test_ami_conformance):
ORDER_RACES = {
    # the customer's OriginateResponse after DialEnd here, before it for the same SIP person
    # into dialer-answered in sip_answered_person; at the phone's BYE its BRIDGEPEER is
    # cleared before ConfbridgeLeave and BridgeLeave here, after BridgeLeave when the agent
    # leg sends BYE in sip_agent_leg_hangs_up_idle
    "sip_agent_dials_login_extension",
    # one capture, four supervisor calls into ChanSpy: the OriginateResponse after Newstate
    # and DialEnd (dtmf, listen), before them (whisper, barge)
    "sip_supervisor_listen_whisper_barge",
}


class SupervisionAgiServer(FaultAgiServer):
    """The dialer's FastAGI side of ``fastagi_sessions_sip_supervision.json``."""

    def __init__(self, scenario: str) -> None:
        super().__init__(scenario)
        data = json.loads((ASTERISK_CAPTURES / "fastagi_sessions_sip_supervision.json").read_text())
        self.sessions = {
            _env_value(s["env"], "agi_uniqueid"): s for s in data["agi"] if s["scenario"] == scenario
        }


def _on_a_fresh_pbx(capture: Capture) -> Capture:
    """The capture's actions naming the channels as a freshly started simulator names them.

    The lab Asterisk had made 0x17 PJSIP channels before this session (its Hangups say
    ``PJSIP/supervisor-00000019``); the simulator's counter starts at 0, in the same order.
    """
    names: dict[str, str] = {}
    for _, message in capture_messages(capture):
        channel = message.get("Channel", "")
        if message.get("Event") == "Newchannel" and channel.startswith("PJSIP/"):
            names[channel] = f"{channel.rsplit('-', 1)[0]}-{len(names):08x}"
    sent = []
    for t, raw in capture.sent:
        for old, new in names.items():
            raw = raw.replace(f"Channel: {old}\r\n", f"Channel: {new}\r\n")
        sent.append((t, raw))
    return Capture(capture.scenario, capture.path, sent, capture.received, capture.raw)


def _compare(capture: Capture, messages: list[tuple[float, AmiMessage]], label: str) -> None:
    expected_main, expected_devices = split_noise(capture_messages(capture))
    got_main, got_devices = split_noise(messages)
    expected_norm = Normalizer(preset_ids(capture))
    got_norm = Normalizer(preset_ids(capture))
    expected = [(t, expected_norm.message(m)) for t, m in expected_main]
    got = [got_norm.message(m) for _, m in got_main]
    assert_same_instants(expected, got, label)
    assert device_summary(got_devices) == device_summary(expected_devices), label
    if capture.scenario not in ORDER_RACES:
        assert_same_order([item for _, item in expected], got, label)


async def _run(name: str) -> tuple[Capture, list[tuple[float, AmiMessage]], SupervisionAgiServer]:
    agi = SupervisionAgiServer(name)
    await agi.start()
    capture = _on_a_fresh_pbx(load_asterisk(name))
    sim = AsteriskSimulator(
        shape="sip",
        time_scale=TIME_SCALE,
        dialplan="production",
        fastagi_port=agi.port,
        lab_peers=True,
        system_read=False,
        version=FAULT_VERSION,
    )
    await sim.start()
    try:
        result = await replay(capture, sim, TIME_SCALE)
    finally:
        await sim.crash()
        await agi.close()
    return capture, result.messages, agi


@pytest.mark.parametrize("name", SCENARIOS)
async def test_supervision_scenario_matches_capture(name: str) -> None:
    capture, messages, agi = await _run(name)
    _compare(capture, messages, name)
    agi.check(messages)


def _dialled_in(messages: list[Any]) -> AmiMessage:
    return next(m for _, m in messages if m.get("Event") == "Newchannel" and m["Context"] == "dialer-agent")


async def test_phone_dials_in_with_a_uniqueid_of_asterisk_and_joins_its_agent_bridge() -> None:
    capture, messages, _ = await _run("sip_agent_dials_login_extension")
    phone = _dialled_in(messages)
    assert phone["Channel"].startswith("PJSIP/agentphone-")
    assert phone["Uniqueid"] == phone["Linkedid"]
    assert phone["Uniqueid"].replace(".", "").isdigit(), "Asterisk's own id, not one the dialer preset"
    assert (phone["ChannelStateDesc"], phone["Exten"]) == ("Ring", "92101")
    joins = [m for _, m in messages if m.get("Event") == "ConfbridgeJoin"]
    assert [(m["Conference"], m["Uniqueid"]) for m in joins] == [
        ("agent_2101", phone["Uniqueid"]),
        ("agent_2101", "att-dialin"),
    ]
    hangup = next(m for _, m in messages if m.get("Event") == "Hangup" and m["Channel"] == phone["Channel"])
    assert hangup["Cause"] == "16"


def _answered_times(messages: list[tuple[float, AmiMessage]]) -> dict[str, int]:
    return {
        m["Channel"].rsplit("-", 1)[0]: int(m["AnsweredTime"])
        for _, m in messages
        if m.get("Event") == "ConfbridgeList"
    }


async def test_supervisor_spies_then_joins_the_full_bridge_as_muted_admin() -> None:
    name = "sip_supervisor_listen_whisper_barge"
    capture, messages, _ = await _run(name)
    phone = _dialled_in(messages)
    starts = [m for _, m in messages if m.get("Event") == "ChanSpyStart"]
    assert [m["SpyerUniqueid"] for m in starts] == ["sup-dtmf", "sup-listen", "sup-whisper", "sup-barge"]
    assert {m["SpyeeChannel"] for m in starts} == {phone["Channel"]}
    stops = [m["SpyerUniqueid"] for _, m in messages if m.get("Event") == "ChanSpyStop"]
    assert stops == ["sup-dtmf", "sup-listen", "sup-whisper", "sup-barge"]
    spy_hangups = {
        m["Uniqueid"]: m["Cause"]
        for _, m in messages
        if m.get("Event") == "Hangup" and m["Uniqueid"].startswith("sup-")
    }
    assert spy_hangups == {
        "sup-dtmf": "0",
        "sup-listen": "0",
        "sup-whisper": "0",
        "sup-barge": "0",
        "sup-conf": "16",
    }
    admin = next(m for _, m in messages if m.get("Event") == "ConfbridgeJoin" and m["Uniqueid"] == "sup-conf")
    assert (admin["Admin"], admin["Muted"], admin["BridgeNumChannels"]) == ("Yes", "Yes", "4")
    listed = [
        (m["Uniqueid"], m["Admin"], m["Muted"]) for _, m in messages if m.get("Event") == "ConfbridgeList"
    ]
    assert listed == [(phone["Uniqueid"], "No", "No"), ("att-sup", "No", "No"), ("sup-conf", "Yes", "Yes")]
    # AnsweredTime (left out of the event comparison): whole seconds, within one of the capture's.
    recorded = _answered_times(capture_messages(capture))
    got = _answered_times(messages)
    assert got.keys() == recorded.keys()
    for channel, seconds in recorded.items():
        assert abs(got[channel] - seconds) <= 1, (channel, got[channel], seconds)
    mutes = [m["Event"] for _, m in messages if m.get("Event") in ("ConfbridgeMute", "ConfbridgeUnmute")]
    assert mutes == ["ConfbridgeUnmute", "ConfbridgeMute"]
