"""AsteriskPbx against a small fake AMI server: the actions it sends and the events it reports."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from telephony.asterisk.adapter import AsteriskPbx
from telephony.asterisk.protocol import split_capture_block
from telephony.asterisk.settings import AsteriskSettings
from telephony.base import (
    AnswerDecision,
    AnsweredCall,
    CallEvent,
    Connected,
    ConnectToAgent,
    Failed,
    HungUp,
    OriginateRequest,
    Outcome,
    Pbx,
    PbxError,
    PbxUnavailable,
)
from tests.captures import load_asterisk
from tests.telephony.asterisk.fake_ami import FakeAmi


async def until(predicate: Callable[[], bool], steps: int = 300) -> None:
    for _ in range(steps):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


class Collector:
    def __init__(self, pbx: AsteriskPbx) -> None:
        self.events: list[CallEvent] = []
        self._task = asyncio.create_task(self._run(pbx))

    async def _run(self, pbx: AsteriskPbx) -> None:
        async for event in pbx.events():
            self.events.append(event)

    async def wait_for(self, predicate: Callable[[list[CallEvent]], bool]) -> None:
        await until(lambda: predicate(self.events))


def request(attempt: str, number: str = "+33123456789", **kw: object) -> OriginateRequest:
    values: dict[str, object] = {
        "attempt_id": attempt,
        "number": number,
        "dial_string": f"PJSIP/{number[1:]}@trunk",
        "caller_id_number": "0100000000",
        "caller_id_name": "ACME",
        "ring_timeout_s": 20.0,
        "campaign_id": "camp-1",
        "amd": True,
    }
    values.update(kw)
    return OriginateRequest(**values)  # type: ignore[arg-type]


@pytest.fixture
async def ami() -> AsyncIterator[FakeAmi]:
    server = FakeAmi()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def pbx(ami: FakeAmi) -> AsyncIterator[AsteriskPbx]:
    settings = AsteriskSettings(
        port=ami.port,
        secret=ami.secret,
        fastagi_port=0,
        ping_interval_s=60.0,
        reconnect_initial_s=0.05,
        reconnect_max_s=0.1,
        action_timeout_s=1.0,
    )
    adapter = AsteriskPbx(settings)
    await adapter.start()
    yield adapter
    await adapter.stop()


async def test_it_is_a_pbx(pbx: AsteriskPbx) -> None:
    assert isinstance(pbx, Pbx)
    assert pbx.connected


async def test_originate_sends_a_context_originate_with_our_ids_and_variables(
    ami: FakeAmi, pbx: AsteriskPbx, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO")
    await pbx.originate(request("att-1", variables={"LEAD": "42"}))
    action = next(a for a in ami.actions if a.action == "Originate")
    assert dict(action) == {
        "Action": "Originate",
        "ActionID": "att-1",
        "Channel": "PJSIP/33123456789@trunk",
        "Context": "dialer-answered",
        "Exten": "s",
        "Priority": "1",
        "Timeout": "20000",
        "CallerID": '"ACME" <0100000000>',
        "Async": "true",
        "ChannelId": "att-1",
        "Variable": "DIALER_ATTEMPT=att-1",
    }
    assert action.getall("Variable") == [
        "DIALER_ATTEMPT=att-1",
        "DIALER_CAMPAIGN=camp-1",
        "DIALER_AMD=1",
        "LEAD=42",
    ]
    assert "Application" not in action
    assert "+33123456789" not in caplog.text
    assert "33123456789" not in caplog.text.replace("PJSIP", "")


async def test_an_attempt_is_never_originated_twice(ami: FakeAmi, pbx: AsteriskPbx) -> None:
    await pbx.originate(request("att-twice"))
    with pytest.raises(PbxError, match="dialed once"):
        await pbx.originate(request("att-twice"))
    assert ami.originates_received == ["att-twice"]


async def test_a_variable_value_with_a_comma_is_refused(ami: FakeAmi, pbx: AsteriskPbx) -> None:
    with pytest.raises(PbxError, match="comma"):
        await pbx.originate(request("att-comma", variables={"LEAD": "1,DIALER_AMD=0"}))
    assert ami.originates_received == []


async def test_ring_timeout_below_fifteen_seconds_is_refused(ami: FakeAmi, pbx: AsteriskPbx) -> None:
    with pytest.raises(PbxError, match="below 15 s"):
        await pbx.originate(request("att-2", ring_timeout_s=10.0))
    assert ami.originates_received == []


async def test_refused_originate_raises_and_forgets_the_attempt(ami: FakeAmi, pbx: AsteriskPbx) -> None:
    ami.errors["Originate"] = "Originate failed"
    with pytest.raises(PbxError, match="refused by Asterisk: Originate failed"):
        await pbx.originate(request("att-3"))
    assert pbx.tracker.in_flight() == []


async def test_originate_while_disconnected_is_unavailable(ami: FakeAmi, pbx: AsteriskPbx) -> None:
    await ami.crash()
    await until(lambda: not pbx.connected)
    with pytest.raises(PbxUnavailable, match="not placed"):
        await pbx.originate(request("att-4"))
    assert pbx.tracker.in_flight() == []


async def test_sip_busy_capture_becomes_one_failed_busy_event(ami: FakeAmi, pbx: AsteriskPbx) -> None:
    events = Collector(pbx)
    await pbx.originate(request("sip-busy"))
    capture = load_asterisk("sip_busy")
    for _, raw in capture.received:
        msg = split_capture_block(raw)
        if msg is None or "Event" not in msg:
            continue
        await ami.send_raw(raw.replace("sip-busy-chan", "sip-busy").encode() + b"\r\n\r\n")
    await events.wait_for(lambda evs: any(isinstance(e, Failed) for e in evs))
    await pbx.client.drain_events()
    failed = [e for e in events.events if isinstance(e, Failed)]
    assert [(e.attempt_id, e.outcome, e.cause) for e in failed] == [("sip-busy", Outcome.BUSY, 17)]


async def test_after_a_reconnect_gone_calls_are_lost_and_nothing_is_resent(
    ami: FakeAmi, pbx: AsteriskPbx
) -> None:
    events = Collector(pbx)
    for attempt in ("att-gone", "att-up", "att-ringing"):
        await pbx.originate(request(attempt))
    await ami.send_event({"Event": "Newstate", "Uniqueid": "att-up", "ChannelState": "6"})
    await events.wait_for(lambda evs: len(evs) == 1)
    await ami.crash()
    ami.live_channels = {"att-up": "6", "att-ringing": "5"}
    await ami.start(ami.port)
    await events.wait_for(lambda evs: len(evs) == 2)
    assert [(type(e), e.attempt_id) for e in events.events] == [
        (type(events.events[0]), "att-up"),
        (Failed, "att-gone"),
    ]
    assert events.events[1].outcome is Outcome.LOST  # type: ignore[attr-defined]
    assert ami.originates_received == ["att-gone", "att-up", "att-ringing"]
    assert sorted(pbx.tracker.in_flight()) == ["att-ringing", "att-up"]


async def test_hangup_of_a_call_already_gone_is_not_an_error(ami: FakeAmi, pbx: AsteriskPbx) -> None:
    await pbx.originate(request("att-5"))
    ami.errors["Hangup"] = "No such channel"
    await pbx.hangup("att-5")
    hangup = next(a for a in ami.actions if a.action == "Hangup")
    assert (hangup["Channel"], hangup["Cause"]) == ("att-5", "16")


async def test_connect_play_and_agent_login_actions(ami: FakeAmi, pbx: AsteriskPbx) -> None:
    events = Collector(pbx)
    await pbx.connect_to_agent("att-6", "1001")
    await pbx.play_then_hangup("att-7", "dialer/identification")
    leg = await pbx.login_agent("1001", "PJSIP/agent1001")
    sent = [
        (a.action, {k: v for k, v in a.items() if k not in ("Action", "ActionID")})
        for a in ami.actions
        if a.action != "CoreShowChannels"
    ]
    assert sent[-4:] == [
        ("Redirect", {"Channel": "att-6", "Context": "dialer-connect", "Exten": "1001", "Priority": "1"}),
        ("Setvar", {"Channel": "att-7", "Variable": "DIALER_MESSAGE", "Value": "dialer/identification"}),
        ("Redirect", {"Channel": "att-7", "Context": "dialer-abandon", "Exten": "s", "Priority": "1"}),
        (
            "Originate",
            {
                "Channel": "PJSIP/agent1001",
                "Application": "ConfBridge",
                "Data": "agent_1001,dialer_agent_bridge,dialer_agent",
                "Timeout": "30000",
                "CallerID": '"Dialer" <1001>',
                "Async": "true",
                "ChannelId": leg,
            },
        ),
    ]
    assert leg.startswith("agent-1001-")
    await asyncio.sleep(0.05)
    assert events.events == []  # a Redirect is a request: Connected waits for Asterisk's ConfbridgeJoin


async def test_login_hangs_up_a_stale_leg_of_that_agent_and_leaves_customers_alone(
    ami: FakeAmi, pbx: AsteriskPbx
) -> None:
    await until(lambda: any(a.action == "CoreShowChannels" for a in ami.actions))  # the start-up sweep
    ami.live_channels = {"agent-1001-old-1": "6", "1796399371.27": "6", "att-c": "6", "agent-1002-x-1": "6"}
    ami.channel_apps = {
        "agent-1001-old-1": ("ConfBridge", "agent_1001,dialer_agent_bridge,dialer_agent"),
        "1796399371.27": ("ConfBridge", "agent_1001,dialer_agent_bridge,dialer_agent"),  # dialed in
        "att-c": ("ConfBridge", "agent_1001"),  # a customer talking to the agent
        "agent-1002-x-1": ("ConfBridge", "agent_1002,dialer_agent_bridge,dialer_agent"),
    }
    await pbx.login_agent("1001", "PJSIP/agent1001")
    hung_up = [a["Channel"] for a in ami.actions if a.action == "Hangup"]
    assert sorted(hung_up) == ["1796399371.27", "agent-1001-old-1"]


async def test_live_attempts_lists_channel_uniqueids(ami: FakeAmi, pbx: AsteriskPbx) -> None:
    ami.live_channels = {"att-8": "6", "agent-1001-1": "6"}
    assert await pbx.live_attempts() == {"att-8", "agent-1001-1"}


class Router:
    def __init__(self) -> None:
        self.calls: list[AnsweredCall] = []

    async def on_answered(self, call: AnsweredCall) -> AnswerDecision:
        self.calls.append(call)
        return ConnectToAgent("1001")


async def test_fastagi_answered_calls_reach_the_router_set_on_the_pbx(ami: FakeAmi, pbx: AsteriskPbx) -> None:
    router = Router()
    pbx.set_answer_router(router)
    events = Collector(pbx)
    await pbx.originate(request("att-9"))
    reader, writer = await asyncio.open_connection("127.0.0.1", pbx.fastagi_port)
    writer.write(b"agi_network_script: answered\nagi_uniqueid: att-9\n\n")
    replies = {
        "GET VARIABLE DIALER_ATTEMPT": "200 result=1 (att-9)",
        "GET VARIABLE AMDSTATUS": "200 result=0",
    }
    sent: list[str] = []
    while True:
        line = (await asyncio.wait_for(reader.readline(), 5.0)).decode().strip()
        if not line:
            break
        sent.append(line)
        writer.write((replies.get(line, "200 result=0") + "\n").encode())
        if line.startswith("EXEC"):
            writer.close()
            break
    assert sent[-2:] == ['SET VARIABLE DIALER_AGENT "1001"', "EXEC ConfBridge agent_1001"]
    assert [c.attempt_id for c in router.calls] == ["att-9"]
    await asyncio.sleep(0.05)
    assert events.events == []  # sent to the agent, not yet connected
    join = {"Event": "ConfbridgeJoin", "Conference": "agent_1001", "Uniqueid": "att-9", "Admin": "No"}
    await ami.send_event(join)
    await events.wait_for(lambda evs: len(evs) == 1)
    assert events.events == [Connected("att-9", events.events[0].at, "1001")]


async def test_answered_call_hangup_after_shutdown_event(ami: FakeAmi, pbx: AsteriskPbx) -> None:
    events = Collector(pbx)
    await pbx.originate(request("att-10"))
    await ami.send_event({"Event": "Newstate", "Uniqueid": "att-10", "ChannelState": "6"})
    await ami.send_event({"Event": "Shutdown", "Shutdown": "Cleanly", "Restart": "True"})
    await events.wait_for(lambda evs: len(evs) == 2)
    assert isinstance(events.events[1], HungUp)
