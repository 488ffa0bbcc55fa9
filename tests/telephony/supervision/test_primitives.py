"""Recording and monitoring primitives, the same suite on both adapters over their simulators.

Asterisk: MixMonitor run by the channel over FastAGI before ConfBridge, MixMonitorMute for a
recording on demand, Originate of ChanSpy for listen / whisper / barge (sip_call_recording,
sip_supervisor_listen_whisper_barge).  FreeSWITCH: uuid_record start / mask / unmask, eavesdrop.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
import time
import wave
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from telephony.asterisk.adapter import AsteriskPbx
from telephony.asterisk.settings import AsteriskSettings
from telephony.base import (
    AnswerDecision,
    Answered,
    AnsweredCall,
    CallEvent,
    Connected,
    ConnectToAgent,
    HangupCall,
    HungUp,
    OriginateRequest,
)
from telephony.freeswitch.adapter import FreeSwitchPbx, FreeSwitchSettings
from telephony.sim.asterisk import AsteriskSimulator
from telephony.sim.freeswitch import FreeSwitchSimulator
from telephony.sim.model import ScriptedCallee
from telephony.supervision import MonitorMode, MonitorRefused, Supervision
from tests.telephony.sim.ami_client import AmiTestClient, event, response

TIME_SCALE = 10.0


@dataclass
class Router:
    decision: AnswerDecision = field(default_factory=HangupCall)

    async def on_answered(self, call: AnsweredCall) -> AnswerDecision:
        return self.decision

    async def on_connect_failed(self, call: AnsweredCall, agent_id: str, reason: str) -> AnswerDecision:
        return HangupCall()


@dataclass
class Line:
    kind: str
    pbx: AsteriskPbx | FreeSwitchPbx
    router: Router
    dial: str
    agent_endpoint: str
    supervisor_endpoint: str
    muted: Callable[[str], bool | None]  # the simulator's view: is the attempt's recording muted?
    channels: Callable[[], set[str]]
    sim: AsteriskSimulator | FreeSwitchSimulator
    events: dict[str, list[CallEvent]] = field(default_factory=lambda: defaultdict(list))

    def request(self, attempt: str, number: str) -> OriginateRequest:
        return OriginateRequest(
            attempt_id=attempt,
            number=f"+3361234{number}",
            dial_string=self.dial.format(n=number),
            caller_id_number="0100000000",
            ring_timeout_s=20.0,
            campaign_id="supervision",
        )

    async def until(self, attempt: str, kind: type[CallEvent], within_s: float = 15.0) -> CallEvent:
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            for seen in self.events[attempt]:
                if isinstance(seen, kind):
                    return seen
            await asyncio.sleep(0.02)
        raise AssertionError(f"{attempt}: no {kind.__name__} within {within_s} s; got {self.events[attempt]}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def _asterisk(directory: Path) -> AsyncIterator[Line]:
    agi = _free_port()
    sim = AsteriskSimulator(
        ScriptedCallee(), shape="sip", time_scale=TIME_SCALE, secret="s", fastagi_port=agi
    )
    sim.recordings.directory = directory
    await sim.start()
    pbx = AsteriskPbx(AsteriskSettings(port=sim.port, secret="s", fastagi_port=agi))

    def muted(attempt: str) -> bool | None:
        running = [r for r in sim.recordings.running.values() if r.uniqueid == attempt]
        return (running[0].muted_read and running[0].muted_write) if running else None

    def channels() -> set[str]:
        return {c.uniqueid for c in sim.live_channels()}

    try:
        yield Line(
            "asterisk",
            pbx,
            Router(),
            "PJSIP/{n}@trunk",
            "PJSIP/1001@agents",
            "PJSIP/1002@agents",
            muted,
            channels,
            sim,
        )
    finally:
        await pbx.stop()
        await sim.stop()


@contextlib.asynccontextmanager
async def _freeswitch(directory: Path) -> AsyncIterator[Line]:
    sim = FreeSwitchSimulator(ScriptedCallee(), time_scale=TIME_SCALE, password="s")
    sim.recordings.directory = directory
    await sim.start()
    pbx = FreeSwitchPbx(FreeSwitchSettings(port=sim.port, password="s"))

    def muted(attempt: str) -> bool | None:
        running = [r for (uuid, _), r in sim.recordings.running.items() if uuid == attempt]
        return running[0].masked if running else None

    def channels() -> set[str]:
        return {c.uuid for c in sim.switch.live_channels()}

    try:
        yield Line(
            "freeswitch",
            pbx,
            Router(),
            "sofia/dialer/{n}@127.0.0.1:5070",
            "sofia/dialer/1001@127.0.0.1:5081",
            "sofia/dialer/1002@127.0.0.1:5081",
            muted,
            channels,
            sim,
        )
    finally:
        await pbx.stop()
        await sim.stop()


@contextlib.asynccontextmanager
async def _started(kind: str, directory: Path) -> AsyncIterator[Line]:
    factory = _asterisk if kind == "asterisk" else _freeswitch
    async with factory(directory) as line:
        line.pbx.set_answer_router(line.router)
        await line.pbx.start()

        async def pump() -> None:
            async for event in line.pbx.events():
                line.events[event.attempt_id].append(event)

        task = asyncio.create_task(pump())
        try:
            yield line
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


@pytest.fixture(params=["asterisk", "freeswitch"])
async def line(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Line]:
    async with _started(request.param, tmp_path) as line:
        yield line


@pytest.fixture
async def asterisk(tmp_path: Path) -> AsyncIterator[Line]:
    async with _started("asterisk", tmp_path) as line:
        yield line


async def _agent_seated(line: Line) -> str:
    leg = await line.pbx.login_agent("1001", line.agent_endpoint)
    await line.until(leg, Answered)
    await asyncio.sleep(0.3)  # the leg joins its bridge
    return leg


def _wav_seconds(path: Path) -> float | None:
    if not path.is_file():
        return None
    try:
        with wave.open(str(path), "rb") as w:
            assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 8000)
            return w.getnframes() / 8000
    except (EOFError, wave.Error):
        return None  # being written


async def _file(path: Path, within_s: float = 10.0) -> float:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        seconds = _wav_seconds(path)
        if seconds is not None:
            return seconds
        await asyncio.sleep(0.05)
    raise AssertionError(f"no recording {path.name}")


async def _running_app(line: Line, uid: str, app: str) -> tuple[str, str] | None:
    """The channel's application and its data once it runs ``app`` (it dials first)."""
    assert isinstance(line.sim, AsteriskSimulator)
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        for ch in line.sim.live_channels():
            if ch.uniqueid == uid and ch.application == app:
                return ch.application, ch.app_data
        await asyncio.sleep(0.02)
    return None


