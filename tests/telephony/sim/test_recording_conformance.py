"""Call recording on the simulated Asterisk against ``sip_call_recording`` (Asterisk 22.10.1).

The capture's actions are replayed with its FastAGI side played as recorded
(``fastagi_sessions_sip_supervision.json``: att-rec-a and att-rec-c wait in
the AGI, are Redirected to ``[dialer-connect-recorded]`` and closed after the
unasked ``HANGUP``; att-rec-b runs ``EXEC ConfBridge``), and compared with the
rules of ``test_ami_conformance``.  Then: the recordings the simulator made
(sizes by the capture's WAV rule), the dialer's tracker fed what the simulator
sent (the expected outcomes), and the AMI answers the capture does not show.
"""

from __future__ import annotations

import asyncio
import json
import wave
from pathlib import Path

import pytest

from telephony.asterisk.protocol import AmiMessage
from telephony.sim.asterisk import AsteriskSimulator
from telephony.sim.asterisk_mixmonitor import wav_size
from tests.captures import Capture, asterisk_expected, load_asterisk
from tests.conftest import ASTERISK_CAPTURES
from tests.telephony.asterisk.replay import replay as tracker_replay
from tests.telephony.asterisk.replay import timeline
from tests.telephony.sim.ami_client import AmiTestClient, event, response
from tests.telephony.sim.capture_replay import capture_messages, replay
from tests.telephony.sim.test_ami_conformance import (
    FAULT_VERSION,
    TIME_SCALE,
    FaultAgiServer,
    _compare,
    _env_value,
)

NAME = "sip_call_recording"
SPOOL = "<astspooldir>"  # the capture shows MIXMONITOR_FILENAME relative to the spool


class RecordedAgiServer(FaultAgiServer):
    """The dialer's FastAGI side of ``fastagi_sessions_sip_supervision.json`` for one scenario.

    Besides the fault files' two endings, a session "dialer after an unasked line"
    reads the line Asterisk sends unasked (HANGUP, after a Redirect) and closes.
    """

    def __init__(self, scenario: str) -> None:
        super().__init__(scenario)
        data = json.loads((ASTERISK_CAPTURES / "fastagi_sessions_sip_supervision.json").read_text())
        self.sessions = {
            _env_value(s["env"], "agi_uniqueid"): s for s in data["agi"] if s["scenario"] == scenario
        }

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
            elif session["closed"] == "dialer after an unasked line":
                line = await asyncio.wait_for(reader.readline(), 30)
                self.unasked[uid].append(line.decode().rstrip("\n"))
            self.closed_by[uid] = session["closed"]
        finally:
            writer.close()


