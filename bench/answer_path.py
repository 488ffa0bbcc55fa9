"""Answer to agent with agents free: p50 / p99 on the Asterisk simulator over real TCP (AMI + FastAGI).

The delay is the time from the PBX's answer (the adapter's ``Answered`` event, read off AMI) to the
PBX's confirmation that the customer joined the agent's bridge (``Connected``: Asterisk's
``ConfbridgeJoin``), both stamped by the adapter when the AMI message arrives.  It is measured in
real time: the simulator's ``time_scale`` only shortens ringing, talk and wrap-up, the answer path
itself (FastAGI session, GET VARIABLE, the decision, SET VARIABLE, EXEC ConfBridge, the AMI events
back) has no simulated wait in it.  The simulator runs in the same process and event loop as the
dialer, so both share one core.  Three runs on the same calls (same seeded ring and talk times);
bare and dialer alternate in rounds (``--rounds``) so that the machine's load changes hit both alike:

- bare (baseline): the same simulator and AsteriskPbx, whose FastAGI ``answered`` handler asks a
  router that returns ``ConnectToAgent`` at once for an agent popped from a free list (no engine,
  no registry, no store): the least round trip the PBX and the wire allow;
- dialer: the real Engine (AnswerRouter), AgentRegistry, a progressive pacer (one line per free
  agent, so nobody is abandoned), the in-memory record and gate of tests/runtime/fakes.py;
- stalled_store: the same dialer with a record whose every write (claim, open, event, close,
  dispose, release) and a gate whose record_attempt / record_outcome stall ``--stall-s`` (3 s).
  Every write stalls, the ones before the originate too, so the engine dials at most one call per
  2 x stall: this run is kept to a few calls (``--stalled-calls``).  Besides the PBX-side delay it
  prints the engine-side one (``engine.connect_delays``: when the engine learnt of the join) and the
  agents still RESERVED / ON_CALL for calls the PBX no longer has, when the dialing stopped and at
  the end (after the engine's drain).

Every callee is a person who answers after 0.5 - 1.5 PBX seconds and hangs up 4 - 8 PBX seconds
later; agents (20 by default, logged in through ``pbx.login_agent`` into their bridges) dispose at
once. Targets: p99 < 200 ms and p99 < 2 x the bare p99, in the dialer run and the stalled run; every
call exactly one outcome; no agent left RESERVED or ON_CALL for a call that is gone at the end.

    .venv/bin/python bench/answer_path.py [--quick] [--calls N] [--agents N] [--time-scale X]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import math
import random
import socket
import sys
import time
from collections import Counter, deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, cast

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dialer.domain.agent import AgentState
from dialer.pacing.limits import PacingLimits
from dialer.pacing.pacers import ProgressivePacer
from dialer.pacing.tracker import AbandonmentTracker
from dialer.runtime.agents import AgentRegistry
from dialer.runtime.engine import Engine
from dialer.runtime.ports import AttemptResult, CampaignPlan, GateVerdict, Lead
from telephony.asterisk.adapter import AsteriskPbx
from telephony.asterisk.settings import AsteriskSettings
from telephony.base import (
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
    Pbx,
)
from telephony.sim.asterisk import AsteriskSimulator
from telephony.sim.model import CalleeKind, CalleePlan, WithAgentPhones
from tests.runtime.fakes import FakeGate, MemoryRecord

CAMPAIGN = "bench"
DIAL = "PJSIP/{digits}@trunk"
P99_LIMIT_MS = 200.0
RATIO_LIMIT = 2.0
SECRET = "bench"


# -- the calls ---------------------------------------------------------------------------


@dataclass
class PersonsAnswer:
    """Every callee a person: answers after ``ring`` PBX seconds, hangs up ``talk`` later (seeded)."""

    seed: int = 1
    ring: tuple[float, float] = (0.5, 1.5)
    talk: tuple[float, float] = (4.0, 8.0)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def plan(self, number: str) -> CalleePlan:
        return CalleePlan(CalleeKind.PERSON, self._rng.uniform(*self.ring), self._rng.uniform(*self.talk))


def numbers(calls: int) -> list[str]:
    return [f"+3361{i:07d}" for i in range(calls)]


def agent_ids(agents: int) -> list[str]:
    return [str(1001 + i) for i in range(agents)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def start_pbx(time_scale: float, seed: int) -> tuple[AsteriskSimulator, AsteriskPbx]:
    """The simulator (SIP trunk, shipped dialplan) and an AsteriskPbx on it; the adapter not started."""
    agi = _free_port()
    sim = AsteriskSimulator(
        WithAgentPhones(PersonsAnswer(seed)),
        shape="sip",
        time_scale=time_scale,
        secret=SECRET,
        fastagi_port=agi,
    )
    await sim.start()
    pbx = AsteriskPbx(AsteriskSettings(port=sim.port, secret=SECRET, fastagi_port=agi, name="bench"))
    return sim, pbx


async def agents_in_bridges(sim: AsteriskSimulator, ids: list[str], within_s: float = 15.0) -> None:
    """Wait until every agent's phone leg sits in its ``agent_<id>`` bridge."""
    wanted = {f"agent_{a}" for a in ids}
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        seated = {ch.bridge.name for ch in sim.live_channels() if ch.bridge is not None}
        if wanted <= seated:
            return
        await asyncio.sleep(0.02)
    raise RuntimeError(f"agent legs not in their bridges after {within_s} s: {sorted(wanted - seated)}")