async def test_the_adapters_offer_supervision(line: Line) -> None:
    assert isinstance(line.pbx, Supervision)


async def test_a_connected_call_is_recorded_to_a_wav_file_as_long_as_the_call(
    line: Line, tmp_path: Path
) -> None:
    await _agent_seated(line)
    line.router.decision = ConnectToAgent("1001", record=True)
    await line.pbx.originate(line.request("rec-1", "2001"))
    await line.until("rec-1", Connected)
    connected_at = time.monotonic()
    await line.until("rec-1", HungUp, within_s=30.0)
    talk_s = (time.monotonic() - connected_at) * TIME_SCALE
    seconds = await _file(tmp_path / "rec-1.wav")
    assert seconds == pytest.approx(talk_s, abs=1.5)
    assert seconds > 1.0


async def test_an_unrecorded_call_leaves_no_file(line: Line, tmp_path: Path) -> None:
    await _agent_seated(line)
    line.router.decision = ConnectToAgent("1001")
    await line.pbx.originate(line.request("norec", "2001"))
    await line.until("norec", HungUp, within_s=30.0)
    await asyncio.sleep(0.2)
    assert _wav_seconds(tmp_path / "norec.wav") is None


async def test_a_recording_on_demand_starts_muted_and_the_agent_unmutes_it(line: Line) -> None:
    await _agent_seated(line)
    line.router.decision = ConnectToAgent("1001", record=True, record_muted=True)
    await line.pbx.originate(line.request("demand", "2001"))
    await line.until("demand", Connected)
    deadline = time.monotonic() + 5.0
    while line.muted("demand") is not True and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert line.muted("demand") is True
    await line.pbx.set_recording_muted("demand", False)
    assert line.muted("demand") is False
    await line.pbx.set_recording_muted("demand", True)
    assert line.muted("demand") is True


async def test_muting_a_call_that_records_nothing_is_refused(line: Line) -> None:
    await _agent_seated(line)
    line.router.decision = ConnectToAgent("1001")
    await line.pbx.originate(line.request("plain", "2001"))
    await line.until("plain", Connected)
    with pytest.raises(Exception, match=r"recording|uuid_record"):
        await line.pbx.set_recording_muted("plain", False)


@pytest.mark.parametrize("mode", list(MonitorMode))
async def test_a_supervisor_phone_is_called_into_the_agents_call(line: Line, mode: MonitorMode) -> None:
    await _agent_seated(line)
    leg = await line.pbx.monitor("1001", mode, line.supervisor_endpoint)
    deadline = time.monotonic() + 5.0
    while leg not in line.channels() and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert leg in line.channels()
    await line.pbx.end_monitor(leg)
    deadline = time.monotonic() + 5.0
    while leg in line.channels() and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert leg not in line.channels()


