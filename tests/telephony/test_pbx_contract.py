"""One PBX-level suite, run against both adapters on their simulators.

Above ``telephony/`` nothing knows which PBX it talks to: these tests only use
``telephony.base`` (the ``Pbx`` protocol, ``OriginateRequest``, the normalized
events and the answer decisions), and each must pass on Asterisk (AMI +
FastAGI) and on FreeSWITCH (ESL) alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from telephony.asterisk.adapter import AsteriskPbx
from telephony.asterisk.settings import AsteriskSettings
from telephony.base import (
    AnswerDecision,
    Answered,
    AnsweredCall,
    CallEvent,
    ConnectToAgent,
    Failed,
    HangupCall,
    HungUp,
    OriginateRequest,
    Outcome,
    Pbx,
    PbxError,
    PlayMessageThenHangup,
)
from telephony.freeswitch.adapter import FreeSwitchPbx, FreeSwitchSettings
from telephony.sim.asterisk import AsteriskSimulator
from telephony.sim.freeswitch import FreeSwitchSimulator
from telephony.sim.model import ScriptedCallee

TIME_SCALE = 10.0


@dataclass
class Router:
    decision: AnswerDecision = field(default_factory=HangupCall)
    calls: list[AnsweredCall] = field(default_factory=list)

    async def on_answered(self, call: AnsweredCall) -> AnswerDecision:
        self.calls.append(call)
        return self.decision


@dataclass
class Line:
    """A started PBX adapter on its simulator, with every event it emitted by attempt."""

    pbx: Pbx
    router: Router
    dial: str  # dial-string template with {n}
    agent_endpoint: str
    events: dict[str, list[CallEvent]] = field(default_factory=lambda: defaultdict(list))

    def request(self, attempt: str, number: str, ring_timeout_s: float = 20.0) -> OriginateRequest:
        return OriginateRequest(
            attempt_id=attempt,
            number=f"+3361234{number}",
            dial_string=self.dial.format(n=number),
            caller_id_number="0100000000",
            caller_id_name="Dialer",
            ring_timeout_s=ring_timeout_s,
            campaign_id="contract",
        )

    async def until(self, attempt: str, kind: type[CallEvent], within_s: float = 15.0) -> CallEvent:
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            for event in self.events[attempt]:
                if isinstance(event, kind):
                    return event
            await asyncio.sleep(0.02)
        raise AssertionError(f"{attempt}: no {kind.__name__} within {within_s} s; got {self.events[attempt]}")

    async def final(self, attempt: str) -> CallEvent:
        """The event that ended the attempt: Failed, or HungUp after an answer."""
        deadline = time.monotonic() + 15.0
        while time.monotonic() < deadline:
            for event in self.events[attempt]:
                if isinstance(event, Failed | HungUp):
                    return event
            await asyncio.sleep(0.02)
        raise AssertionError(f"{attempt} never ended: {self.events[attempt]}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def _asterisk() -> AsyncIterator[Line]:
    agi = _free_port()
    sim = AsteriskSimulator(
        ScriptedCallee(), shape="sip", time_scale=TIME_SCALE, secret="s", fastagi_port=agi
    )
    await sim.start()
    pbx = AsteriskPbx(AsteriskSettings(port=sim.port, secret="s", fastagi_port=agi))
    try:
        yield Line(pbx, Router(), "PJSIP/{n}@trunk", "PJSIP/1001@agents")
    finally:
        await pbx.stop()
        await sim.stop()


@contextlib.asynccontextmanager
async def _freeswitch() -> AsyncIterator[Line]:
    sim = FreeSwitchSimulator(ScriptedCallee(), time_scale=TIME_SCALE, password="s")
    await sim.start()
    pbx = FreeSwitchPbx(FreeSwitchSettings(port=sim.port, password="s"))
    try:
        yield Line(pbx, Router(), "sofia/dialer/{n}@127.0.0.1:5070", "sofia/dialer/1001@127.0.0.1:5081")
    finally:
        await pbx.stop()
        await sim.stop()


@pytest.fixture(params=["asterisk", "freeswitch"])
async def line(request: pytest.FixtureRequest) -> AsyncIterator[Line]:
    factory = _asterisk if request.param == "asterisk" else _freeswitch
    async with factory() as line:
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


async def test_the_adapter_is_a_pbx_and_starts_connected(line):
    assert isinstance(line.pbx, Pbx)
    assert line.pbx.connected


@pytest.mark.parametrize(
    ("number", "outcome", "cause"),
    [
        ("3001", Outcome.BUSY, 17),
        ("5001", Outcome.CONGESTION, None),  # 34 on Asterisk, 41 on FreeSWITCH: both congestion
        ("6001", Outcome.INVALID_NUMBER, 1),
    ],
)
async def test_refused_calls_fail_with_the_outcome_their_cause_says(line, number, outcome, cause):
    await line.pbx.originate(line.request(f"refused-{number}", number))
    event = await line.final(f"refused-{number}")
    assert isinstance(event, Failed) and event.outcome is outcome
    if cause is not None:
        assert event.cause == cause
    assert not line.router.calls


async def test_unanswered_call_fails_as_no_answer_after_the_ring_timeout(line):
    await line.pbx.originate(line.request("noans", "4001", ring_timeout_s=15.0))
    event = await line.final("noans")
    assert isinstance(event, Failed) and event.outcome is Outcome.NO_ANSWER


async def test_answered_person_asks_the_router_once_and_ends_hung_up(line):
    line.router.decision = PlayMessageThenHangup("dialer-identification")
    await line.pbx.originate(line.request("person", "2001"))
    await line.until("person", Answered)
    event = await line.final("person")
    assert isinstance(event, HungUp)
    assert [c.attempt_id for c in line.router.calls] == ["person"]
    assert not any(isinstance(e, Failed) for e in line.events["person"])


async def test_dialer_hanging_up_a_ringing_call_is_a_cancellation(line):
    await line.pbx.originate(line.request("cancel", "4002", ring_timeout_s=60.0))
    await asyncio.sleep(0.3)
    assert "cancel" in await line.pbx.live_attempts()
    await line.pbx.hangup("cancel")
    event = await line.final("cancel")
    assert isinstance(event, Failed) and event.outcome is Outcome.CANCELLED


async def test_answered_person_joins_the_logged_in_agent_then_hangs_up(line):
    leg = await line.pbx.login_agent("1001", line.agent_endpoint)
    await line.until(leg, Answered)
    line.router.decision = ConnectToAgent("1001")
    await line.pbx.originate(line.request("connect", "2002"))
    await line.until("connect", Answered)
    event = await line.final("connect")  # the person hangs up after talking
    assert isinstance(event, HungUp)
    assert line.router.calls[0].attempt_id == "connect"


async def test_bad_channel_is_refused_or_fails_without_a_call(line):
    request = line.request("badchan", "2003")
    bad = dataclasses.replace(request, dial_string="NoSuchTech/123")
    try:
        await line.pbx.originate(bad)
    except PbxError:
        return
    event = await line.final("badchan")
    assert isinstance(event, Failed) and event.outcome is Outcome.FAILED