def live_customers(sim: AsteriskSimulator) -> set[str]:
    """Uniqueids (= attempt ids) of the customer channels still up on the PBX."""
    return {ch.uniqueid for ch in sim.live_channels() if not ch.uniqueid.startswith("agent-")}


class Tap:
    """The adapter as the engine sees it, noting every event's PBX time on the way."""

    def __init__(self, pbx: AsteriskPbx) -> None:
        self._pbx = pbx
        self.answered: dict[str, float] = {}
        self.joined: dict[str, float] = {}
        self.finals: Counter[str] = Counter()  # attempt -> Failed / HungUp events seen
        self.connect_failed: Counter[str] = Counter()
        self.ended = asyncio.Event()  # set on every final event

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pbx, name)

    def note(self, event: CallEvent) -> None:
        if isinstance(event, Answered):
            self.answered.setdefault(event.attempt_id, event.at)
        elif isinstance(event, Connected):
            self.joined.setdefault(event.attempt_id, event.at)
        elif isinstance(event, ConnectFailed):
            self.connect_failed[event.attempt_id] += 1
        elif isinstance(event, Failed | HungUp):
            self.finals[event.attempt_id] += 1
            self.ended.set()

    async def events(self) -> AsyncIterator[CallEvent]:
        async for event in self._pbx.events():
            self.note(event)
            yield event

    def delays_ms(self, attempts: list[str]) -> list[float]:
        return sorted(
            (self.joined[a] - self.answered[a]) * 1000.0
            for a in attempts
            if a in self.joined and a in self.answered
        )


@dataclass
class RunResult:
    mode: str
    attempts: int  # calls placed
    delays_ms: list[float]  # sorted, one per connected call
    one_outcome_each: bool
    outcomes: dict[str, int]
    agents_stuck: int  # RESERVED / ON_CALL for a call the PBX no longer has, at the end
    seconds: float
    errors: dict[str, int] = field(default_factory=dict)
    extra: dict[str, float] = field(default_factory=dict)
    engine_delays_ms: list[float] = field(default_factory=list)  # engine.connect_delays, sorted

    @property
    def calls(self) -> int:
        return len(self.delays_ms)

    def p(self, q: float) -> float:
        return percentile(self.delays_ms, q)

    def merge(self, other: RunResult) -> RunResult:
        """Two rounds of the same mode as one run (delays pooled, counts added, worst stale kept)."""
        return RunResult(
            mode=self.mode,
            attempts=self.attempts + other.attempts,
            delays_ms=sorted(self.delays_ms + other.delays_ms),
            one_outcome_each=self.one_outcome_each and other.one_outcome_each,
            outcomes=dict(Counter(self.outcomes) + Counter(other.outcomes)),
            agents_stuck=self.agents_stuck + other.agents_stuck,
            seconds=self.seconds + other.seconds,
            errors=dict(Counter(self.errors) + Counter(other.errors)),
            extra={k: max(v, other.extra.get(k, v)) for k, v in self.extra.items()},
            engine_delays_ms=sorted(self.engine_delays_ms + other.engine_delays_ms),
        )


