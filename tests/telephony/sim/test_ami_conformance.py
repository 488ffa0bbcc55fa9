"""The Asterisk simulator against the real Asterisk 22 captures, scenario by scenario.

Each test starts the simulator with the lab dialplan and the capture's shape,
sends the capture's actions at their times (8x faster), and checks that what
comes back is the capture: every event with every header, ids normalized, in
the same instants in the same order (order inside one instant is free, as it
is between Asterisk's threads).  See ``capture_replay`` for the exact rules.

Left out of the comparison:
* ``RTCPSent`` events (RTCP reports every 5 s of media: timing-driven);
* the *values* of the ``RTPAUDIOQOS*`` variables (media statistics; the VarSet
  events themselves are compared);
* ``Uptime``/``LastReload`` of FullyBooted;
* ``DeviceStateChange``, compared separately and loosely (the same devices
  change state and each ends in the same state), since its order and
  repetitions depend on timing (``burst_of_twenty`` shows INUSE/NOT_INUSE
  interleaved differently for calls of one kind);
* events of channels born before the session (``originate_with_channelid_answered``
  records the end of the previous session's 7001 call).

Single-call scenarios are also compared in exact order, event for event,
except those in ``ORDER_RACES``: there one situation was captured twice with
different interleavings of racing threads, so no fixed order can match both.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections import defaultdict
from typing import Any

import pytest

from telephony.asterisk.protocol import AmiMessage, parse_block
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

TIME_SCALE = 8.0

LOCAL_SCENARIOS = [
    "originate_answered_human",
    "originate_answering_machine",
    "originate_busy",
    "originate_no_answer",
    "originate_congestion",
    "originate_unallocated",
    "originate_answer_then_hangup",
    "originate_bad_channel",
    "originate_with_channelid_answered",
    "dialer_hangs_up_ringing_call",
    "agent_login_and_redirect_customer",
    "abandon_message",
]
SIP_SCENARIOS = [
    "sip_answered_person",
    "sip_answering_machine",
    "sip_busy",
    "sip_no_answer",
    "sip_congestion",
    "sip_invalid_number",
    "sip_dialer_cancels_ringing",
    "sip_agent_and_customer_connected",
]


# Captures whose in-instant order contradicts another capture of the same situation:
ORDER_RACES = {
    # the callee's BYE and the bridge thread: HangupRequest after ConfbridgeLeave here,
    # before it in sip_answered_to_fastagi; the agent's BRIDGEPEER cleared before its
    # ConfbridgeLeave here, after it in agent_login_and_redirect_customer
    "sip_agent_and_customer_connected",
    # the ;2 Hangup after ConfbridgeLeave/ConfbridgeEnd here, before them when the same
    # Local customer leaves its bridge in agent_login_and_redirect_customer
    "answered_to_fastagi",
    # ConfbridgeJoin before BridgeEnter here, after it in every other join
    "sip_answered_to_fastagi",
    # OriginateResponse after Newstate(Up) here, before it in sip_agent_and_customer_connected
    "asterisk_restart_with_call_up",
    # The agent's 180: Newstate(Ringing) first here, DialState first in
    # sip_agent_leg_hangs_up_mid_call; and its ConfbridgeLeave after BridgeLeave here,
    # right after its BRIDGEPEER is cleared there
    "sip_agent_leg_hangs_up_idle",
    # the customer's OriginateResponse after its first dialplan applications here, before
    # DialEnd in sip_answered_to_fastagi; the agent's 180 as above
    "sip_agent_leg_hangs_up_mid_call",
    # the customer's ConfbridgeLeave after BridgeLeave here, before it in
    # sip_agent_leg_hangs_up_mid_call; its OriginateResponse after DialEnd here, after its
    # first applications there
    "sip_connect_into_empty_bridge",
    # the restart's instant: every thread of every channel at once
    "sip_restart_least_privilege",
    # two Hangup actions at one instant: the two agent legs' bridge threads interleave;
    # the stale leg's 180 with DialState first (Newstate first for the agent leg before it)
    "sip_connect_into_full_bridge",
    # three customers of one kind in one capture, three orders: OriginateResponse before
    # Newstate(Up) (att-rec-a), after DialEnd (att-rec-b), after the first application
    # (att-rec-c); ConfbridgeJoin before the BRIDGEPEERs (a) and after them (b, c); at the
    # customer's BYE BridgeLeave before ConfbridgeLeave (a), after it (b, c)
    # (test_recording_conformance)
    "sip_call_recording",
}

# The fault captures: Asterisk 22.10.1 running the project's dialplan, logged in as the
# least-privilege "dialer" user (no "system" read class), the lab's SIP peers.
FAULT_SCENARIOS = [
    "sip_connect_into_empty_bridge",
    "sip_connect_into_full_bridge",
    "sip_agent_leg_hangs_up_idle",
    "sip_agent_leg_hangs_up_mid_call",
]
FAULT_VERSION = "22.10.1"
# Originates whose 180 the capture shows with DialState (saying Down) before Newstate.
DIALSTATE_WINS = {
    "sip_agent_leg_hangs_up_mid_call": {"agent-2002-lab-1"},
    "sip_connect_into_full_bridge": {"stale-2003", "att-full"},
    "sip_restart_least_privilege": {"agent-2005-lab-1", "att-rst-ring", "att-rst-conn"},
}


class AgiResponder:
    """A FastAGI server that plays the script side of one recorded FastAGI session."""

    def __init__(self, session: dict[str, Any]) -> None:
        self.session = session
        self.env: list[str] = []
        self.responses: list[str] = []
        self.after: list[str] = []
        self.done = asyncio.Event()
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                line = await reader.readline()
                if line in (b"\n", b""):
                    break
                self.env.append(line.decode().rstrip("\n"))
            for command, _ in self.session["dialog"]:
                writer.write(command.encode() + b"\n")
                await writer.drain()
                self.responses.append((await reader.readline()).decode().rstrip("\n"))
            # The call ended during the last command: Asterisk says so, once.
            self.after.append((await asyncio.wait_for(reader.readline(), 5)).decode().rstrip("\n"))
        finally:
            writer.close()
            self.done.set()


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


async def _run(
    name: str, shape: str, fastagi_port: int | None = None, faults: bool = False
) -> tuple[Capture, list[Any], bool]:
    capture = load_asterisk(name)
    sim = AsteriskSimulator(
        shape="sip" if shape == "sip" else "local",
        time_scale=TIME_SCALE,
        dialplan="production" if faults else "lab",
        fastagi_port=fastagi_port,
        lab_peers=True if faults else None,
        system_read=not faults,
        version=FAULT_VERSION if faults else "22.7.0",
    )
    sim.dialstate_wins = DIALSTATE_WINS.get(name, set())
    await sim.start()
    try:
        result = await replay(capture, sim, TIME_SCALE)
    finally:
        await sim.crash()
    return capture, result.messages, result.closed_by_server


@pytest.mark.parametrize("name", LOCAL_SCENARIOS)
async def test_local_channel_scenario_matches_capture(name: str) -> None:
    capture, messages, _ = await _run(name, "local")
    _compare(capture, messages, name)


@pytest.mark.parametrize("name", SIP_SCENARIOS)
async def test_sip_scenario_matches_capture(name: str) -> None:
    capture, messages, _ = await _run(name, "sip")
    _compare(capture, messages, name)


def _normalize_env(env: list[str], uid_of_channel: str) -> list[str]:
    out = []
    for line in env:
        key, _, value = line.partition(": ")
        if key == "agi_threadid":
            assert value.isdigit(), line
            value = "<thread>"
        elif key == "agi_channel":
            value = re.sub(r"-[0-9a-f]{8}(;[12])?$", r"-#\1", value)
        elif key == "agi_uniqueid":
            assert value == uid_of_channel, line
            value = "<uniqueid of agi_channel>"
        elif key == "agi_request":
            value = re.sub(r"agi://([^:/]+):\d+/", r"agi://\1:4573/", value)
        out.append(f"{key}: {value}")
    return out


@pytest.mark.parametrize(
    ("name", "shape", "session_file"),
    [
        ("answered_to_fastagi", "local", "fastagi_sessions"),
        ("sip_answered_to_fastagi", "sip", "fastagi_sessions_sip"),
    ],
)
async def test_answered_call_runs_fastagi_session_like_capture(
    name: str, shape: str, session_file: str
) -> None:
    session = json.loads((ASTERISK_CAPTURES / f"{session_file}.json").read_text())["agi"][0]
    responder = AgiResponder(session)
    await responder.start()
    try:
        capture, messages, _ = await _run(name, shape, fastagi_port=responder.port)
        await asyncio.wait_for(responder.done.wait(), 5)
    finally:
        await responder.close()
    _compare(capture, messages, name)

    agi_channel = next(m for _, m in messages if m.get("Application") == "AGI")
    expected_uid = next(line.partition(": ")[2] for line in session["env"] if line.startswith("agi_uniqueid"))
    captured_channel_uid = next(
        m["Uniqueid"] for _, m in capture_messages(capture) if m.get("Application") == "AGI"
    )
    assert expected_uid == captured_channel_uid
    assert _normalize_env(responder.env, agi_channel["Uniqueid"]) == _normalize_env(
        session["env"], expected_uid
    )
    assert responder.responses == [response for _, response in session["dialog"]]
    assert responder.after == ["HANGUP"]


async def test_restart_hangs_up_the_call_then_says_shutdown_and_closes() -> None:
    capture, messages, closed = await _run("asterisk_restart_with_call_up", "sip")
    _compare(capture, messages, "asterisk_restart_with_call_up")
    assert closed, "Asterisk closes the manager connection after Event: Shutdown"
    assert messages[-1][1].get("Event") == "Shutdown"


def _calls_by_action(capture: Capture, messages: list[tuple[float, AmiMessage]]) -> dict[str, list[Any]]:
    """Group a burst's messages per Originate (by ActionID, or by the dialled Local channel)."""
    by_dial: dict[str, str] = {}
    for _, raw in capture.sent:
        action = parse_block(raw.rstrip("\r\n"))
        by_dial[action["Channel"]] = action["ActionID"]
    grouped: dict[str, list[Any]] = defaultdict(list)
    for t, m in messages:
        if m.get("ActionID") in by_dial.values():
            grouped[m["ActionID"]].append((t, m))
            continue
        channel = m.get("Channel") or m.get("DestChannel") or m.get("LocalOneChannel") or m.get("Device")
        if channel is None:
            grouped["session"].append((t, m))
            continue
        base = re.sub(r"-[0-9a-f]{8}(;[12])?$", "", channel)
        grouped[by_dial.get(base, base)].append((t, m))
    return grouped


