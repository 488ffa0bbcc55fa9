"""Discrete-event simulation of an outbound campaign in virtual time, for bench/pacing.py.

One simulated day: agents logged in, a list of records dialed in order, every record with its
own outcome, answer delay, talk and wrap-up time drawn from the day's seed, so every policy
meets exactly the same people. A policy is told only what a dialer is told (launches, outcomes
when they happen, agent state changes) and asked how many lines to open on every event and
every 0.5 s of virtual time. The two bounds (oracle, full information) are given more, on
purpose, and are labelled as bounds.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from dialer.pacing import AgentActivity, BusyAgent, RingOutcome

DAY_S = 8 * 3600.0
WARMUP_S = 1800.0
TICK_S = 0.5
GRACE_S = 2.0
AMD_S = 3.0
CHUNK = 4096

PERSON, MACHINE, NO_ANSWER, FAILED, MACHINE_TO_AGENT = 0, 1, 2, 3, 4
REPORTED = {
    PERSON: RingOutcome.PERSON,
    MACHINE: RingOutcome.MACHINE,
    NO_ANSWER: RingOutcome.NO_ANSWER,
    FAILED: RingOutcome.FAILED,
    MACHINE_TO_AGENT: RingOutcome.PERSON,
}

# Event kinds, in the order ties are processed at the same instant: an agent freeing exactly when
# a waiting person's 2 s run out still takes the call ("waits up to 2.0 s").
EV_DIAL_END, EV_TALK_END, EV_WRAP_END, EV_BREAK_END, EV_ABANDON, EV_BREAK_START, EV_TICK = range(7)


def _lognormal_mean(rng: np.random.Generator, mean: float, sigma: float, n: int) -> np.ndarray:
    return rng.lognormal(math.log(mean) - sigma * sigma / 2.0, sigma, n)


@dataclass(frozen=True)
class Scenario:
    """What varies between the benchmark's scenarios."""

    name: str
    agents: int = 20
    max_lines: int = 50
    cap: float = 0.03
    window_s: float = 30 * 86400.0
    person_start: float = 0.20
    person_end: float = 0.20
    amd_errors: bool = False
    breaks: bool = False
    days: int = 20
    talk_scale: float = 1.0  # every talk time multiplied by this (OB-20's mix has a mean of 111 s)