def percentile(ordered: list[float], q: float) -> float:
    """Nearest rank: the smallest value with at least q of the values at or below it."""
    if not ordered:
        return math.nan
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


# -- bare: the least the PBX and the wire allow -------------------------------------------------


class BareRouter:
    """ConnectToAgent at once for a free agent popped from a list: no engine, registry nor store."""

    def __init__(self, ids: list[str]) -> None:
        self.free = deque(ids)
        self.holding: dict[str, str] = {}  # attempt -> agent

    async def on_answered(self, call: AnsweredCall) -> AnswerDecision:
        if not self.free:
            return HangupCall()
        agent = self.free.popleft()
        self.holding[call.attempt_id] = agent
        return ConnectToAgent(agent)

    async def on_connect_failed(self, call: AnsweredCall, agent_id: str, reason: str) -> AnswerDecision:
        return HangupCall()

    def ended(self, attempt: str) -> None:
        agent = self.holding.pop(attempt, None)
        if agent is not None:
            self.free.append(agent)


async def run_bare(calls: int, agents: int, time_scale: float, seed: int = 1) -> RunResult:
    started = time.monotonic()
    sim, pbx = await start_pbx(time_scale, seed)
    tap = Tap(pbx)
    ids = agent_ids(agents)
    router = BareRouter(ids)
    pbx.set_answer_router(router)
    lines = asyncio.Semaphore(agents)
    placed: list[str] = []

    async def pump() -> None:
        async for event in tap.events():
            if isinstance(event, Failed | HungUp) and event.attempt_id.startswith("bare-"):
                router.ended(event.attempt_id)
                if tap.finals[event.attempt_id] == 1:
                    lines.release()

    pumping = asyncio.create_task(pump())
    try:
        await pbx.start()
        for agent in ids:
            await pbx.login_agent(agent, f"PJSIP/{agent}@agents")
        await agents_in_bridges(sim, ids)
        for i, number in enumerate(numbers(calls)):
            await lines.acquire()
            attempt = f"bare-{i + 1}"
            placed.append(attempt)
            await pbx.originate(
                OriginateRequest(
                    attempt_id=attempt,
                    number=number,
                    dial_string=DIAL.format(digits=number.lstrip("+")),
                    caller_id_number="0100000000",
                    caller_id_name="Bench",
                    ring_timeout_s=25.0,
                    campaign_id=CAMPAIGN,
                )
            )
        deadline = time.monotonic() + 30.0
        while any(tap.finals[a] == 0 for a in placed) and time.monotonic() < deadline:
            tap.ended.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(tap.ended.wait(), 0.5)
    finally:
        await pbx.stop()
        pumping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pumping
        await sim.stop()
    kinds = Counter("connected" if a in tap.joined else "not_connected" for a in placed)
    return RunResult(
        mode="bare",
        attempts=len(placed),
        delays_ms=tap.delays_ms(placed),
        one_outcome_each=all(tap.finals[a] == 1 for a in placed),
        outcomes=dict(kinds),
        agents_stuck=agents - len(router.free),
        seconds=time.monotonic() - started,
        errors={"connect_failed": sum(tap.connect_failed.values())} if tap.connect_failed else {},
    )


# -- the dialer, with a store and a gate that may stall -------------------------------------------


@dataclass
class StalledRecord(MemoryRecord):
    """MemoryRecord whose every write waits ``stall_s`` first (a database that hangs)."""

    stall_s: float = 0.0

    async def _stall(self) -> None:
        if self.stall_s > 0:
            await asyncio.sleep(self.stall_s)

    async def claim_leads(self, campaign_id: str, limit: int, now: datetime) -> list[Lead]:
        await self._stall()
        return await super().claim_leads(campaign_id, limit, now)

    async def release_lead(self, lead: Lead, verdict: GateVerdict, now: datetime) -> None:
        await self._stall()
        await super().release_lead(lead, verdict, now)

    async def open_attempt(self, lead: Lead, now: datetime) -> str:
        await self._stall()
        return await super().open_attempt(lead, now)

    async def attempt_event(self, attempt_id: str, kind: str, at: datetime) -> None:
        await self._stall()
        await super().attempt_event(attempt_id, kind, at)

    async def close_attempt(self, attempt_id: str, result: AttemptResult) -> bool:
        await self._stall()
        return await super().close_attempt(attempt_id, result)

    async def dispose(self, attempt_id: str, agent_id: str, code: str, now: datetime, details: Any) -> Lead:
        await self._stall()
        return await super().dispose(attempt_id, agent_id, code, now, details)