async def test_burst_of_twenty_gives_each_call_its_captured_sequence() -> None:
    """Twenty interleaved calls: each call's own events match the capture's for that call.

    Compared per call instant by instant (not in exact order): in this capture
    calls of one kind already differ in how their threads interleaved.
    """
    capture, messages, _ = await _run("burst_of_twenty", "local")
    expected_calls = _calls_by_action(capture, capture_messages(capture))
    got_calls = _calls_by_action(capture, messages)
    assert set(got_calls) == set(expected_calls)
    for action_id, expected_messages in expected_calls.items():
        if action_id == "session":
            continue
        sub = Capture(capture.scenario, capture.path, capture.sent, [], capture.raw)
        expected_main, expected_devices = split_noise(expected_messages)
        got_main, got_devices = split_noise(got_calls[action_id])
        expected_norm = Normalizer(preset_ids(sub))
        got_norm = Normalizer(preset_ids(sub))
        expected = [(t, expected_norm.message(m)) for t, m in expected_main]
        got = [got_norm.message(m) for _, m in got_main]
        assert_same_instants(expected, got, f"burst_of_twenty {action_id}")
        assert device_summary(got_devices) == device_summary(expected_devices), action_id


class FaultAgiServer:
    """The dialer's FastAGI side of ``fastagi_sessions_sip_faults.json``, session by agi_uniqueid.

    Each session sends its recorded commands; one the capture closed itself
    ("dialer (session done)") is closed after its dialog, one Asterisk closed is
    kept open and every unasked line is recorded until Asterisk closes it.
    """

    def __init__(self, scenario: str) -> None:
        data = json.loads((ASTERISK_CAPTURES / "fastagi_sessions_sip_faults.json").read_text())
        self.sessions = {
            _env_value(s["env"], "agi_uniqueid"): s for s in data["agi"] if s["scenario"] == scenario
        }
        self.env: dict[str, list[str]] = {}
        self.responses: dict[str, list[str]] = defaultdict(list)
        self.unasked: dict[str, list[str]] = defaultdict(list)
        self.closed_by: dict[str, str] = {}
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        env: list[str] = []
        try:
            while True:
                line = await reader.readline()
                if line in (b"\n", b""):
                    break
                env.append(line.decode().rstrip("\n"))
            uid = _env_value(env, "agi_uniqueid")
            self.env[uid] = env
            session = self.sessions[uid]
            for command, _ in session["dialog"]:
                writer.write(command.encode() + b"\n")
                await writer.drain()
                self.responses[uid].append((await reader.readline()).decode().rstrip("\n"))
            if session["closed"] == "asterisk":
                while line := await asyncio.wait_for(reader.readline(), 30):
                    self.unasked[uid].append(line.decode().rstrip("\n"))
                self.closed_by[uid] = "asterisk"
            else:
                self.closed_by[uid] = "dialer (session done)"
        finally:
            writer.close()

    def check(self, messages: list[tuple[float, AmiMessage]]) -> None:
        assert set(self.env) == set(self.sessions)
        for uid, session in self.sessions.items():
            agi_channel = next(
                m for _, m in messages if m.get("Application") == "AGI" and m.get("Uniqueid") == uid
            )
            assert _normalize_env(self.env[uid], agi_channel["Uniqueid"]) == _normalize_env(
                session["env"], uid
            )
            assert self.responses[uid] == [response for _, response in session["dialog"]], uid
            recorded_unasked = [
                line
                for _, what, line in session["timeline"]
                if what == "received unasked" and "(" not in line
            ]
            assert self.unasked[uid] == recorded_unasked, uid
            assert self.closed_by[uid] == session["closed"], uid


