"""Fixtures for the FreeSWITCH adapter tests: a scripted ESL server and an adapter wired to it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from telephony.base import AnswerDecision, AnsweredCall, CallEvent, HangupCall
from telephony.freeswitch.adapter import FreeSwitchPbx, FreeSwitchSettings
from tests.telephony.freeswitch.fake_esl import FakeEsl


@dataclass
class ScriptedRouter:
    """Answers every call with ``decision`` and remembers what it was asked."""

    decision: AnswerDecision = field(default_factory=HangupCall)
    calls: list[AnsweredCall] = field(default_factory=list)

    async def on_answered(self, call: AnsweredCall) -> AnswerDecision:
        self.calls.append(call)
        return self.decision


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
