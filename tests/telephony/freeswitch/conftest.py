"""Fixtures for the FreeSWITCH adapter tests: a scripted ESL server and an adapter wired to it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from telephony.base import AnswerDecision, AnsweredCall, CallEvent, Failed, HangupCall, HungUp
from telephony.freeswitch.adapter import FreeSwitchPbx, FreeSwitchSettings
from telephony.sim.freeswitch import FreeSwitchSimulator
from telephony.sim.model import ScriptedCallee
from tests.telephony.freeswitch.fake_esl import FakeEsl

TIME_SCALE = 20.0  # simulator: a person answers in 0.15 s, a beep comes 0.27 s after the answer


@dataclass
class ScriptedRouter:
    """Answers every call with ``decision`` and remembers what it was asked."""

    decision: AnswerDecision = field(default_factory=HangupCall)
    calls: list[AnsweredCall] = field(default_factory=list)
    # what a failed connect gets instead, and what the router was told of it
    retry: AnswerDecision = field(default_factory=HangupCall)
    failures: list[tuple[str, str, str]] = field(default_factory=list)
    delay_s: float = 0.0  # think this long before answering (the customer may leave meanwhile)

    async def on_answered(self, call: AnsweredCall) -> AnswerDecision:
        self.calls.append(call)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        return self.decision

    async def on_connect_failed(self, call: AnsweredCall, agent_id: str, reason: str) -> AnswerDecision:
        self.failures.append((call.attempt_id, agent_id, reason))
        return self.retry


@pytest.fixture
async def fake_esl() -> AsyncIterator[FakeEsl]:
    server = FakeEsl()
    await server.start()
    yield server
    await server.stop()


def settings_for(port: int, **overrides: object) -> FreeSwitchSettings:
    values: dict[str, object] = {
        "host": "127.0.0.1",
        "port": port,
        "password": "ClueCon",
        "action_timeout_s": 1.0,
        "connect_timeout_s": 1.0,
        "reconnect_initial_s": 0.05,
        "reconnect_max_s": 0.2,
        "liveness_interval_s": 5.0,
    }
    values.update(overrides)
    return FreeSwitchSettings(**values)  # type: ignore[arg-type]


async def next_event(
    pbx: FreeSwitchPbx, kind: type, attempt: str | None = None, wait_s: float = 3.0
) -> CallEvent:
    """The next event of ``kind`` (for ``attempt``), skipping the others."""
    events = pbx.events()

    async def find() -> CallEvent:
        async for event in events:
            if isinstance(event, kind) and (attempt is None or event.attempt_id == attempt):
                return event
        raise AssertionError("event stream ended")

    return await asyncio.wait_for(find(), wait_s)


@pytest.fixture
async def sim() -> AsyncIterator[FreeSwitchSimulator]:
    server = FreeSwitchSimulator(ScriptedCallee(), time_scale=TIME_SCALE)
    await server.start()
    yield server
    await server.stop()


def lab_pbx(sim: FreeSwitchSimulator, **kw: object) -> FreeSwitchPbx:
    # the simulator plays the lab dialplan: "amd" runs avmd, anything else parks
    return FreeSwitchPbx(settings_for(sim.port, answer_extension="park", amd_extension="amd", **kw))


async def collect_until_ended(
    pbx: FreeSwitchPbx, attempts: set[str], wait_s: float = 10.0
) -> list[CallEvent]:
    seen: list[CallEvent] = []

    async def run() -> None:
        open_ = set(attempts)
        async for event in pbx.events():
            seen.append(event)
            if isinstance(event, Failed | HungUp):
                open_.discard(event.attempt_id)
                if not open_:
                    return

    await asyncio.wait_for(run(), wait_s)
    return seen


class Recorder:
    """Collects every event of ``pbx`` in the background; ``wait`` finds one without consuming others."""

    def __init__(self, pbx: FreeSwitchPbx) -> None:
        self.events: list[CallEvent] = []
        self._task = asyncio.get_running_loop().create_task(self._collect(pbx))

    async def _collect(self, pbx: FreeSwitchPbx) -> None:
        async for event in pbx.events():
            self.events.append(event)

    def of(self, kind: type, attempt: str | None = None) -> list[CallEvent]:
        return [e for e in self.events if isinstance(e, kind) and attempt in (None, e.attempt_id)]

    async def wait(self, kind: type, attempt: str | None = None, wait_s: float = 3.0) -> CallEvent:
        async def poll() -> CallEvent:
            while True:
                found = self.of(kind, attempt)
                if found:
                    return found[0]
                await asyncio.sleep(0.005)

        return await asyncio.wait_for(poll(), wait_s)

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