async def test_monitoring_an_agent_with_no_phone_leg_is_refused_with_a_reason(line: Line) -> None:
    with pytest.raises(MonitorRefused, match="agent 1001 has no phone leg"):
        await line.pbx.monitor("1001", MonitorMode.LISTEN, line.supervisor_endpoint)


async def test_asterisk_without_the_originate_class_refuses_monitoring_with_the_reason(
    asterisk: Line,
) -> None:
    await _agent_seated(asterisk)
    assert isinstance(asterisk.sim, AsteriskSimulator)
    asterisk.sim.originate_write = False  # a manager user without "originate"
    with pytest.raises(MonitorRefused, match=r"Permission denied.*originate write class"):
        await asterisk.pbx.monitor("1001", MonitorMode.LISTEN, asterisk.supervisor_endpoint)


async def test_asterisk_chanspy_spies_on_the_agents_own_channel(asterisk: Line) -> None:
    await _agent_seated(asterisk)
    assert isinstance(asterisk.pbx, AsteriskPbx)
    channel = await asterisk.pbx.agent_channel("1001")
    assert channel is not None and channel.startswith("PJSIP/agents-")  # PJSIP/<aor>@<endpoint>
    for mode, options in (
        (MonitorMode.LISTEN, "qE"),
        (MonitorMode.WHISPER, "qwE"),
        (MonitorMode.BARGE, "qBE"),
    ):
        leg = await asterisk.pbx.monitor("1001", mode, asterisk.supervisor_endpoint)
        assert await _running_app(asterisk, leg, "ChanSpy") == ("ChanSpy", f"{channel},{options}")
        await asterisk.pbx.end_monitor(leg)


async def test_asterisk_least_privilege_user_records_through_the_channel_not_over_ami(asterisk: Line) -> None:
    """The dialer user may not start MixMonitor over AMI (sip_call_recording), yet the call is recorded."""
    assert isinstance(asterisk.sim, AsteriskSimulator) and not asterisk.sim.system_write
    client = await AmiTestClient.connect(asterisk.sim.port, secret="s")
    try:
        await _agent_seated(asterisk)
        asterisk.router.decision = ConnectToAgent("1001", record=True, announcement="dialer-recorded")
        await asterisk.pbx.originate(asterisk.request("lp-1", "2001"))
        await asterisk.until("lp-1", Connected)
        client.send(Action="MixMonitor", ActionID="mm", Channel="lp-1", File="x.wav")
        refused = await client.wait_for(response("mm"))
        assert (refused["Response"], refused["Message"]) == ("Error", "Permission denied")
        start = await client.wait_for(event("MixMonitorStart", Uniqueid="lp-1"))
        [played] = client.matching(event("VarSet", Uniqueid="lp-1", Variable="PLAYBACKSTATUS"))
        # the announcement came before the recording, the recording before the bridge
        join = await client.wait_for(event("ConfbridgeJoin", Uniqueid="lp-1"))
        assert client.messages.index(played) < client.messages.index(start) < client.messages.index(join)
        assert asterisk.sim.recordings.running  # recording, by the channel's own MixMonitor
    finally:
        await client.close()


async def test_the_announcement_is_played_before_the_customer_reaches_the_agent(line: Line) -> None:
    await _agent_seated(line)
    line.router.decision = ConnectToAgent("1001", record=True, announcement="dialer-recorded")
    await line.pbx.originate(line.request("ann", "2001"))
    answered = await line.until("ann", Answered)
    connected = await line.until("ann", Connected)
    # the message takes seconds (the simulators play a prompt for 2 to 3 PBX seconds)
    assert (connected.at - answered.at) * TIME_SCALE >= 1.5
    assert line.muted("ann") is False  # and the call is recorded


async def test_a_recording_on_demand_that_cannot_be_muted_is_stopped_never_kept_running(line: Line) -> None:
    """Fail closed: a recording the agent did not ask for must not run because the mute was refused."""
    await _agent_seated(line)
    if isinstance(line.sim, AsteriskSimulator):
        line.sim.unanswered_actions.add("MixMonitorMute")  # no answer: the mute times out
        line.pbx.client.settings = dataclasses.replace(line.pbx.client.settings, action_timeout_s=0.3)
    else:
        recordings = line.sim.recordings
        command = recordings.command

        def refuse_mask(exists: bool, arg: str) -> str:
            return "-ERR Cannot execute command\n" if " mask " in arg else command(exists, arg)

        recordings.command = refuse_mask  # type: ignore[method-assign]
    line.router.decision = ConnectToAgent("1001", record=True, record_muted=True)
    await line.pbx.originate(line.request("unmuted", "2001"))
    await line.until("unmuted", Connected)
    assert line.muted("unmuted") is None  # stopped before the customer reached the agent
