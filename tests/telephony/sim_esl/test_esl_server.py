"""The ESL simulator's server side: authentication, subscriptions, API commands, crashes, load."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from telephony.sim.freeswitch import FreeSwitchSimulator
from telephony.sim.model import CalleeKind, CalleePlan, RandomCallee, ScriptedCallee
from tests.telephony.sim_esl.replay import Frame, parse_frame, split_stream

SUBSCRIBE = (
    "event plain CHANNEL_CREATE CHANNEL_PROGRESS CHANNEL_ANSWER CHANNEL_HANGUP CHANNEL_HANGUP_COMPLETE "
    "CHANNEL_PARK CHANNEL_EXECUTE_COMPLETE BACKGROUND_JOB CUSTOM avmd::beep avmd::start avmd::stop "
    "conference::maintenance"
)


class Client:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.buffer = b""
        self.frames: list[Frame] = []

    async def send(self, text: str) -> None:
        self.writer.write(text.encode())
        await self.writer.drain()

    async def next(self, limit_s: float = 5.0) -> Frame:
        async with asyncio.timeout(limit_s):
            while not self.frames:
                chunk = await self.reader.read(65536)
                if not chunk:
                    raise ConnectionError("closed")
                raws, self.buffer = split_stream(self.buffer + chunk)
                self.frames.extend(parse_frame(0.0, raw) for raw in raws)
        return self.frames.pop(0)

    async def until(self, predicate: object, limit_s: float = 5.0) -> list[Frame]:
        """Frames up to and including the first one the predicate accepts."""
        seen = []
        while True:
            frame = await self.next(limit_s)
            seen.append(frame)
            if callable(predicate) and predicate(frame):
                return seen

    async def command(self, text: str) -> Frame:
        await self.send(text + "\n\n")
        while True:
            frame = await self.next()
            if not frame.is_event:
                return frame

    async def closed(self) -> bool:
        async with asyncio.timeout(5):
            return await self.reader.read(1) == b""


@pytest.fixture
async def sim() -> AsyncIterator[FreeSwitchSimulator]:
    simulator = FreeSwitchSimulator(ScriptedCallee(), time_scale=50.0)
    await simulator.start()
    yield simulator
    await simulator.stop()


async def connect(sim: FreeSwitchSimulator, *, subscribe: str | None = SUBSCRIBE) -> Client:
    reader, writer = await asyncio.open_connection("127.0.0.1", sim.port)
    client = Client(reader, writer)
    assert (await client.next()).content_type == "auth/request"
    assert (await client.command("auth ClueCon")).outer["Reply-Text"] == "+OK accepted"
    if subscribe:
        assert (await client.command(subscribe)).outer["Reply-Text"] == "+OK event listener enabled plain"
    return client


def originate(uuid: str, number: str, destination: str = "&park()", timeout: int = 15) -> str:
    return (
        f"bgapi originate {{origination_uuid={uuid},originate_timeout={timeout},ignore_early_media=true,"
        f"origination_caller_id_number=0100000000,origination_caller_id_name=Dialer}}"
        f"sofia/dialer/{number}@127.0.0.1:5071 {destination}\nJob-UUID: {uuid}-job\n\n"
    )


def job_of(uuid: str) -> object:
    return lambda f: f.get("Event-Name") == "BACKGROUND_JOB" and f.get("Job-UUID") == f"{uuid}-job"


async def test_wrong_password_is_refused_and_the_connection_closed(sim: FreeSwitchSimulator) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", sim.port)
    client = Client(reader, writer)
    await client.next()
    reply = await client.command("auth wrong")
    assert reply.outer["Reply-Text"] == "-ERR invalid"
    assert (await client.next()).content_type == "text/disconnect-notice"
    assert await client.closed()


async def test_commands_before_auth_are_refused_and_the_connection_survives(sim: FreeSwitchSimulator) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", sim.port)
    client = Client(reader, writer)
    await client.next()
    assert (await client.command("api status")).outer["Reply-Text"] == "-ERR command not found"
    assert (await client.command("auth ClueCon")).outer["Reply-Text"] == "+OK accepted"


async def test_malformed_command_gets_command_not_found_and_the_connection_survives(
    sim: FreeSwitchSimulator,
) -> None:
    client = await connect(sim)
    assert (await client.command("this is not esl")).outer["Reply-Text"] == "-ERR command not found"
    assert (await client.command("event plain NOSUCHEVENT")).outer[
        "Reply-Text"
    ] == "-ERR no keywords supplied"
    reply = await client.command("api uptime")
    assert reply.content_type == "api/response"
    assert reply.body.strip().isdigit()


async def test_unknown_api_command_is_reported_as_freeswitch_does(sim: FreeSwitchSimulator) -> None:
    client = await connect(sim)
    reply = await client.command("api frobnicate now")
    assert reply.body == "-ERR frobnicate Command not found!\n"


async def test_exit_says_bye_and_closes(sim: FreeSwitchSimulator) -> None:
    client = await connect(sim)
    assert (await client.command("exit")).outer["Reply-Text"] == "+OK bye"
    notice = await client.next()
    assert notice.content_type == "text/disconnect-notice"
    assert notice.body.startswith("Disconnected, goodbye.")
    assert await client.closed()


async def test_only_subscribed_events_are_sent(sim: FreeSwitchSimulator) -> None:
    only_jobs = await connect(sim, subscribe="event plain BACKGROUND_JOB")
    everything = await connect(sim)
    await only_jobs.send(originate("sub-1", "3001"))
    frames = await only_jobs.until(job_of("sub-1"))
    assert [f.get("Event-Name") for f in frames if f.is_event] == ["BACKGROUND_JOB"]
    assert frames[-1].body == "-ERR USER_BUSY\n"
    seen = await everything.until(job_of("sub-1"))
    assert {"CHANNEL_CREATE", "CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE"} <= {
        f.get("Event-Name") for f in seen
    }


async def test_custom_events_need_their_subclass(sim: FreeSwitchSimulator) -> None:
    client = await connect(sim, subscribe="event plain CHANNEL_HANGUP_COMPLETE CUSTOM avmd::stop")
    await client.send(originate("amd-1", "7001", "amd XML dialer"))
    frames = await client.until(lambda f: f.get("Event-Name") == "CHANNEL_HANGUP_COMPLETE", limit_s=10)
    assert not [f for f in frames if f.get("Event-Subclass") == "avmd::start"]


async def test_bgapi_reply_echoes_the_job_uuid_and_originates_are_recorded(sim: FreeSwitchSimulator) -> None:
    client = await connect(sim)
    await client.send(originate("rec-1", "2001"))
    reply = await client.next()
    assert reply.outer == {
        "Content-Type": "command/reply",
        "Reply-Text": "+OK Job-UUID: rec-1-job",
        "Job-UUID": "rec-1-job",
    }
    assert sim.originates_received == ["rec-1"]


async def test_unknown_profile_fails_without_a_channel(sim: FreeSwitchSimulator) -> None:
    client = await connect(sim)
    await client.send(originate("bad-1", "2001").replace("sofia/dialer/", "sofia/nosuchprofile/"))
    frames = await client.until(job_of("bad-1"))
    assert frames[-1].body == "-ERR INVALID_PROFILE\n"
    assert not [f for f in frames if f.get("Unique-ID") == "bad-1"]
    assert sim.live_channels() == []


async def test_show_channels_lists_live_calls(sim: FreeSwitchSimulator) -> None:
    client = await connect(sim)
    await client.send(originate("live-1", "4001", timeout=60))
    await client.until(lambda f: f.get("Event-Name") == "CHANNEL_PROGRESS")
    listing = json.loads((await client.command("api show channels as json")).body)
    assert listing["row_count"] == 1
    assert listing["rows"][0]["uuid"] == "live-1"
    assert (await client.command("api show channels")).body.endswith("\n1 total.\n")
    assert [c.uuid for c in sim.live_channels()] == ["live-1"]
    status = (await client.command("api status")).body
    assert "FreeSWITCH (Version 1.10.12-release 64bit) is ready" in status
    assert (await client.command("api uuid_kill live-1")).body == "+OK\n"
    await client.until(job_of("live-1"))
    assert json.loads((await client.command("api show channels as json")).body) == {"row_count": 0}


async def test_uuid_kill_of_an_unknown_channel_says_no_such_channel(sim: FreeSwitchSimulator) -> None:
    client = await connect(sim)
    assert (await client.command("api uuid_kill nobody")).body == "-ERR No such channel!\n"
    reply = await client.command("sendmsg nobody\ncall-command: execute\nexecute-app-name: avmd_stop")
    assert reply.outer["Reply-Text"] == "-ERR invalid session id [nobody]"


async def test_uuid_kill_with_a_cause_ends_a_ringing_call_with_that_cause(sim: FreeSwitchSimulator) -> None:
    client = await connect(sim)
    await client.send(originate("kc-1", "4001", timeout=60))
    await client.until(lambda f: f.get("Event-Name") == "CHANNEL_PROGRESS")
    await client.command("api uuid_kill kc-1 CALL_REJECTED")
    frames = await client.until(job_of("kc-1"))
    assert frames[-1].body == "-ERR CALL_REJECTED\n"
    complete = next(f for f in frames if f.get("Event-Name") == "CHANNEL_HANGUP_COMPLETE")
    assert complete.get("variable_hangup_cause_q850") == "21"


async def test_blocking_api_originate_replies_with_the_outcome(sim: FreeSwitchSimulator) -> None:
    client = await connect(sim, subscribe=None)
    reply = await client.command(
        "api originate {origination_uuid=blk-1}sofia/dialer/2001@127.0.0.1:5071 &park()"
    )
    assert reply.body == "+OK blk-1\n"
    reply = await client.command("api originate {origination_uuid=blk-2}sofia/dialer/3001@127.0.0.1 &park()")
    assert reply.body == "-ERR USER_BUSY\n"


async def test_unanswered_commands_are_read_and_never_answered(sim: FreeSwitchSimulator) -> None:
    client = await connect(sim)
    sim.unanswered_commands.add("api")
    await client.send("api status\n\n")
    with pytest.raises(TimeoutError):
        await client.next(limit_s=0.3)
    sim.unanswered_commands.clear()
    assert (await client.command("api uptime")).content_type == "api/response"


async def test_send_raw_reaches_every_client(sim: FreeSwitchSimulator) -> None:
    first = await connect(sim)
    second = await connect(sim)
    await sim.send_raw(b"Content-Type: text/garbage\n\n")
    assert (await first.next()).content_type == "text/garbage"
    assert (await second.next()).content_type == "text/garbage"


async def test_crash_drops_connections_and_calls_and_restart_is_empty(sim: FreeSwitchSimulator) -> None:
    client = await connect(sim)
    await client.send(originate("crash-1", "4001", timeout=60))
    await client.until(lambda f: f.get("Event-Name") == "CHANNEL_PROGRESS")
    port = sim.port
    await sim.crash()
    with pytest.raises(ConnectionError):
        while True:
            await client.next()
    assert sim.live_channels() == []
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)
    await sim.start(port=port)
    again = await connect(sim)
    assert json.loads((await again.command("api show channels as json")).body) == {"row_count": 0}


async def test_conference_member_ids_count_since_start(sim: FreeSwitchSimulator) -> None:
    client = await connect(sim)
    await client.send(originate("ag-1", "1001", "agent_1001 XML dialer"))
    await client.until(lambda f: f.get("Action") == "floor-change")
    await client.send(originate("cu-1", "2001"))
    await client.until(lambda f: f.get("Event-Name") == "CHANNEL_PARK")
    assert (await client.command("api uuid_transfer cu-1 agent_1001 XML dialer")).body == "+OK\n"
    frames = await client.until(lambda f: f.get("Action") == "add-member")
    assert frames[-1].get("Member-ID") == "2"
    assert frames[-1].get("Conference-Size") == "2"
    await client.command("api uuid_kill ag-1")
    await client.command("api uuid_kill cu-1")
    frames = await client.until(lambda f: f.get("Action") == "conference-destroy", limit_s=10)
    assert frames[-1].get("Conference-Size") == "0"


class _Everybody:
    def __init__(self, plan: CalleePlan) -> None:
        self.fixed = plan

    def plan(self, number: str) -> CalleePlan:
        return self.fixed


async def test_short_callee_hangs_up_by_itself() -> None:
    simulator = FreeSwitchSimulator(_Everybody(CalleePlan(CalleeKind.SHORT, 0.01, 1.0)), time_scale=20.0)
    await simulator.start()
    try:
        client = await connect(simulator)
        await client.send(originate("sh-1", "8001"))
        frames = await client.until(lambda f: f.get("Event-Name") == "CHANNEL_HANGUP_COMPLETE")
        complete = frames[-1]
        assert complete.get("variable_sip_hangup_disposition") == "recv_bye"
        assert complete.get("Hangup-Cause") == "NORMAL_CLEARING"
    finally:
        await simulator.stop()


async def test_hundreds_of_concurrent_calls_each_end_once() -> None:
    simulator = FreeSwitchSimulator(RandomCallee(seed=7), time_scale=400.0)
    await simulator.start()
    try:
        client = await connect(simulator)
        n = 200
        await client.send(
            "".join(originate(f"many-{i}", f"06{i:08d}", "amd XML dialer", 30) for i in range(n))
        )
        jobs: dict[str, str] = {}
        ended: set[str] = set()
        async with asyncio.timeout(60):
            while len(ended) < n or len(jobs) < n:
                frame = await client.next(limit_s=30)
                if frame.get("Event-Name") == "BACKGROUND_JOB":
                    assert frame.get("Job-UUID") not in jobs
                    jobs[frame.get("Job-UUID")] = frame.body
                elif frame.get("Event-Name") == "CHANNEL_HANGUP_COMPLETE":
                    assert frame.get("Unique-ID") not in ended
                    ended.add(frame.get("Unique-ID"))
        assert len(simulator.originates_received) == n
        assert {body.split()[0] for body in jobs.values()} <= {"+OK", "-ERR"}
        assert simulator.live_channels() == []
    finally:
        await simulator.stop()


async def test_filter_keeps_only_the_matching_calls(sim: FreeSwitchSimulator) -> None:
    client = await connect(sim)
    assert (await client.command("filter Unique-ID keep-1")).outer["Reply-Text"] == (
        "+OK filter added. [Unique-ID]=[keep-1]"
    )
    await client.send(originate("drop-1", "3001") + originate("keep-1", "3002"))
    frames = await client.until(
        lambda f: f.get("Event-Name") == "CHANNEL_HANGUP_COMPLETE" and f.get("Unique-ID") == "keep-1"
    )
    assert {f.get("Unique-ID") for f in frames if f.is_event} == {"keep-1"}


async def test_answered_call_killed_by_the_dialer_says_send_bye(sim: FreeSwitchSimulator) -> None:
    """As recorded for uuid_kill: no sip_term_status, send_bye only in CHANNEL_HANGUP_COMPLETE."""
    client = await connect(sim)
    await client.send(originate("kill-1", "2001"))
    await client.until(lambda f: f.get("Event-Name") == "CHANNEL_PARK")
    assert (await client.command("api uuid_kill kill-1")).body == "+OK\n"
    frames = await client.until(lambda f: f.get("Event-Name") == "CHANNEL_HANGUP_COMPLETE")
    names = [f.get("Event-Name") for f in frames if f.is_event]
    assert names[-3:] == ["CHANNEL_HANGUP", "CHANNEL_EXECUTE_COMPLETE", "CHANNEL_HANGUP_COMPLETE"]
    hangup, execute, complete = (f for f in frames if f.is_event)
    assert execute.get("Application") == "park"
    for frame in (hangup, execute, complete):
        assert frame.get("variable_sip_term_status") == ""
    assert complete.get("variable_sip_hangup_disposition") == "send_bye"
    assert hangup.get("variable_sip_hangup_disposition") == ""


async def test_agent_leg_hung_up_by_the_softphone_says_recv_bye() -> None:
    """The agent templates were recorded with uuid_kill; a BYE from the agent brings the BYE variables."""
    simulator = FreeSwitchSimulator(_Everybody(CalleePlan(CalleeKind.AGENT, 0.002, 2.0)), time_scale=50.0)
    await simulator.start()
    try:
        client = await connect(simulator)
        await client.send(originate("ag-bye", "1001", "agent_1001 XML dialer"))
        frames = await client.until(lambda f: f.get("Action") == "conference-destroy")
        complete = next(f for f in frames if f.get("Event-Name") == "CHANNEL_HANGUP_COMPLETE")
        assert complete.get("variable_sip_hangup_disposition") == "recv_bye"
        assert complete.get("variable_sip_term_status") == "200"
        executed = [f for f in frames if f.get("Event-Name") == "CHANNEL_EXECUTE_COMPLETE"]
        # the shipped dialplan answers the agent leg, then runs the conference until the BYE
        assert [f.get("Application") for f in executed] == ["answer", "conference"]
        assert executed[-1].get("variable_sip_hangup_disposition") == "recv_bye"
    finally:
        await simulator.stop()


async def test_failure_job_lands_before_between_or_after_the_hangup_events(sim: FreeSwitchSimulator) -> None:
    """The recorded switch raced its job thread against the channel: clients must see every order."""
    client = await connect(sim)
    n = 60
    await client.send("".join(originate(f"race-{i}", "3001") for i in range(n)))
    positions: dict[str, int] = {}
    seen: dict[str, list[str]] = {}
    while len(positions) < n:
        frame = await client.next()
        if not frame.is_event:
            continue
        name = frame.get("Event-Name")
        uuid = frame.get("Unique-ID") or frame.get("Job-UUID").removesuffix("-job")
        events = seen.setdefault(uuid, [])
        if name == "BACKGROUND_JOB":
            positions[uuid] = sum(1 for e in events if e in ("CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE"))
        events.append(name)
    assert set(positions.values()) == {0, 1, 2}


async def test_hangup_sent_after_a_playback_waits_for_the_message(sim: FreeSwitchSimulator) -> None:
    """sendmsg playback then sendmsg hangup: the session runs them in turn."""
    client = await connect(sim)
    await client.send(originate("msg-1", "2001", "amd XML dialer"))
    await client.until(lambda f: f.get("Event-Name") == "CHANNEL_PARK")
    for app, arg in (("playback", "abandon.wav"), ("hangup", "NORMAL_CLEARING")):
        reply = await client.command(
            "sendmsg msg-1\ncall-command: execute\n"
            f"execute-app-name: {app}\nexecute-app-arg: {arg}\nevent-lock: true"
        )
        assert reply.outer["Reply-Text"] == "+OK"
    frames = await client.until(lambda f: f.get("Event-Name") == "CHANNEL_HANGUP_COMPLETE")
    names = [(f.get("Event-Name"), f.get("Application")) for f in frames if f.is_event]
    assert names.index(("CHANNEL_EXECUTE_COMPLETE", "playback")) < names.index(("CHANNEL_HANGUP", ""))
    played = next(f for f in frames if f.get("Application") == "playback")
    assert played.get("Application-Data") == "abandon.wav"
    assert played.get("Application-Response") == "FILE PLAYED"
    assert frames[-1].get("variable_sip_hangup_disposition") == "send_bye"


async def test_originate_into_the_park_extension_parks_in_the_dialplan(sim: FreeSwitchSimulator) -> None:
    """``park XML dialer`` is a bl_xfer into context dialer: a second caller profile, no avmd."""
    client = await connect(sim)
    await client.send(originate("ext-1", "2001", "park XML dialer"))
    frames = await client.until(lambda f: f.get("Event-Name") == "CHANNEL_PARK")
    park = frames[-1]
    assert park.get("Caller-Destination-Number") == "park"
    assert park.get("Caller-Context") == "dialer"
    assert park.get("Caller-Profile-Index") == "2"
    assert "bl_xfer:park/dialer/XML" in park.get("variable_transfer_history")
    assert not [f for f in frames if f.get("Event-Subclass").startswith("avmd::")]


async def test_a_storm_of_commands_on_random_calls_breaks_no_call(caplog: pytest.LogCaptureFixture) -> None:
    """Kills, transfers, avmd stops, playbacks and hang-ups in any order at any moment: every call
    plays on to its end without an error in the switch."""
    import random

    rng = random.Random(5)
    simulator = FreeSwitchSimulator(ScriptedCallee(), time_scale=100.0)
    await simulator.start()
    try:
        client = await connect(simulator, subscribe="event plain ALL")
        uuids = [f"storm-{i}" for i in range(40)]
        for uuid in uuids:
            number = f"0{rng.choice('123456789')}{rng.randrange(100, 999)}"
            destination = rng.choice(["&park()", "amd XML dialer", "park XML dialer", "agent_1 XML dialer"])
            await client.send(originate(uuid, number, destination, 20))
        commands = [
            "api uuid_kill {u}",
            "api uuid_transfer {u} agent_2 XML dialer",
            "api avmd {u} stop",
            "sendmsg {u}\ncall-command: execute\nexecute-app-name: avmd_stop",
            "sendmsg {u}\ncall-command: execute\nexecute-app-name: playback\nexecute-app-arg: x.wav",
            "sendmsg {u}\ncall-command: execute\nexecute-app-name: hangup\nexecute-app-arg: USER_BUSY",
        ]
        for _ in range(150):
            await asyncio.sleep(rng.random() * 0.01)
            await client.send(rng.choice(commands).format(u=rng.choice(uuids)) + "\n\n")
        await client.command("api hupall NORMAL_CLEARING")
        async with asyncio.timeout(10):
            while simulator.live_channels():
                await asyncio.sleep(0.02)
    finally:
        await simulator.stop()
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


async def test_an_unanswered_originate_is_still_recorded_as_received(sim: FreeSwitchSimulator) -> None:
    client = await connect(sim)
    sim.unanswered_commands.add("bgapi")
    await client.send(originate("lost-1", "2001"))
    with pytest.raises(TimeoutError):
        await client.next(limit_s=0.3)
    assert sim.originates_received == ["lost-1"]
    assert sim.live_channels() == []