def _on_a_fresh_pbx(capture: Capture) -> Capture:
    """The capture's actions naming the channels as a freshly started simulator names them.

    The lab Asterisk had made 0x13 PJSIP channels before this session (its actions say
    ``PJSIP/person-00000014``); the simulator's counter starts at 0, in the same order.
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


async def _run_recording(
    wav_dir: Path | None = None,
) -> tuple[Capture, list[tuple[float, AmiMessage]], AsteriskSimulator, RecordedAgiServer]:
    agi = RecordedAgiServer(NAME)
    await agi.start()
    capture = _on_a_fresh_pbx(load_asterisk(NAME))
    sim = AsteriskSimulator(
        shape="sip",
        time_scale=TIME_SCALE,
        dialplan="production",
        fastagi_port=agi.port,
        lab_peers=True,
        system_read=False,
        version=FAULT_VERSION,
    )
    sim.recordings.spool_dir = SPOOL
    sim.recordings.directory = wav_dir
    await sim.start()
    try:
        result = await replay(capture, sim, TIME_SCALE)
    finally:
        await sim.crash()
        await agi.close()
    return capture, result.messages, sim, agi


async def test_call_recording_matches_capture(tmp_path: Path) -> None:
    capture, messages, sim, agi = await _run_recording(tmp_path)
    _compare(capture, messages, NAME)
    agi.check(messages)
    assert sim.originates_received == [
        "agent-2102-lab-1",
        "att-rec-a",
        "att-rec-b",
        "orig-mixmon",
        "att-rec-c",
    ]

    # The recordings: att-rec-a stopped by AMI after 4.0 s, att-rec-c to its hang-up (5.02 s).
    notes = capture.raw["notes"]["recordings"]
    finished = {Path(r.path).name: r for r in sim.recordings.finished}
    assert set(finished) == {"att-rec-a.wav", "att-rec-c.wav"}
    assert finished["att-rec-a.wav"].path == f"{SPOOL}/monitor/att-rec-a.wav"
    assert finished["att-rec-a.wav"].stopped_by == "ami"
    assert finished["att-rec-c.wav"].stopped_by == "hangup"
    for name, recording in finished.items():
        want = notes[f"monitor/{name}"]
        assert recording.seconds == pytest.approx(want["audio_seconds"], abs=0.25), name
        assert recording.size == pytest.approx(want["bytes"], abs=0.25 * 16000), name
        with wave.open(str(tmp_path / name)) as wav:
            assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 8000)
        assert (tmp_path / name).stat().st_size == recording.size
    assert not sim.recordings.running


def test_wav_size_is_the_captures_rule() -> None:
    assert wav_size(4.0) == 64044
    assert wav_size(5.02) == 80364
    assert wav_size(0) == 44  # the recording that started after the hang-up


async def test_tracker_fed_by_the_simulator_gives_the_expected_outcomes() -> None:
    capture, messages, _, _ = await _run_recording()
    received = [(t, "\r\n".join(f"{k}: {v}" for k, v in m.items())) for t, m in messages]
    simulated = Capture(capture.scenario, capture.path, capture.sent, received, capture.raw)
    result = tracker_replay(timeline(simulated))
    got = {attempt: result.tracker.outcome_label(attempt) for attempt in result.originates}
    assert got == asterisk_expected()[NAME]


# -- what the capture does not show ---------------------------------------------------------

FAST = 50.0


async def _answered_customer(client: AmiTestClient, action_id: str) -> str:
    client.send(
        Action="Originate",
        ActionID=action_id,
        Channel="PJSIP/2001@person",
        Context="dialer-answered-noamd",
        Exten="s",
        Priority="1",
        Async="true",
        ChannelId=action_id,
    )
    up = await client.wait_for(event("Newstate", Uniqueid=action_id, ChannelStateDesc="Up"))
    return up["Channel"]


async def test_system_write_class_lets_mixmonitor_record_over_ami(tmp_path: Path) -> None:
    async with AsteriskSimulator(time_scale=FAST, dialplan="lab", shape="sip") as sim:
        sim.recordings.directory = None
        client = await AmiTestClient.connect(sim.port)
        channel = await _answered_customer(client, "rec-1")
        client.send(Action="MixMonitor", ActionID="m1", Channel=channel, File="rec-1.wav")
        assert (await client.wait_for(response("m1")))["Message"] == "Permission denied"
        await client.close()
    sim = AsteriskSimulator(time_scale=FAST, dialplan="lab", shape="sip")
    sim.system_write = True
    async with sim:
        client = await AmiTestClient.connect(sim.port)
        channel = await _answered_customer(client, "rec-2")
        client.send(Action="MixMonitor", ActionID="m2", Channel=channel, File="rec-2.wav")
        assert (await client.wait_for(response("m2")))["Response"] == "Success"
        filename = await client.wait_for(event("VarSet", Variable="MIXMONITOR_FILENAME"))
        assert filename["Value"] == "/var/spool/asterisk/monitor/rec-2.wav"
        await client.wait_for(event("MixMonitorStart", Channel=channel))
        client.send(Action="MixMonitorMute", ActionID="m3", Channel=channel, Direction="read", State="1")
        assert (await client.wait_for(response("m3")))["Response"] == "Success"
        muted = await client.wait_for(event("MixMonitorMute", Channel=channel))
        assert (muted["Direction"], muted["State"]) == ("read", "1")
        client.send(Action="StopMixMonitor", ActionID="m4", Channel=channel)
        assert (await client.wait_for(response("m4")))["Response"] == "Success"
        await client.wait_for(event("MixMonitorStop", Channel=channel))
        client.send(Action="StopMixMonitor", ActionID="m5", Channel=channel)
        assert (await client.wait_for(response("m5")))["Message"] == "Could not stop monitoring channel"
        await client.close()
    assert [r.stopped_by for r in sim.recordings.finished] == ["ami"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"Channel": "PJSIP/nobody-00000009", "Direction": "both", "State": "1"}, "No such channel"),
        ({"Direction": "both", "State": "1"}, "No channel specified"),
        ({"Channel": "X", "State": "1"}, "No direction specified. Must be read, write or both"),
        (
            {"Channel": "X", "Direction": "up", "State": "1"},
            "Invalid direction specified. Must be read, write or both",
        ),
        ({"Channel": "X", "Direction": "both"}, "No state specified"),
    ],
)
async def test_mixmonitor_mute_refusals(fields: dict[str, str], message: str) -> None:
    async with AsteriskSimulator(time_scale=FAST) as sim:
        client = await AmiTestClient.connect(sim.port)
        client.send(Action="MixMonitorMute", ActionID="mm", **fields)
        refused = await client.wait_for(response("mm"))
        assert (refused["Response"], refused["Message"]) == ("Error", message)
        await client.close()


@pytest.mark.parametrize("app", ["MixMonitor", "AGI", "Exec", "System", "TrySystem", "EAGI"])
async def test_originate_of_a_blacklisted_application_is_refused_at_once(app: str) -> None:
    async with AsteriskSimulator(time_scale=FAST) as sim:
        client = await AmiTestClient.connect(sim.port)
        client.send(
            Action="Originate",
            ActionID="o1",
            Channel="PJSIP/2001@trunk",
            Application=app,
            Data="x",
            Async="true",
        )
        refused = await client.wait_for(response("o1"))
        assert (refused["Response"], refused["Message"]) == (
            "Error",
            "Originate Access Forbidden: app or data blacklisted",
        )
        await asyncio.sleep(0.1)
        assert not client.matching(event("OriginateResponse"))
        assert not client.matching(event("Newchannel"))
        assert sim.live_channels() == []
        await client.close()


async def test_originate_of_chanspy_is_allowed() -> None:
    async with AsteriskSimulator(time_scale=FAST) as sim:
        client = await AmiTestClient.connect(sim.port)
        client.send(
            Action="Originate",
            ActionID="o2",
            Channel="PJSIP/2001@trunk",
            Application="ChanSpy",
            Data="PJSIP/agentphone,qE",
            Async="true",
        )
        assert (await client.wait_for(response("o2")))["Response"] == "Success"
        await client.close()
