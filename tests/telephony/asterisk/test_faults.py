"""AsteriskPbx against the Asterisk simulator: calls end to end, and what goes wrong on the way.

The simulator (telephony/sim/asterisk.py) speaks real AMI and opens real
FastAGI sessions with the event sequences of the captures; here it is killed
and restarted mid-call, made silent, fed garbage, and its callers hang up
during the AGI dialogue.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections import Counter
from collections.abc import AsyncIterator, Callable

import pytest

from telephony.asterisk.adapter import AsteriskPbx
from telephony.asterisk.settings import AsteriskSettings
from telephony.base import (
    ActionTimeout,
    AmdDetected,
    AmdResult,
    AnswerDecision,
    Answered,
    AnsweredCall,
    CallEvent,
    Connected,
    ConnectFailed,
    ConnectToAgent,
    Failed,
    HangupCall,
    HungUp,
    OriginateRequest,
    Outcome,
)
from telephony.sim.asterisk import AsteriskSimulator
from telephony.sim.model import ScriptedCallee

TIME_SCALE = 10.0  # PBX seconds per real second: a 15 s ring lasts 1.5 s


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Router:
    def __init__(self, decision: AnswerDecision, delay: float = 0.0) -> None:
        self.decision = decision
        self.delay = delay
        self.calls: list[AnsweredCall] = []

    async def on_answered(self, call: AnsweredCall) -> AnswerDecision:
        self.calls.append(call)
        if self.delay:
            await asyncio.sleep(self.delay)
        return self.decision


class Rig:
    def __init__(self, sim: AsteriskSimulator, pbx: AsteriskPbx) -> None:
        self.sim = sim
        self.pbx = pbx
        self.events: list[CallEvent] = []
        self._task = asyncio.create_task(self._collect())

    async def _collect(self) -> None:
        async for event in self.pbx.events():
            self.events.append(event)

    def of(self, attempt: str) -> list[CallEvent]:
        return [e for e in self.events if e.attempt_id == attempt]

    def final(self, attempt: str) -> CallEvent | None:
        ends = [e for e in self.of(attempt) if isinstance(e, Failed | HungUp)]
        assert len(ends) <= 1, ends
        return ends[0] if ends else None

    async def until(self, predicate: Callable[[], bool], seconds: float = 10.0) -> None:
        for _ in range(int(seconds / 0.02)):
            if predicate():
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"condition not reached; events: {self.events}")


def request(attempt: str, number: str, shape: str, amd: bool = False) -> OriginateRequest:
    dial = f"PJSIP/{number}@trunk" if shape == "sip" else f"Local/{number}@customers"
    return OriginateRequest(attempt, f"+3312345{number}", dial, "0100000000", "ACME", 15.0, "camp-1", amd)


@pytest.fixture(params=["sip", "local"])
async def rig(request: pytest.FixtureRequest) -> AsyncIterator[Rig]:
    agi_port = free_port()
    sim = AsteriskSimulator(
        ScriptedCallee(), shape=request.param, time_scale=TIME_SCALE, fastagi_port=agi_port, secret="s3cret"
    )
    await sim.start()
    settings = AsteriskSettings(
        port=sim.port,
        secret="s3cret",
        fastagi_port=agi_port,
        ping_interval_s=2.0,  # liveness has its own test; a loaded test machine must not trip it here
        ping_timeout_s=2.0,
        action_timeout_s=1.0,
        reconnect_initial_s=0.05,
        reconnect_max_s=0.2,
        decision_timeout_s=3.0,
    )
    pbx = AsteriskPbx(settings)
    await pbx.start()
    the_rig = Rig(sim, pbx)
    the_rig.shape = request.param  # type: ignore[attr-defined]
    yield the_rig
    await pbx.stop()
    await sim.crash()


async def test_calls_end_to_end_get_the_lab_outcomes(rig: Rig) -> None:
    router = Router(HangupCall())
    rig.pbx.set_answer_router(router)
    shape = rig.shape  # type: ignore[attr-defined]
    plan = {
        "e2e-person": "2001",
        "e2e-busy": "3001",
        "e2e-cong": "5001",
        "e2e-invalid": "6001",
        "e2e-machine": "7001",
        "e2e-noans": "4001",
    }
    for attempt, number in plan.items():
        await rig.pbx.originate(request(attempt, number, shape, amd=True))
    await rig.until(lambda: all(rig.final(a) is not None for a in plan))
    outcomes = {a: rig.pbx.tracker.outcome_label(a) for a in plan}
    assert outcomes == {
        "e2e-person": "answered:person",
        "e2e-busy": "busy",
        "e2e-cong": "congestion",
        "e2e-invalid": "invalid_number",
        "e2e-machine": "answered:machine",
        "e2e-noans": "no_answer",
    }
    assert sorted(c.attempt_id for c in router.calls) == ["e2e-machine", "e2e-person"]
    amd = {c.attempt_id: c.amd for c in router.calls}
    assert amd == {"e2e-person": AmdResult.PERSON, "e2e-machine": AmdResult.MACHINE}
    kinds = [type(e) for e in rig.of("e2e-person")]
    assert kinds.index(Answered) < kinds.index(AmdDetected) < kinds.index(HungUp) == len(kinds) - 1


async def test_pbx_killed_and_restarted_mid_call_resends_nothing_and_ends_every_attempt(rig: Rig) -> None:
    rig.pbx.set_answer_router(Router(ConnectToAgent("1001")))  # answered calls wait in a bridge
    shape = rig.shape  # type: ignore[attr-defined]
    attempts = {"k-up-1": "2001", "k-up-2": "2002", "k-ring-1": "4001", "k-ring-2": "4002"}
    for attempt, number in attempts.items():
        await rig.pbx.originate(request(attempt, number, shape))
    # nobody is in agent_1001: Asterisk puts each customer there alone, which is a failed connect
    await rig.until(lambda: sum(isinstance(e, Connected | ConnectFailed) for e in rig.events) == 2)
    # one more Originate that Asterisk receives but never answers before dying
    rig.sim.unanswered_actions.add("Originate")
    unacked = asyncio.create_task(rig.pbx.originate(request("k-unacked", "2003", shape)))
    await rig.until(lambda: "k-unacked" in rig.sim.originates_received)
    await rig.sim.crash()
    await unacked  # returns: the attempt is reconciled, not re-sent and not reported as unsent
    rig.sim.unanswered_actions.clear()
    await rig.sim.start(port=rig.sim.port)
    everyone = [*attempts, "k-unacked"]
    await rig.until(lambda: all(rig.final(a) is not None for a in everyone))
    assert Counter(rig.sim.originates_received) == Counter(everyone)
    for attempt in ("k-up-1", "k-up-2"):
        assert isinstance(rig.final(attempt), HungUp)
    for attempt in ("k-ring-1", "k-ring-2", "k-unacked"):
        final = rig.final(attempt)
        assert isinstance(final, Failed) and final.outcome is Outcome.LOST, final
    assert rig.pbx.connected
    assert rig.pbx.tracker.in_flight() == []


async def test_an_action_with_no_answer_times_out_and_the_link_stays(rig: Rig) -> None:
    rig.sim.unanswered_actions.add("Redirect")
    with pytest.raises(ActionTimeout, match="Redirect"):
        await rig.pbx.connect_to_agent("nobody", "1001")
    assert rig.pbx.connected
    assert await rig.pbx.live_attempts() == set()


async def test_a_malformed_ami_message_is_counted_and_the_connection_survives(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="telephony.asterisk.client")
    await rig.sim.send_raw(b"Event: Newchannel\r\nthis line has no colon\r\n\r\n")
    await rig.until(lambda: rig.pbx.client.stats.malformed == 1)
    assert "malformed" in caplog.text
    await rig.pbx.originate(request("after-garbage", "3001", rig.shape))  # type: ignore[attr-defined]
    await rig.until(lambda: rig.final("after-garbage") is not None)
    assert rig.pbx.tracker.outcome_label("after-garbage") == "busy"
    assert rig.pbx.client.stats.connects == 1


async def test_a_caller_hanging_up_during_the_agi_session_ends_it_quietly(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    # 8XXX answers and hangs up after one PBX second; the router takes longer than that
    rig.pbx.set_answer_router(Router(ConnectToAgent("1001"), delay=0.5))
    caplog.set_level(logging.INFO, logger="telephony.asterisk.fastagi")
    await rig.pbx.originate(request("short-call", "8001", rig.shape))  # type: ignore[attr-defined]
    await rig.until(lambda: rig.pbx.fastagi.stats.hangups == 1)
    stats = rig.pbx.fastagi.stats
    assert (stats.errors, stats.timeouts) == (0, 0)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
    await rig.until(lambda: rig.final("short-call") is not None)
    assert isinstance(rig.final("short-call"), HungUp)