class Records:
    """The day's record list, generated lazily in chunks that depend only on (seed, chunk)."""

    def __init__(self, seed: int, scenario: Scenario) -> None:
        self.seed = seed
        self.scenario = scenario
        self._chunks: list[tuple[list[float], ...]] = []

    def _chunk(self, c: int) -> tuple[list[float], ...]:
        while len(self._chunks) <= c:
            self._chunks.append(self._generate(len(self._chunks)))
        return self._chunks[c]

    def _generate(self, c: int) -> tuple[list[float], ...]:
        rng = np.random.default_rng([self.seed, c])
        n = CHUNK
        u = rng.random(n)
        delay = 2.0 + rng.lognormal(math.log(6.0), 0.6, n)
        bad = delay >= 22.0
        while bad.any():
            delay[bad] = 2.0 + rng.lognormal(math.log(6.0), 0.6, int(bad.sum()))
            bad = delay >= 22.0
        pickup = rng.uniform(12.0, 20.0, n)
        busy = rng.uniform(1.0, 5.0, n)
        refusal = rng.random(n) < 0.30
        talk = np.where(refusal, _lognormal_mean(rng, 20.0, 0.5, n), _lognormal_mean(rng, 150.0, 0.8, n))
        talk *= self.scenario.talk_scale
        wrap = _lognormal_mean(rng, 10.0, 0.5, n)
        amd = rng.random(n)
        machine_talk = _lognormal_mean(rng, 10.0, 0.5, n)
        return (
            u.tolist(),
            delay.tolist(),
            pickup.tolist(),
            busy.tolist(),
            talk.tolist(),
            wrap.tolist(),
            amd.tolist(),
            machine_talk.tolist(),
        )

    def person_probability(self, t: float) -> float:
        s = self.scenario
        return s.person_start + (s.person_end - s.person_start) * min(1.0, max(0.0, t / DAY_S))

    def resolve(self, i: int, t: float) -> tuple[int, float, float, float]:
        """(outcome as the dialer sees it, seconds to it, talk, wrap) of record i dialed at t."""
        u, delay, pickup, busy, talk, wrap, amd, machine_talk = self._chunk(i // CHUNK)
        j = i % CHUNK
        p = self.person_probability(t)
        x = u[j]
        if x < p:
            if self.scenario.amd_errors and amd[j] < 0.03:
                return MACHINE, delay[j], 0.0, 0.0  # a person taken for a machine: hung up, a lost contact
            return PERSON, delay[j], talk[j], wrap[j]
        y = (x - p) / (1.0 - p)
        if y < 0.25:
            if self.scenario.amd_errors and amd[j] < 0.05:
                return MACHINE_TO_AGENT, pickup[j] + AMD_S, machine_talk[j], wrap[j]
            return MACHINE, pickup[j] + AMD_S, 0.0, 0.0
        if y < 0.8125:
            return NO_ANSWER, 22.0, 0.0, 0.0
        return FAILED, busy[j], 0.0, 0.0


class Policy(Protocol):
    name: str

    def start_day(self, sim: Sim) -> None: ...

    def on_launch(self, cid: int, t: float) -> None: ...

    def on_outcome(self, cid: int, t: float, outcome: RingOutcome) -> None: ...

    def on_handled(self, cid: int, t: float, abandoned: bool) -> None: ...

    def on_agent(self, aid: int, t: float, activity: AgentActivity) -> None: ...

    def decide(self, now: float) -> int: ...


@dataclass
class DayStats:
    busy_s: float = 0.0
    talk_s: float = 0.0
    available_s: float = 0.0
    persons: int = 0
    abandoned: int = 0
    contacts: int = 0
    agent_wait_s: float = 0.0
    dials: int = 0
    decisions: int = 0
    extra: dict[str, float] = field(default_factory=dict)
    # Every person-answered call of the day, warm-up included (the law counts them all): when it
    # was handled (connected, or abandoned) on the policies' clock, and whether it was abandoned.
    handled: list[tuple[float, bool]] = field(default_factory=list)


class Sim:
    """One day of one policy on one record list."""

    def __init__(self, scenario: Scenario, seed: int, records: Records, offset: float = 0.0) -> None:
        self.scenario = scenario
        self.offset = offset  # policies see day_index * 86400 + t, so windows span days
        self.seed = seed
        self.records = records
        n = scenario.agents
        self.state = [AgentActivity.READY] * n
        self.since = [0.0] * n
        self.ready: deque[int] = deque(range(n))
        self.ready_count = n
        self.busy: dict[int, BusyAgent] = {}
        self.talking = 0
        self.inflight: dict[int, float] = {}
        self.inflight_record: dict[int, tuple[int, float, float, float]] = {}
        self.waiting: deque[int] = deque()
        self.waiting_set: set[int] = set()
        self.next_record = 0
        self.events: list[tuple[float, int, int, int, int]] = []
        self.seq = 0
        self.break_pending = [False] * n
        self.break_len = [0.0] * n
        self.on_break = 0
        self.stats = DayStats()
        self.persons_today = 0
        self.abandoned_today = 0
        self.now = 0.0
        self.call_handle: dict[int, tuple[float, float]] = {}
        self.agent_call: list[int] = [-1] * n
        self.free_at = [0.0] * n  # for the full-information bound only
        self.answered_at: dict[int, float] = {}
        self.assigned_wrap = [0.0] * n
        if scenario.breaks:
            rng = np.random.default_rng([seed, 999_999])
            for a in range(n):
                for start, length in ((7200.0, 900.0), (14400.0, 1800.0), (21600.0, 900.0)):
                    self._push(start + float(rng.uniform(-1800.0, 1800.0)), EV_BREAK_START, a, int(length))

    def _push(self, t: float, kind: int, a: int, b: int = 0) -> None:
        self.seq += 1
        heapq.heappush(self.events, (t, kind, self.seq, a, b))

    # -- scoring helpers --------------------------------------------------------------------

    @staticmethod
    def _overlap(a: float, b: float) -> float:
        lo = a if a > WARMUP_S else WARMUP_S
        hi = b if b < DAY_S else DAY_S
        return hi - lo if hi > lo else 0.0

    def run(self, policy: Policy) -> DayStats:
        self.policy = policy
        policy.start_day(self)
        for a in range(self.scenario.agents):
            policy.on_agent(a, self.offset, AgentActivity.READY)
        self._push(0.0, EV_TICK, 0)
        events = self.events
        heappop = heapq.heappop
        stats = self.stats
        while events:
            t, kind, _, a, b = heappop(events)
            if t >= DAY_S:
                break
            self.now = t
            if kind == EV_TICK:
                self._push(t + TICK_S, EV_TICK, 0)
            elif kind == EV_DIAL_END:
                self._dial_end(a, t)
            elif kind == EV_ABANDON:
                if a in self.waiting_set:
                    self.waiting_set.discard(a)
                    self.abandoned_today += 1
                    answered_at = t - GRACE_S
                    if answered_at >= WARMUP_S:
                        stats.abandoned += 1
                    stats.handled.append((t + self.offset, True))
                    policy.on_handled(a, t + self.offset, True)
            elif kind == EV_TALK_END:
                self._talk_end(a, t)
            elif kind == EV_WRAP_END:
                self._agent_free(a, t, from_wrap=True)
            elif kind == EV_BREAK_START:
                self._break_start(a, t, float(b))
            elif kind == EV_BREAK_END:
                self.on_break -= 1
                self._agent_free(a, t, from_wrap=False)
            self._decide(t)
        self._close_day()
        return stats

    def _decide(self, t: float) -> None:
        n = self.policy.decide(t + self.offset)
        self.stats.decisions += 1
        for _ in range(n):
            self._launch(t)

    def _launch(self, t: float) -> None:
        i = self.next_record
        self.next_record += 1
        rec = self.records.resolve(i, t)
        self.inflight[i] = t + self.offset
        self.inflight_record[i] = rec
        if t >= WARMUP_S:
            self.stats.dials += 1
        self._push(t + rec[1], EV_DIAL_END, i)
        self.policy.on_launch(i, t + self.offset)

    def _dial_end(self, cid: int, t: float) -> None:
        del self.inflight[cid]
        outcome, _, talk, wrap = self.inflight_record.pop(cid)
        policy = self.policy
        policy.on_outcome(cid, t + self.offset, REPORTED[outcome])
        if outcome != PERSON and outcome != MACHINE_TO_AGENT:
            return
        self.persons_today += 1
        if t >= WARMUP_S:
            self.stats.persons += 1
        self.call_handle[cid] = (talk, wrap)
        while self.ready:
            a = self.ready.popleft()
            if self.state[a] is AgentActivity.READY:
                self._connect(cid, a, t, agent_waited=t - self.since[a])
                return
        self.waiting.append(cid)
        self.waiting_set.add(cid)
        self.answered_at[cid] = t
        self._push(t + GRACE_S, EV_ABANDON, cid)

    def _connect(self, cid: int, a: int, t: float, agent_waited: float) -> None:
        talk, wrap = self.call_handle.pop(cid)
        if self.state[a] is AgentActivity.READY:
            self.ready_count -= 1
        self.state[a] = AgentActivity.TALK
        self.since[a] = t
        self.busy[a] = BusyAgent(AgentActivity.TALK, t + self.offset)
        self.talking += 1
        self.free_at[a] = t + talk + wrap
        self.assigned_wrap[a] = wrap
        self.agent_call[a] = cid
        stats = self.stats
        if t >= WARMUP_S:
            stats.contacts += 1
            stats.agent_wait_s += max(0.0, agent_waited)
        self._push(t + talk, EV_TALK_END, a)
        stats.handled.append((t + self.offset, False))
        self.policy.on_handled(cid, t + self.offset, False)
        self.policy.on_agent(a, t + self.offset, AgentActivity.TALK)

    def _talk_end(self, a: int, t: float) -> None:
        span = self._overlap(self.since[a], t)
        self.stats.busy_s += span
        self.stats.talk_s += span
        self.talking -= 1
        self.state[a] = AgentActivity.WRAP
        self.since[a] = t
        self.busy[a] = BusyAgent(AgentActivity.WRAP, t + self.offset)
        self._push(t + self.assigned_wrap[a], EV_WRAP_END, a)
        self.policy.on_agent(a, t + self.offset, AgentActivity.WRAP)

    def _agent_free(self, a: int, t: float, from_wrap: bool) -> None:
        if from_wrap:
            self.stats.busy_s += self._overlap(self.since[a], t)
            del self.busy[a]
            if self.break_pending[a]:
                self.break_pending[a] = False
                self._go_on_break(a, t, self.break_len[a])
                return
        else:
            self.stats.available_s -= self._overlap(self.since[a], t)
        while self.waiting:
            cid = self.waiting.popleft()
            if cid in self.waiting_set:
                self.waiting_set.discard(cid)
                self.state[a] = AgentActivity.READY  # momentarily, so _connect books it like a ready agent
                self.ready_count += 1
                self._connect(cid, a, t, agent_waited=0.0)
                return
        self.state[a] = AgentActivity.READY
        self.since[a] = t
        self.ready.append(a)
        self.ready_count += 1
        self.policy.on_agent(a, t + self.offset, AgentActivity.READY)

    def _break_start(self, a: int, t: float, length: float) -> None:
        if self.state[a] is AgentActivity.READY:
            self.ready_count -= 1
            self._go_on_break(a, t, length)
        else:
            self.break_pending[a] = True
            self.break_len[a] = length

    def _go_on_break(self, a: int, t: float, length: float) -> None:
        self.state[a] = AgentActivity.AWAY
        self.since[a] = t
        self.on_break += 1
        self._push(t + length, EV_BREAK_END, a)
        self.policy.on_agent(a, t + self.offset, AgentActivity.AWAY)

    def _close_day(self) -> None:
        stats = self.stats
        for a in range(self.scenario.agents):
            if self.state[a] is AgentActivity.TALK:
                span = self._overlap(self.since[a], DAY_S)
                stats.busy_s += span
                stats.talk_s += span
            elif self.state[a] is AgentActivity.WRAP:
                stats.busy_s += self._overlap(self.since[a], DAY_S)
            elif self.state[a] is AgentActivity.AWAY:
                stats.available_s -= self._overlap(self.since[a], DAY_S)
        stats.available_s += self.scenario.agents * (DAY_S - WARMUP_S)


def worst_window(days: list[DayStats], window_s: float) -> tuple[float, int, int]:
    """The highest abandonment rate of any rolling window (t - window_s, t] ending within the days
    run (day i from i * 86,400 s on, as run_days runs them).

    The rate only changes when a call is handled or leaves the window, so it is evaluated just
    after each of those moments. Windows ending after the last day are left out: they would hold
    the calls of the next day, which is not run. Returns (rate, person-answered, abandoned) of the
    worst window; ties go to the window with the most calls.
    """
    events = sorted(e for d in days for e in d.handled)
    if not events:
        return 0.0, 0, 0
    times = np.array([t for t, _ in events])
    lost = np.concatenate(([0], np.cumsum([1 if a else 0 for _, a in events])))
    moments = np.concatenate((times, times + window_s))
    moments = moments[moments < len(days) * 86400.0]
    last = np.searchsorted(times, moments, side="right")  # calls handled at or before the moment
    first = np.searchsorted(times, moments - window_s, side="right")  # of which these have left
    answered = last - first
    abandoned = lost[last] - lost[first]
    rates = np.where(answered > 0, abandoned / np.maximum(answered, 1), 0.0)
    worst = int(np.lexsort((answered, rates))[-1])
    return float(rates[worst]), int(answered[worst]), int(abandoned[worst])


def run_days(
    scenario: Scenario,
    seeds: list[int],
    make_policy: Callable[[], Policy],
    per_day: Callable[[int, Policy], None] | None = None,
) -> list[DayStats]:
    out = []
    policy = make_policy()
    for day, seed in enumerate(seeds):
        sim = Sim(scenario, seed, Records(seed, scenario), offset=day * 86400.0)
        out.append(sim.run(policy))
        if per_day is not None:
            per_day(seed, policy)
    return out