@dataclass
class StalledGate(FakeGate):
    """FakeGate whose writes (record_attempt, record_outcome) wait ``stall_s`` first."""

    stall_s: float = 0.0

    async def record_attempt(self, lead: Lead, at: datetime) -> None:
        if self.stall_s > 0:
            await asyncio.sleep(self.stall_s)
        await super().record_attempt(lead, at)

    async def record_outcome(self, lead: Lead, kind: str, at: datetime) -> None:
        if self.stall_s > 0:
            await asyncio.sleep(self.stall_s)
        await super().record_outcome(lead, kind, at)


def stale_agents(registry: AgentRegistry, engine: Engine, sim: AsteriskSimulator) -> set[str]:
    """Agents RESERVED or ON_CALL whose call the PBX no longer has."""
    live = live_customers(sim)
    held = {c.agent_id: a for a, c in engine.calls.items() if c.agent_id is not None}
    return {
        view.agent_id
        for view in registry.view()
        if view.state in (AgentState.RESERVED, AgentState.ON_CALL) and held.get(view.agent_id) not in live
    }


async def run_dialer(
    calls: int,
    agents: int,
    time_scale: float,
    stall_s: float = 0.0,
    seed: int = 1,
    drain_timeout_s: float = 120.0,
) -> RunResult:
    started = time.monotonic()
    sim, pbx = await start_pbx(time_scale, seed)
    tap = Tap(pbx)
    ids = agent_ids(agents)
    leads = [Lead(f"lead-{i + 1}", CAMPAIGN, n) for i, n in enumerate(numbers(calls))]
    record = StalledRecord(leads=list(leads), stall_s=stall_s)
    gate = StalledGate(stall_s=stall_s)
    registry = AgentRegistry(clock=time.time)
    engine = Engine(cast(Pbx, tap), record, gate, registry, tick_s=0.05)
    plan = CampaignPlan(
        campaign_id=CAMPAIGN,
        name=CAMPAIGN,
        dial_string_template=DIAL,
        caller_id_number="0100000000",
        caller_id_name="Bench",
        ring_timeout_s=25.0,
        answer_to_agent_limit_s=2.0,
        wrap_up_limit_s=60.0,
        max_lines=agents,
    )
    engine.add_campaign(
        plan,
        ProgressivePacer(AbandonmentTracker(CAMPAIGN, 0.03, 86400.0), PacingLimits(max_lines=agents)),
    )
    last_call: dict[str, str] = {}
    disposing: set[asyncio.Task[None]] = set()
    engine.connected_listeners.append(lambda attempt, agent: last_call.__setitem__(agent, attempt))

    def dispose_at_once(agent: str, before: AgentState, after: AgentState, since: float, now: float) -> None:
        if after is AgentState.WRAP_UP and agent in last_call:
            task = asyncio.get_running_loop().create_task(engine.dispose(agent, last_call[agent], "sale"))
            disposing.add(task)
            task.add_done_callback(disposing.discard)

    registry.listeners.append(dispose_at_once)
    stop = asyncio.Event()
    extra: dict[str, float] = {}
    try:
        await pbx.start()
        for agent in ids:
            leg = await pbx.login_agent(agent, f"PJSIP/{agent}@agents")
            registry.login(agent, [CAMPAIGN], leg_id=leg)
        await agents_in_bridges(sim, ids)
        for agent in ids:
            registry.ready(agent)
        running = asyncio.create_task(engine.run(stop, drain_timeout_s=drain_timeout_s))
        # Until every lead has its outcome (or was refused) and no call of ours is up on the PBX.
        limit = time.monotonic() + 60.0 + calls * (1.0 + 3.0 * stall_s)
        stale_max = 0
        stale_since: dict[str, float] = {}  # agent -> first seen held for a call the PBX no longer has
        stale_longest = 0.0
        while time.monotonic() < limit and not running.done():
            stale = stale_agents(registry, engine, sim)
            stale_max = max(stale_max, len(stale))
            now = time.monotonic()
            stale_since = {a: stale_since.get(a, now) for a in stale}
            stale_longest = max([stale_longest, *(now - t for t in stale_since.values())])
            done = sum(engine.outcomes.values()) + len(record.released)
            if done >= calls and not live_customers(sim):
                break
            await asyncio.sleep(0.05)
        extra["agents_stale_max"] = stale_max
        extra["agents_stale_longest_s"] = stale_longest
        extra["agents_stale_at_stop"] = len(stale_agents(registry, engine, sim))
        stop.set()
        await running
        if disposing:
            await asyncio.wait(set(disposing), timeout=drain_timeout_s)
        if engine._recording:  # writes queued after answer decisions: let them land before counting
            await asyncio.wait(set(engine._recording), timeout=drain_timeout_s)
        stuck = len(stale_agents(registry, engine, sim))
    finally:
        stop.set()
        await pbx.stop()
        await sim.stop()
    attempts = list(record.attempts)
    closes = Counter(line.split()[1] for line in record.log if line.startswith("close "))
    one_each = (
        len(attempts) == calls
        and all(record.attempts[a]["result"] is not None and closes[a] == 1 for a in attempts)
        and sum(engine.outcomes.values()) == len(attempts)
    )
    extra["not_dialed"] = len(record.leads)
    return RunResult(
        mode="dialer" if stall_s <= 0 else "stalled_store",
        attempts=len(attempts),
        delays_ms=tap.delays_ms(attempts),
        one_outcome_each=one_each,
        outcomes=dict(engine.outcomes),
        agents_stuck=stuck,
        seconds=time.monotonic() - started,
        errors=dict(engine.errors) | dict(registry.refused),
        extra=extra,
        engine_delays_ms=sorted(d * 1000.0 for d in engine.connect_delays),
    )