def _env_value(env: list[str], key: str) -> str:
    return next(line.partition(": ")[2] for line in env if line.startswith(key + ":"))


@pytest.mark.parametrize("name", FAULT_SCENARIOS)
async def test_fault_scenario_matches_capture(name: str) -> None:
    agi = FaultAgiServer(name)
    await agi.start()
    try:
        capture, messages, _ = await _run(name, "sip", fastagi_port=agi.port, faults=True)
    finally:
        await agi.close()
    _compare(capture, messages, name)
    agi.check(messages)


async def test_restart_seen_by_the_least_privilege_user_then_the_new_session() -> None:
    """``core restart now`` with four calls, seen by ``dialer`` (no system class): no Shutdown.

    The customer waiting in FastAGI is sent HANGUP and holds the restart while the
    session is open; the link then closes (EOF).  The next login gets no FullyBooted
    and CoreShowChannels lists nothing.
    """
    name = "sip_restart_least_privilege"
    agi = FaultAgiServer(name)
    await agi.start()
    capture = load_asterisk(name)
    after = load_asterisk(f"{name}_after")
    sim = AsteriskSimulator(
        shape="sip",
        time_scale=TIME_SCALE,
        dialplan="production",
        fastagi_port=agi.port,
        lab_peers=True,
        system_read=False,
        version=FAULT_VERSION,
    )
    sim.dialstate_wins = DIALSTATE_WINS.get(name, set())
    await sim.start()
    try:
        result = await replay(capture, sim, TIME_SCALE)
        assert result.closed_by_server, "the link closes after the restart (EOF)"
        await sim.start()
        result_after = await replay(after, sim, TIME_SCALE)
    finally:
        await sim.crash()
        await agi.close()
    _compare(capture, result.messages, name)
    assert not any(m.get("Event") == "Shutdown" for _, m in result.messages)
    agi.check(result.messages)
    _compare(after, result_after.messages, f"{name}_after")
    assert sim.originates_received == ["agent-2005-lab-1", "att-rst-ring", "att-rst-agi", "att-rst-conn"]
