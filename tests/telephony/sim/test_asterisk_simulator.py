"""The Asterisk simulator beyond the captures: manager rules, production dialplan, FastAGI, scale."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import pytest

from telephony.sim.asterisk import AsteriskSimulator
from telephony.sim.model import CalleeKind, CalleePlan, RandomCallee
from tests.telephony.sim.ami_client import AmiTestClient, event, response

FAST = 50.0  # time scale: PBX seconds run 50x faster


@dataclass
class Fixed:
    """A callee model where everybody behaves the same."""

    kind: CalleeKind
    ring_s: float
    talk_s: float | None

    def plan(self, number: str) -> CalleePlan:
        return CalleePlan(self.kind, self.ring_s, self.talk_s)


def _originate(
    client: AmiTestClient, action_id: str, channel: str, *extra: tuple[str, str], **fields: str
) -> None:
    base = {
        "Action": "Originate",
        "ActionID": action_id,
        "Channel": channel,
        "Context": "dialer-answered",
        "Exten": "s",
        "Priority": "1",
        "Timeout": "15000",
        "CallerID": '"Dialer" <0100000000>',
        "Async": "true",
        "ChannelId": f"{action_id}-chan",
    }
    base.update(fields)
    client.send(*extra, **base)


class AgiServer:
    """A FastAGI server whose sessions run ``script(reader, writer, env)``."""

    Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter, dict[str, str]], Awaitable[None]]

    def __init__(self, script: AgiServer.Script) -> None:
        self.script = script
        self.envs: list[dict[str, str]] = []
        self.server: asyncio.Server | None = None
        self.port = 0
        self.finished = asyncio.Event()

    async def __aenter__(self) -> AgiServer:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        env: dict[str, str] = {}
        while True:
            line = (await reader.readline()).decode()
            if line in ("\n", ""):
                break
            key, _, value = line.rstrip("\n").partition(": ")
            env[key] = value
        self.envs.append(env)
        try:
            await self.script(reader, writer, env)
        finally:
            writer.close()
            self.finished.set()


async def _ask(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, command: str) -> str:
    writer.write(command.encode() + b"\n")
    await writer.drain()
    return (await asyncio.wait_for(reader.readline(), 5)).decode().rstrip("\n")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- manager protocol ---------------------------------------------------------------------


async def test_banner_then_login_then_fully_booted() -> None:
    async with AsteriskSimulator(time_scale=FAST) as sim:
        client = await AmiTestClient.connect(sim.port)
        booted = await client.wait_for(event("FullyBooted"))
        assert client.banner == "Asterisk Call Manager/11.0.0"
        assert client.messages[0] == {
            "Response": "Success",
            "ActionID": "login-1",
            "Message": "Authentication accepted",
        }
        assert booted["Status"] == "Fully Booted"
        await client.close()


async def test_wrong_secret_is_refused_and_the_connection_closed() -> None:
    async with AsteriskSimulator(time_scale=FAST) as sim:
        client = await AmiTestClient.connect(sim.port, login=False)
        client.send(Action="Login", ActionID="l1", Username="dialer", Secret="guess")
        refused = await client.wait_for(response("l1"))
        assert refused["Response"] == "Error"
        assert refused["Message"] == "Authentication failed"
        await asyncio.wait_for(client.closed.wait(), 5)


async def test_action_before_login_is_permission_denied() -> None:
    async with AsteriskSimulator(time_scale=FAST) as sim:
        client = await AmiTestClient.connect(sim.port, login=False)
        client.send(Action="Originate", ActionID="o1", Channel="PJSIP/2001@trunk", Context="x", Exten="s")
        denied = await client.wait_for(response("o1"))
        assert (denied["Response"], denied["Message"]) == ("Error", "Permission denied")
        assert sim.live_channels() == []
        await client.close()


async def test_unknown_action_is_an_error_carrying_the_action_id() -> None:
    async with AsteriskSimulator(time_scale=FAST) as sim:
        client = await AmiTestClient.connect(sim.port)
        client.send(Action="Frobnicate", ActionID="f1")
        answer = await client.wait_for(response("f1"))
        assert (answer["Response"], answer["Message"]) == ("Error", "Invalid/unknown command")
        await client.close()


async def test_malformed_action_gets_an_error_and_the_connection_survives() -> None:
    async with AsteriskSimulator(time_scale=FAST) as sim:
        client = await AmiTestClient.connect(sim.port)
        client.send_raw(b"this line has no colon\r\n\r\n")
        client.send_raw(b"ActionID: no-action\r\n\r\n")
        client.send(Action="Ping", ActionID="p1")
        pong = await client.wait_for(response("p1"))
        errors = client.matching(lambda m: m.get("Response") == "Error")
        assert [e["Message"] for e in errors] == ["Missing action in request", "Missing action in request"]
        assert errors[1]["ActionID"] == "no-action"
        assert pong["Ping"] == "Pong"
        assert float(pong["Timestamp"]) > 0
        await client.close()


async def test_unanswered_actions_are_read_but_never_answered() -> None:
    async with AsteriskSimulator(time_scale=FAST) as sim:
        sim.unanswered_actions = {"Ping"}
        client = await AmiTestClient.connect(sim.port)
        client.send(Action="Ping", ActionID="silent")
        client.send(Action="Frobnicate", ActionID="after")
        await client.wait_for(response("after"))
        assert client.matching(response("silent")) == []
        await client.close()


async def test_send_raw_reaches_every_client() -> None:
    async with AsteriskSimulator(time_scale=FAST) as sim:
        one = await AmiTestClient.connect(sim.port)
        two = await AmiTestClient.connect(sim.port)
        await sim.send_raw(b"Event: Bogus\r\nKey: value\r\n\r\n")
        for client in (one, two):
            assert (await client.wait_for(event("Bogus")))["Key"] == "value"
            await client.close()


async def test_userevent_action_is_sent_to_every_client() -> None:
    async with AsteriskSimulator(time_scale=FAST) as sim:
        one = await AmiTestClient.connect(sim.port)
        two = await AmiTestClient.connect(sim.port)
        one.send(Action="UserEvent", ActionID="u1", UserEvent="AgentReady", Agent="1001")
        assert (await one.wait_for(response("u1")))["Message"] == "Event Sent"
        seen = await two.wait_for(event("UserEvent", UserEvent="AgentReady"))
        assert seen["Agent"] == "1001"
        assert seen["Privilege"] == "user,all"
        await one.close()
        await two.close()


async def test_originate_of_a_system_application_is_refused() -> None:
    async with AsteriskSimulator(time_scale=FAST) as sim:
        client = await AmiTestClient.connect(sim.port)
        client.send(
            Action="Originate", ActionID="o1", Channel="PJSIP/2001@trunk", Application="AGI", Data="x"
        )
        refused = await client.wait_for(response("o1"))
        assert refused["Response"] == "Error"
        assert refused["Message"] == "Originate Access Forbidden: app or data blacklisted"
        assert sim.originates_received == ["o1"]
        await client.close()


# -- calls ------------------------------------------------------------------------------


async def test_core_show_channels_lists_each_live_channel() -> None:
    async with AsteriskSimulator(time_scale=FAST) as sim:
        client = await AmiTestClient.connect(sim.port)
        _originate(client, "ring", "PJSIP/4001@trunk", Timeout="60000")
        await client.wait_for(event("DialState", DialStatus="RINGING"))
        client.send(Action="CoreShowChannels", ActionID="cs1")
        done = await client.wait_for(event("CoreShowChannelsComplete"))
        start = await client.wait_for(response("cs1"))
        listed = client.matching(event("CoreShowChannel"))
        assert (start["EventList"], start["Message"]) == ("start", "Channels will follow")
        assert (done["ActionID"], done["EventList"], done["ListItems"]) == ("cs1", "Complete", "1")
        assert [m["Uniqueid"] for m in listed] == ["ring-chan"]
        assert listed[0]["ActionID"] == "cs1"
        assert listed[0]["Channel"].startswith("PJSIP/trunk-")
        assert listed[0]["Application"] == "AppDial2"
        await client.close()


async def test_hangup_by_channel_id_cancels_a_ringing_call() -> None:
    async with AsteriskSimulator(time_scale=FAST) as sim:
        client = await AmiTestClient.connect(sim.port)
        _originate(client, "c1", "PJSIP/4001@trunk", Timeout="60000")
        await client.wait_for(event("DialState", DialStatus="RINGING"))
        client.send(Action="Hangup", ActionID="h0", Channel="no-such-channel")
        client.send(Action="Hangup", ActionID="h1", Channel="c1-chan", Cause="16")
        assert (await client.wait_for(response("h0")))["Message"] == "No such channel"
        assert (await client.wait_for(response("h1")))["Message"] == "Channel Hungup"
        result = await client.wait_for(event("OriginateResponse", ActionID="c1"))
        hangup = await client.wait_for(event("Hangup", Uniqueid="c1-chan"))
        assert (result["Response"], result["Reason"]) == ("Failure", "0")
        assert hangup["Cause"] == "16"
        assert sim.live_channels() == []
        await client.close()


@pytest.mark.parametrize(
    ("number", "reason", "cause", "status"),
    [
        ("3001", "0", "17", "BUSY"),
        ("5001", "0", "34", "CONGESTION"),
        ("6001", "0", "1", "NOANSWER"),
    ],
)
async def test_sip_trunk_refusals_say_reason_zero_and_the_cause(
    number: str, reason: str, cause: str, status: str
) -> None:
    async with AsteriskSimulator(time_scale=FAST) as sim:
        client = await AmiTestClient.connect(sim.port)
        _originate(client, "r1", f"PJSIP/{number}@trunk")
        result = await client.wait_for(event("OriginateResponse", ActionID="r1"))
        hangup = await client.wait_for(event("Hangup", Uniqueid="r1-chan"))
        dial_end = await client.wait_for(event("DialEnd"))
        assert (result["Response"], result["Reason"], result["Uniqueid"]) == ("Failure", reason, "r1-chan")
        assert hangup["Cause"] == cause
        assert dial_end["DialStatus"] == status
        await client.close()


async def test_local_shape_without_channel_id_reports_unknown_uniqueid_on_failure() -> None:
    async with AsteriskSimulator(shape="local", time_scale=FAST) as sim:
        client = await AmiTestClient.connect(sim.port)
        client.send(
            Action="Originate",
            ActionID="b1",
            Channel="Local/3001@sim-customers",
            Context="dialer-answered",
            Exten="s",
            Async="true",
        )
        result = await client.wait_for(event("OriginateResponse", ActionID="b1"))
        first = await client.wait_for(event("Newchannel"))
        assert (result["Reason"], result["Uniqueid"]) == ("5", "<unknown>")
        assert first["Channel"].startswith("Local/3001@sim-customers-") and first["Channel"].endswith(";1")
        seconds, _, seq = first["Uniqueid"].partition(".")
        assert seconds.isdigit() and seq.isdigit()
        await client.close()


async def test_local_shape_has_no_sip_trunk() -> None:
    async with AsteriskSimulator(shape="local", time_scale=FAST) as sim:
        client = await AmiTestClient.connect(sim.port)
        _originate(client, "x1", "PJSIP/2001@trunk")
        queued = await client.wait_for(response("x1"))
        result = await client.wait_for(event("OriginateResponse", ActionID="x1"))
        assert queued["Message"] == "Originate successfully queued"
        assert (result["Response"], result["Reason"], result["Uniqueid"]) == ("Failure", "0", "x1-chan")
        assert client.matching(event("Newchannel")) == []
        await client.close()


async def test_a_channel_id_already_in_use_fails_the_originate_without_a_channel() -> None:
    async with AsteriskSimulator(time_scale=FAST) as sim:
        client = await AmiTestClient.connect(sim.port)
        _originate(client, "dup", "PJSIP/4001@trunk", Timeout="60000")
        await client.wait_for(event("DialState", DialStatus="RINGING"))
        _originate(client, "dup2", "PJSIP/4002@trunk", ChannelId="dup-chan")
        result = await client.wait_for(event("OriginateResponse", ActionID="dup2"))
        assert (result["Response"], result["Reason"]) == ("Failure", "0")
        assert len(client.matching(event("Newchannel"))) == 1
        assert [c.uniqueid for c in sim.live_channels()] == ["dup-chan"]
        await client.close()


async def test_no_answer_is_reason_three_after_the_timeout() -> None:
    async with AsteriskSimulator(time_scale=FAST) as sim:
        client = await AmiTestClient.connect(sim.port)
        _originate(client, "n1", "PJSIP/4001@trunk", Timeout="2000")
        result = await client.wait_for(event("OriginateResponse", ActionID="n1"))
        assert (result["Response"], result["Reason"]) == ("Failure", "3")
        assert (await client.wait_for(event("Hangup", Uniqueid="n1-chan")))["Cause"] == "0"
        await client.close()


async def test_synchronous_originate_answers_after_the_outcome() -> None:
    async with AsteriskSimulator(time_scale=FAST) as sim:
        client = await AmiTestClient.connect(sim.port)
        _originate(client, "s1", "PJSIP/3001@trunk", Async="false")
        answer = await client.wait_for(response("s1"))
        assert (answer["Response"], answer["Message"]) == ("Error", "Originate failed")
        assert client.matching(event("OriginateResponse")) == []
        await client.close()


async def test_production_dialplan_runs_amd_then_hands_the_call_to_fastagi() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, env: dict[str, str]) -> None:
        assert await _ask(reader, writer, "GET VARIABLE DIALER_ATTEMPT") == "200 result=1 (a1)"
        assert await _ask(reader, writer, "GET VARIABLE AMDSTATUS") == "200 result=1 (HUMAN)"
        assert await _ask(reader, writer, "GET VARIABLE NOT_SET") == "200 result=0"
        assert await _ask(reader, writer, "GET FULL VARIABLE ${AMDCAUSE:0:5}") == "200 result=1 (HUMAN)"
        assert await _ask(reader, writer, "FROB NICATE") == "510 Invalid or unknown command"
        assert await _ask(reader, writer, 'SET VARIABLE DIALER_AGENT "1001"') == "200 result=1"
        assert await _ask(reader, writer, "HANGUP") == "200 result=1"
        assert await _ask(reader, writer, "NOOP") == "HANGUP"

    async with AgiServer(script) as agi:
        sim = AsteriskSimulator(Fixed(CalleeKind.PERSON, 1.0, None), time_scale=FAST, fastagi_port=agi.port)
        async with sim:
            client = await AmiTestClient.connect(sim.port)
            _originate(
                client,
                "a1",
                "PJSIP/2001@trunk",
                ("Variable", "DIALER_ATTEMPT=a1"),
                ("Variable", "DIALER_AMD=1"),
            )
            amd = await client.wait_for(event("UserEvent", UserEvent="DialerAMD"))
            hangup = await client.wait_for(event("Hangup", Uniqueid="a1-chan"))
            await asyncio.wait_for(agi.finished.wait(), 5)
            agi_step = await client.wait_for(event("Newexten", Application="AGI"))
            agent = await client.wait_for(event("VarSet", Variable="DIALER_AGENT"))
            status = await client.wait_for(event("VarSet", Variable="AGISTATUS"))
            assert (amd["Attempt"], amd["Status"], amd["Cause"]) == ("a1", "HUMAN", "HUMAN-800-800")
            assert agi_step["AppData"] == f"agi://127.0.0.1:{agi.port}/answered"
            assert agent["Value"] == "1001"
            assert status["Value"] == "HANGUP"
            assert hangup["Cause"] == "16"
            env = agi.envs[0]
            assert env["agi_uniqueid"] == "a1-chan"
            assert env["agi_channel"].startswith("PJSIP/trunk-")
            assert (env["agi_context"], env["agi_extension"], env["agi_priority"]) == (
                "dialer-answered",
                "s",
                "5",
            )
            assert env["agi_callerid"] == "0100000000"
            await client.close()


async def test_production_dialplan_without_amd_goes_straight_to_fastagi() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, env: dict[str, str]) -> None:
        assert await _ask(reader, writer, "GET VARIABLE AMDSTATUS") == "200 result=0"

    async with AgiServer(script) as agi, AsteriskSimulator(time_scale=FAST, fastagi_port=agi.port) as sim:
        client = await AmiTestClient.connect(sim.port)
        _originate(client, "a2", "PJSIP/2001@trunk", ("Variable", "DIALER_ATTEMPT=a2"))
        await client.wait_for(event("Hangup", Uniqueid="a2-chan"))
        steps = [
            m["Application"] for m in client.matching(event("Newexten")) if m["Context"] == "dialer-answered"
        ]
        assert steps == ["NoOp", "GotoIf", "AGI", "Hangup"]
        assert client.matching(event("UserEvent")) == []
        assert (await client.wait_for(event("VarSet", Variable="AGISTATUS")))["Value"] == "SUCCESS"
        await client.close()


async def test_unreachable_fastagi_server_hangs_the_call_up() -> None:
    async with AsteriskSimulator(time_scale=FAST, fastagi_port=_closed_port()) as sim:
        client = await AmiTestClient.connect(sim.port)
        _originate(client, "u1", "PJSIP/2001@trunk")
        hangup = await client.wait_for(event("Hangup", Uniqueid="u1-chan"))
        status = await client.wait_for(event("VarSet", Variable="AGISTATUS"))
        assert status["Value"] == "FAILURE"
        assert hangup["Cause"] == "16"
        await client.close()


async def test_agi_session_learns_of_a_callee_hangup_and_gets_511_afterwards() -> None:
    replies: list[str] = []

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, env: dict[str, str]) -> None:
        replies.append(await _ask(reader, writer, "EXEC Wait 5"))
        replies.append((await reader.readline()).decode().rstrip("\n"))
        replies.append(await _ask(reader, writer, "GET VARIABLE DIALER_ATTEMPT"))

    async with (
        AgiServer(script) as agi,
        AsteriskSimulator(Fixed(CalleeKind.PERSON, 0.1, 1.0), time_scale=FAST, fastagi_port=agi.port) as sim,
    ):
        client = await AmiTestClient.connect(sim.port)
        _originate(client, "d1", "PJSIP/2001@trunk")
        await asyncio.wait_for(agi.finished.wait(), 5)
        await client.wait_for(event("Hangup", Uniqueid="d1-chan"))
        await client.close()
    assert replies == [
        "200 result=-1",
        "HANGUP",
        "511 Command Not Permitted on a dead channel or intercepted by the bridge",
    ]


async def test_agent_bridge_then_redirected_customer_joins_it() -> None:
    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, env: dict[str, str]) -> None:
        await _ask(reader, writer, "EXEC Wait 600")

    async with (
        AgiServer(hold) as agi,
        AsteriskSimulator(Fixed(CalleeKind.PERSON, 0.5, None), time_scale=FAST, fastagi_port=agi.port) as sim,
    ):
        client = await AmiTestClient.connect(sim.port)
        client.send(
            Action="Originate",
            ActionID="login",
            Channel="PJSIP/agent1001",
            Application="ConfBridge",
            Data="agent_1001",
            Async="true",
            ChannelId="agent-1001",
        )
        agent_join = await client.wait_for(event("ConfbridgeJoin", Uniqueid="agent-1001"))
        _originate(client, "c1", "PJSIP/2001@trunk")
        await client.wait_for(event("Newexten", Application="AGI", Uniqueid="c1-chan"))
        client.send(
            Action="Redirect", ActionID="r1", Channel="c1-chan", Context="dialer-connect", Exten="1001"
        )
        assert (await client.wait_for(response("r1")))["Message"] == "Redirect successful"
        joined = await client.wait_for(event("ConfbridgeJoin", Uniqueid="c1-chan"))
        assert joined["Conference"] == "agent_1001"
        assert joined["BridgeUniqueid"] == agent_join["BridgeUniqueid"]
        assert joined["BridgeNumChannels"] == "3"
        peers = [
            m["Value"] for m in client.matching(event("VarSet", Variable="BRIDGEPEER", Uniqueid="agent-1001"))
        ]
        assert peers[-1].split(",")[1] == joined["Channel"]
        await client.close()


async def test_redirect_to_abandon_plays_the_campaign_message_then_hangs_up() -> None:
    async with AsteriskSimulator(
        Fixed(CalleeKind.PERSON, 0.1, None), time_scale=FAST, fastagi_port=_closed_port()
    ) as sim:
        client = await AmiTestClient.connect(sim.port)
        _originate(client, "ab", "PJSIP/2001@trunk", Context="dialer-abandon", Exten="s")
        await client.wait_for(event("OriginateResponse", ActionID="ab"))
        await client.wait_for(event("Hangup", Uniqueid="ab-chan"))
        steps = [(m["Application"], m["AppData"]) for m in client.matching(event("Newexten"))]
        assert steps[-2:] == [("Playback", ""), ("Hangup", "")]
        client.send(Action="Setvar", ActionID="v1", Variable="DIALER_MESSAGE", Value="dialer/abandon-fr")
        assert (await client.wait_for(response("v1")))["Message"] == "Variable Set"
        _originate(client, "ab2", "PJSIP/2002@trunk", Context="dialer-abandon", Exten="s")
        await client.wait_for(event("Hangup", Uniqueid="ab2-chan"))
        played = client.matching(event("Newexten", Application="Playback", Uniqueid="ab2-chan"))
        assert played[0]["AppData"] == "dialer/abandon-fr"
        await client.close()


async def test_local_shape_callee_hangs_up_after_the_model_talk_time() -> None:
    async with AsteriskSimulator(
        Fixed(CalleeKind.PERSON, 1.0, 6.0), shape="local", time_scale=FAST, fastagi_port=_closed_port()
    ) as sim:
        client = await AmiTestClient.connect(sim.port)
        _originate(client, "t1", "Local/2001@sim-customers", Context="dialer-connect", Exten="1001")
        ringing = await client.wait_for(event("DialState", DialStatus="RINGING"))
        answered = await client.wait_for(event("OriginateResponse", ActionID="t1"))
        far_hangup = await client.wait_for(
            event("Hangup", Channel=ringing["DestChannel"].replace(";1", ";2"))
        )
        ours = await client.wait_for(event("Hangup", Uniqueid="t1-chan"))
        assert answered["Reason"] == "4"
        assert far_hangup["Cause"] == ours["Cause"] == "16"
        assert client.matching(event("ConfbridgeLeave", Uniqueid="t1-chan"))
        await client.close()


async def test_crash_drops_everything_and_the_restarted_pbx_is_fresh() -> None:
    sim = AsteriskSimulator(time_scale=FAST)
    await sim.start()
    try:
        client = await AmiTestClient.connect(sim.port)
        _originate(client, "k1", "PJSIP/4001@trunk", Timeout="60000")
        await client.wait_for(event("DialState"))
        port = sim.port
        before = len(client.messages)
        await sim.crash()
        await asyncio.wait_for(client.closed.wait(), 5)
        assert len(client.messages) == before, "a killed Asterisk says nothing"
        assert sim.live_channels() == []
        with pytest.raises(OSError):
            await asyncio.open_connection("127.0.0.1", port)
        await sim.start()
        assert sim.port == port
        again = await AmiTestClient.connect(sim.port)
        again.send(Action="CoreShowChannels", ActionID="cs")
        assert (await again.wait_for(event("CoreShowChannelsComplete")))["ListItems"] == "0"
        _originate(again, "k2", "PJSIP/4001@trunk", Timeout="60000")
        await again.wait_for(response("k2"))
        assert sim.originates_received == ["k1", "k2"]
        await again.close()
    finally:
        await sim.crash()


async def test_stop_hangs_up_calls_sends_shutdown_and_closes() -> None:
    sim = AsteriskSimulator(time_scale=FAST)
    await sim.start()
    try:
        client = await AmiTestClient.connect(sim.port)
        _originate(client, "s1", "PJSIP/2001@trunk", Context="dialer-connect", Exten="1001")
        await client.wait_for(event("ConfbridgeJoin"))
        await sim.stop()
        await asyncio.wait_for(client.closed.wait(), 5)
        names = [m.get("Event") for m in client.messages]
        tail = names[names.index("ConfbridgeLeave") :]
        assert tail[-1] == "Shutdown"
        soft = client.matching(event("SoftHangupRequest", Uniqueid="s1-chan"))
        assert [m["Cause"] for m in soft] == ["4", "16"]
        assert (await client.wait_for(event("Hangup", Uniqueid="s1-chan")))["Cause"] == "0"
    finally:
        await sim.crash()


async def test_hundreds_of_concurrent_calls_each_end_once() -> None:
    calls = 300
    async with AsteriskSimulator(RandomCallee(seed=7), time_scale=400.0, fastagi_port=_closed_port()) as sim:
        client = await AmiTestClient.connect(sim.port)
        for i in range(calls):
            _originate(client, f"m{i}", f"PJSIP/06{i:08d}@trunk", Timeout="25000")
        try:
            await client.wait_for(event("OriginateResponse"), within=30, count=calls)
            await client.wait_for(event("Hangup"), within=30, count=calls)
        except AssertionError:
            hung = {m["Uniqueid"] for m in client.matching(event("Hangup"))}
            missing = [f"m{i}" for i in range(calls) if f"m{i}-chan" not in hung]
            story = [
                (m.get("Event"), m.get("Application"), m.get("Variable"), m.get("Value"), m.get("Reason"))
                for m in client.messages
                if missing and missing[0] in (m.get("ActionID"), m.get("Uniqueid", "")[:-5])
            ]
            raise AssertionError(
                f"calls without Hangup: {missing[:5]}...; the first one saw {story}"
            ) from None
        results = client.matching(event("OriginateResponse"))
        hangups = client.matching(event("Hangup"))
        assert sorted(m["ActionID"] for m in results) == sorted(f"m{i}" for i in range(calls))
        assert sorted(m["Uniqueid"] for m in hangups) == sorted(f"m{i}-chan" for i in range(calls))
        assert {m["Reason"] for m in results} >= {"0", "3", "4"}
        assert sim.live_channels() == []
        await client.close()


def test_time_scale_and_shape_are_checked() -> None:
    with pytest.raises(ValueError, match="time_scale"):
        AsteriskSimulator(time_scale=0)
    with pytest.raises(ValueError, match="shape"):
        AsteriskSimulator(shape="iax")  # type: ignore[arg-type]


async def test_variables_set_by_setvar_are_read_by_getvar() -> None:
    async with AsteriskSimulator(time_scale=FAST) as sim:
        client = await AmiTestClient.connect(sim.port)
        _originate(client, "g1", "PJSIP/4001@trunk", Timeout="60000")
        await client.wait_for(event("DialState"))
        client.send(Action="Setvar", ActionID="s", Channel="g1-chan", Variable="X", Value="42")
        client.send(Action="Getvar", ActionID="g", Channel="g1-chan", Variable="X")
        got = await client.wait_for(response("g"))
        assert (got["Variable"], got["Value"]) == ("X", "42")
        assert (await client.wait_for(event("VarSet", Variable="X")))["Value"] == "42"
        await client.close()