# -- report -------------------------------------------------------------------------------------


def report(bare: RunResult, runs: list[RunResult], stall_s: float) -> bool:
    """Print the table, the checks and the RESULT lines; True when every target is met."""
    bare_p50, bare_p99 = bare.p(0.5), bare.p(0.99)
    print(
        f"{'run':<15}{'placed':>7}{'connected':>10}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}"
        f"{'p99/bare':>10}{'secs':>7}  outcomes"
    )
    for r in (bare, *runs):
        ratio = r.p(0.99) / bare_p99 if bare_p99 > 0 else math.nan
        top = r.delays_ms[-1] if r.delays_ms else math.nan
        print(
            f"{r.mode:<15}{r.attempts:>7}{r.calls:>10}{r.p(0.5):>9.1f}{r.p(0.99):>9.1f}{top:>9.1f}"
            f"{ratio:>10.2f}{r.seconds:>7.1f}  {r.outcomes}"
        )
    ok = bare.one_outcome_each and bare.calls == bare.attempts
    for r in runs:
        p99 = r.p(0.99)
        ratio = p99 / bare_p99 if bare_p99 > 0 else math.nan
        met = p99 < P99_LIMIT_MS and ratio < RATIO_LIMIT
        fine = r.one_outcome_each and r.agents_stuck == 0 and r.calls == r.attempts
        ok = ok and met and fine
        print(
            f"{r.mode}: p99 {p99:.1f} ms (< {P99_LIMIT_MS:.0f} ms and < {RATIO_LIMIT:g} x bare "
            f"{bare_p99:.1f} ms): {'met' if met else 'NOT met'}; one outcome per call: "
            f"{'yes' if r.one_outcome_each else 'NO'}; every call connected: "
            f"{'yes' if r.calls == r.attempts else 'NO'}; agents stuck at the end: {r.agents_stuck}"
        )
        print(
            f"  engine-side answer-to-agent (when the engine handled Connected): "
            f"p50 {percentile(r.engine_delays_ms, 0.5):.1f} ms, "
            f"p99 {percentile(r.engine_delays_ms, 0.99):.1f} ms; "
            f"agents RESERVED/ON_CALL for calls gone from the PBX: at most {r.extra['agents_stale_max']:.0f} "
            f"at once during the run (the longest {r.extra['agents_stale_longest_s']:.2f} s), "
            f"{r.extra['agents_stale_at_stop']:.0f} when dialing stopped"
        )
        if r.errors:
            print(f"  engine errors / refused agent transitions: {r.errors}")
    if bare.errors:
        print(f"bare errors: {bare.errors}")
    print(
        f"RESULT bench=answer_path mode=bare calls={bare.calls} p50_ms={bare_p50:.1f} p99_ms={bare_p99:.1f}"
    )
    for r in runs:
        ratio = r.p(0.99) / bare_p99 if bare_p99 > 0 else math.nan
        line = (
            f"RESULT bench=answer_path mode={r.mode} calls={r.calls} p50_ms={r.p(0.5):.1f} "
            f"p99_ms={r.p(0.99):.1f} bare_p50_ms={bare_p50:.1f} bare_p99_ms={bare_p99:.1f} "
            f"ratio_p99={ratio:.2f} engine_p99_ms={percentile(r.engine_delays_ms, 0.99):.1f} "
            f"one_outcome={int(r.one_outcome_each)} agents_stuck={r.agents_stuck}"
        )
        if r.mode == "stalled_store":
            line += (
                f" stall_s={stall_s:g} agents_stale_max={r.extra['agents_stale_max']:.0f}"
                f" agents_stale_longest_s={r.extra['agents_stale_longest_s']:.1f}"
                f" agents_stale_at_stop={r.extra['agents_stale_at_stop']:.0f}"
            )
        print(line)
    print(f"targets: {'met' if ok else 'NOT met'}")
    return ok


