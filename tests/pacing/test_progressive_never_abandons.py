"""Progressive mode never abandons a call when agents behave, whatever order the PBX events come in.

The property drives the real Engine (on the fake ports of tests/runtime) with the real progressive
pacer: random interleavings of pacing ticks, ringing, answers, machine-detection verdicts, no
answer, busy, callers hanging up, agent hang-ups and dispositions, and agents logging in. Agents
behave: a ready agent stays ready until a call is pushed to them and takes every call pushed.
An answered person is given no time to wait for an agent (answer_to_agent_limit_s = 0), so the
property is that every person finds a ready agent the moment the verdict comes.
"""

from __future__ import annotations

import asyncio
import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dialer.domain.agent import AgentState
from dialer.domain.call import CallState
from dialer.pacing import UK_WINDOW_S, PacingSnapshot, make_pacer
from dialer.runtime.agents import AgentRegistry
from dialer.runtime.engine import Engine
from dialer.runtime.ports import AmdPolicy, CampaignPlan, Lead
from telephony.base import (
    AmdResult,
    Answered,
    AnsweredCall,
    Connected,
    ConnectToAgent,
    Failed,
    HungUp,
    Outcome,
    Ringing,
)
from tests.runtime.fakes import FakeGate, FakePbx, MemoryRecord

PLAN = CampaignPlan(
    campaign_id="c1",
    name="progressive",
    dial_string_template="PJSIP/{digits}@trunk",
    caller_id_number="0100000000",
    answer_to_agent_limit_s=0.0,  # no waiting: a person must find a ready agent at once
    wrap_up_limit_s=3600.0,  # agents dispose themselves (an action below)
    amd_policy=AmdPolicy.HANGUP,
)

ACTIONS = (
    "tick",
    "ringing",  # a dialing call rings
    "answer",  # a dialing call is answered; the machine-detection verdict is still to come
    "person",  # the verdict on an answered (or, via FastAGI first, a dialing) call: a person
    "machine",  # the verdict: a machine, hung up
    "caller_left",  # an answered call ends before any verdict
    "no_answer",
    "busy",
    "confirm",  # the PBX confirms that a customer sent to an agent joined the agent's bridge
    "hangup",  # a call the PBX confirmed with its agent ends: the agent goes to wrap-up
    "dispose",  # an agent in wrap-up qualifies the call and is ready again
    "login",  # one more agent logs in and is ready
)


# Answers and verdicts come more often than the rest, so that several calls are often answered at once.
WEIGHTED = (*ACTIONS, *("answer",) * 3, *("person",) * 4)