async def run_all(
    calls: int, agents: int, time_scale: float, stall_s: float, stalled_calls: int, rounds: int
) -> tuple[RunResult, list[RunResult]]:
    """Bare and dialer in alternating rounds (the machine's load changes hit both alike), then stalled."""
    bare: RunResult | None = None
    dialer: RunResult | None = None
    for r in range(rounds):
        n = calls // rounds + (1 if r < calls % rounds else 0)
        order = ("bare", "dialer") if r % 2 == 0 else ("dialer", "bare")
        for mode in order:
            if mode == "bare":
                got = await run_bare(n, agents, time_scale, seed=r + 1)
                bare = got if bare is None else bare.merge(got)
            else:
                got = await run_dialer(n, agents, time_scale, seed=r + 1)
                dialer = got if dialer is None else dialer.merge(got)
    assert bare is not None and dialer is not None
    stalled = await run_dialer(stalled_calls, agents, time_scale, stall_s=stall_s)
    return bare, [dialer, stalled]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="about 200 calls per run (about a minute)")
    ap.add_argument(
        "--calls", type=int, default=None, help="calls in the bare and dialer runs (default 1000)"
    )
    ap.add_argument("--agents", type=int, default=20)
    ap.add_argument("--time-scale", type=float, default=10.0, help="PBX seconds per real second")
    ap.add_argument("--stall-s", type=float, default=3.0, help="stall of every write in the stalled run")
    ap.add_argument("--stalled-calls", type=int, default=None, help="calls in the stalled run (5; full 20)")
    ap.add_argument("--rounds", type=int, default=None, help="alternating bare / dialer rounds (2; full 4)")
    args = ap.parse_args(argv)
    calls = args.calls or (200 if args.quick else 1000)
    stalled_calls = args.stalled_calls or (5 if args.quick else 20)
    rounds = max(1, min(calls, args.rounds or (2 if args.quick else 4)))
    logging.basicConfig(level=logging.ERROR)
    print(
        f"answer_path: {calls} calls in {rounds} alternating bare / dialer rounds, {args.agents} agents, "
        f"simulator x{args.time_scale:g}; stalled run: "
        f"{stalled_calls} calls, every write {args.stall_s:g} s; delays in real time"
    )
    bare, runs = asyncio.run(
        run_all(calls, args.agents, args.time_scale, args.stall_s, stalled_calls, rounds)
    )
    return 0 if report(bare, runs, args.stall_s) else 1


if __name__ == "__main__":
    raise SystemExit(main())