class Model:
    def __init__(self, agents: int) -> None:
        self.clock = itertools.count(1_000_000.0, 0.25)
        self.pbx = FakePbx()
        self.record = MemoryRecord([Lead(f"L{i}", "c1", f"+4420794601{i:02d}") for i in range(99)])
        self.agents = AgentRegistry(lambda: float(next(self.clock)))
        self.engine = Engine(
            self.pbx, self.record, FakeGate(), self.agents, clock=lambda: float(next(self.clock))
        )
        self.engine.add_campaign(PLAN, make_pacer("progressive", None, 0.01, UK_WINDOW_S))
        self.logged_in = 0
        self.sent: list[tuple[str, str]] = []  # (attempt, agent) sent to a bridge, not yet confirmed
        self.joined: list[str] = []  # attempts the PBX confirmed with their agent, not yet ended
        self.persons = 0
        for _ in range(agents):
            self.login()

    def login(self) -> None:
        agent_id = f"a{self.logged_in}"
        self.logged_in += 1
        self.agents.login(agent_id, ["c1"])
        self.agents.ready(agent_id)

    def calls_in(self, *states: CallState) -> list[str]:
        return sorted(a for a, c in self.engine.calls.items() if c.call.state in states)

    def now(self) -> float:
        return float(next(self.clock))

    async def apply(self, action: str, pick: int) -> None:
        engine, dialing = self.engine, (CallState.NEW, CallState.DIALING, CallState.RINGING)

        def choose(items: list[str]) -> str | None:
            return items[pick % len(items)] if items else None

        if action == "tick":
            await engine.tick()
        elif action == "login":
            self.login()
        elif action == "dispose":
            views = [v.agent_id for v in self.agents.view("c1") if v.state is AgentState.WRAP_UP]
            agent_id = choose(sorted(views))
            if agent_id is not None:
                attempt = engine._wrapups[agent_id][0]
                await engine.dispose(agent_id, attempt, "sale")
        elif action == "confirm":
            if self.sent:
                attempt, agent_id = self.sent.pop(pick % len(self.sent))
                await engine.handle(Connected(attempt, self.now(), agent_id=agent_id))
                self.joined.append(attempt)
        elif action == "hangup":
            # Only once the PBX confirmed the join: a customer leaving on the way to a behaving
            # agent (milliseconds) is not the pacer's doing.
            if self.joined:
                attempt = self.joined.pop(pick % len(self.joined))
                await engine.handle(HungUp(attempt, self.now(), cause=16))
        elif action in ("ringing", "answer", "no_answer", "busy"):
            attempt = choose(self.calls_in(*dialing))
            if attempt is None:
                return
            if action == "ringing":
                await engine.handle(Ringing(attempt, self.now()))
            elif action == "answer":
                await engine.handle(Answered(attempt, self.now()))
            else:
                outcome, cause = (Outcome.NO_ANSWER, 19) if action == "no_answer" else (Outcome.BUSY, 17)
                await engine.handle(Failed(attempt, self.now(), outcome=outcome, cause=cause))
        elif action in ("person", "machine"):
            attempt = choose(self.calls_in(CallState.ANSWERED, *dialing))
            if attempt is None:
                return
            amd = AmdResult.PERSON if action == "person" else AmdResult.MACHINE
            decision = await engine.on_answered(AnsweredCall(attempt, self.now(), amd=amd))
            if action == "machine":
                await engine.handle(HungUp(attempt, self.now(), cause=16))
                return
            self.persons += 1
            assert isinstance(decision, ConnectToAgent), (
                f"person on {attempt} abandoned in progressive mode: {decision!r}"
            )
            self.sent.append((attempt, decision.agent_id))
        elif action == "caller_left":  # before the verdict: dropped, not abandoned
            attempt = choose(self.calls_in(CallState.ANSWERED))
            if attempt is not None:
                await engine.handle(HungUp(attempt, self.now(), cause=16))

    async def finish(self) -> None:
        for view in self.agents.view("c1"):
            if view.state is AgentState.WRAP_UP:
                await self.engine.dispose(view.agent_id, self.engine._wrapups[view.agent_id][0], "sale")


async def _run(agents: int, steps: list[tuple[str, int]], tick_after_each: bool = True) -> Model:
    model = Model(agents)
    try:
        for action, pick in steps:
            await model.apply(action, pick)
            if tick_after_each:  # as the daemon does: a pacing tick on every relevant event
                await model.engine.tick()
    finally:
        await model.finish()
    return model


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    agents=st.integers(1, 3),
    steps=st.lists(st.tuples(st.sampled_from(WEIGHTED), st.integers(0, 7)), min_size=1, max_size=60),
    tick_after_each=st.booleans(),
)
def test_progressive_never_abandons_whatever_the_event_order(
    agents: int, steps: list[tuple[str, int]], tick_after_each: bool
) -> None:
    model = asyncio.run(_run(agents, steps, tick_after_each))
    assert model.engine.outcomes["abandoned"] == 0


def test_an_answer_awaiting_its_verdict_keeps_its_agent_from_being_dialed_for_again() -> None:
    # The sequence that abandoned a person before: one agent, a call answered (machine detection
    # running), a tick, then the verdict "person" on both calls.
    steps = [("tick", 0), ("answer", 0), ("tick", 0), ("person", 0), ("tick", 0), ("person", 0)]
    model = asyncio.run(_run(1, steps, tick_after_each=False))
    assert len(model.pbx.originates) == 1  # the second tick did not dial: the agent was spoken for
    assert model.persons == 1 and model.engine.outcomes["abandoned"] == 0


def test_progressive_counts_answered_calls_waiting_as_taking_a_ready_agent() -> None:
    pacer = make_pacer("progressive", None, 0.03, UK_WINDOW_S)
    assert pacer.lines_to_open(PacingSnapshot(1, [], [], persons_waiting=1), 10.0) == 0
    assert pacer.lines_to_open(PacingSnapshot(3, [], [5.0], persons_waiting=1), 10.0) == 1
    assert pacer.lines_to_open(PacingSnapshot(1, [], [], persons_waiting=2), 10.0) == 0


def test_ratio_dials_only_for_ready_agents_no_answered_call_is_waiting_for() -> None:
    pacer = make_pacer("ratio", {"ratio": 2.0}, 0.03, UK_WINDOW_S)
    assert pacer.lines_to_open(PacingSnapshot(3, [], [], persons_waiting=1), 10.0) == 4
    assert pacer.lines_to_open(PacingSnapshot(1, [], [], persons_waiting=1), 10.0) == 0
