"""The policies bench/pacing.py compares: ours (dialer.pacing, unchanged), two published-style
baselines replicated from their descriptions, and two bounds that see more than a dialer can."""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable

from bench.pacing_sim import GRACE_S, MACHINE_TO_AGENT, PERSON, Sim
from dialer.domain.pacing import fits
from dialer.pacing import (
    AbandonmentTracker,
    AgentActivity,
    PacingLimits,
    PacingSnapshot,
    PredictivePacer,
    PredictiveParams,
    RingOutcome,
    make_pacer,
)
from dialer.pacing.pacers import ProgressivePacer, RatioPacer

AnyPacer = ProgressivePacer | RatioPacer | PredictivePacer


class DialerPolicy:
    """Drives a dialer.pacing pacer exactly as the daemon would, with the simulator's clock.

    The predictive pacer keeps what it learned from day to day (new_session() each morning); the
    abandonment history goes through export() / restore() like it goes through the attempts table.
    """

    def __init__(
        self,
        name: str,
        build: Callable[[AbandonmentTracker, PacingLimits], AnyPacer],
        cap: float,
        window_s: float,
        max_lines: int,
    ) -> None:
        self.name = name
        self.build = build
        self.cap = cap
        self.window_s = window_s
        self.limits = PacingLimits(max_lines=max_lines)
        self.tracker = AbandonmentTracker("bench", cap, window_s)
        self.pacer: AnyPacer
        self.sim: Sim

    def start_day(self, sim: Sim) -> None:
        tracker = AbandonmentTracker("bench", self.cap, self.window_s)
        tracker.restore(self.tracker.export())
        self.tracker = tracker
        previous = getattr(self, "pacer", None)
        if isinstance(previous, PredictivePacer):
            # The daemon keeps what it learned overnight; calls and agents start afresh.
            previous.new_session(tracker)
        else:
            self.pacer = self.build(tracker, self.limits)
        self.sim = sim

    def on_launch(self, cid: int, t: float) -> None:
        self.pacer.observe_dial_launched(cid, t)

    def on_outcome(self, cid: int, t: float, outcome: RingOutcome) -> None:
        self.pacer.observe_ring_outcome(cid, t, outcome)

    def on_handled(self, cid: int, t: float, abandoned: bool) -> None:
        self.pacer.observe_person_handled(cid, t, abandoned)

    def on_agent(self, aid: int, t: float, activity: AgentActivity) -> None:
        self.pacer.observe_agent_state(aid, t, activity)

    def decide(self, now: float) -> int:
        sim = self.sim
        snapshot = PacingSnapshot(
            sim.ready_count, sim.busy.values(), sim.inflight.values(), len(sim.waiting_set)
        )
        return self.pacer.lines_to_open(snapshot, now)


def dialer_policy(
    name: str, mode: str, params: dict[str, object] | None, cap: float, window_s: float, max_lines: int
) -> DialerPolicy:
    def build(tracker: AbandonmentTracker, limits: PacingLimits) -> AnyPacer:
        return make_pacer(mode, params, cap, window_s, limits=limits, tracker=tracker)

    return DialerPolicy(name, build, cap, window_s, max_lines)


class _Visible:
    """What a dialer sees, for the replicated baselines."""

    def __init__(self, name: str, cap: float, max_lines: int) -> None:
        self.name = name
        self.cap = cap
        self.max_lines = max_lines
        self.sim: Sim

    def start_day(self, sim: Sim) -> None:
        self.sim = sim
        self.persons = 0
        self.abandoned = 0
        self.launched: dict[int, float] = {}
        self.state: dict[int, tuple[AgentActivity, float]] = {}

    def on_launch(self, cid: int, t: float) -> None:
        self.launched[cid] = t

    def on_outcome(self, cid: int, t: float, outcome: RingOutcome) -> None:
        self.launched.pop(cid, None)

    def on_handled(self, cid: int, t: float, abandoned: bool) -> None:
        self.persons += 1
        self.abandoned += abandoned

    def on_agent(self, aid: int, t: float, activity: AgentActivity) -> None:
        self.state[aid] = (activity, t)

    def room(self) -> int:
        return self.max_lines - len(self.sim.inflight)


class VicidialAdaptAverage(_Visible):
    """VICIdial's ADAPT_AVERAGE as described: a dial level adjusted every 15 s from 1 s samples.

    Calls placed = ceil(level x (ready + in-call agents)) - (ringing + waiting + in-call calls);
    level *= 1 + (avg ready - avg waiting) / avg agents, clamped to [1, max level 3.0]; halved
    when the day's drop rate exceeds the cap after 50 calls.
    """

    MAX_LEVEL = 3.0

    def start_day(self, sim: Sim) -> None:
        super().start_day(sim)
        self.level = 1.0
        self.next_sample = -math.inf
        self.samples: list[tuple[int, int, int]] = []

    def decide(self, now: float) -> int:
        sim = self.sim
        if now >= self.next_sample:
            self.next_sample = math.floor(now) + 1.0
            agents = sim.scenario.agents - sim.on_break
            self.samples.append((sim.ready_count, len(sim.waiting_set), agents))
            if len(self.samples) >= 15:
                ready = sum(s[0] for s in self.samples) / 15.0
                waiting = sum(s[1] for s in self.samples) / 15.0
                logged = max(1.0, sum(s[2] for s in self.samples) / 15.0)
                self.level *= 1.0 + (ready - waiting) / logged
                if self.persons >= 50 and self.abandoned / self.persons > self.cap:
                    self.level /= 2.0
                self.level = min(self.MAX_LEVEL, max(1.0, self.level))
                self.samples = []
        goal = math.ceil(self.level * (sim.ready_count + sim.talking) - 1e-9)
        active = len(sim.inflight) + len(sim.waiting_set) + sim.talking
        return max(0, min(goal - active, self.room()))


class OmniDialerPacer(_Visible):
    """OMniDialer's predictive pacer as described.

    lines = floor((free + expected freeing - ringing x P_hit) / P_hit x gamma), expected freeing =
    sum over busy agents of 1 - exp(-t_ring / expected remaining handle time), t_ring = mean ring
    time + AMD latency, P_hit an EWMA (alpha 0.1, floor 0.05); gamma goes from 1 down to 0.2 as the
    EWMA drop rate goes from half the cap to the cap; after 5 ticks at the cap it latches to
    progressive until the drop rate is below 0.8 x cap; progressive for the first 50 answered calls.
    Unspecified in the description, chosen here: drop-rate EWMA alpha 0.01 per person answered,
    remaining handle = max(mean talk - elapsed, 1) + mean wrap in talk, max(mean wrap - elapsed, 1) in wrap.
    """

    AMD_LATENCY_S = 3.0

    def start_day(self, sim: Sim) -> None:
        super().start_day(sim)
        self.p_hit = 0.2
        self.drop = 0.0
        self.ring_sum = 0.0
        self.rings = 0
        self.talk_sum = self.wrap_sum = 0.0
        self.talks = self.wraps = 0
        self.latched = False
        self.at_cap_ticks = 0
        self.next_tick = -math.inf

    def on_outcome(self, cid: int, t: float, outcome: RingOutcome) -> None:
        launched = self.launched.pop(cid, None)
        if launched is not None:
            self.ring_sum += t - launched
            self.rings += 1
        hit = 1.0 if outcome is RingOutcome.PERSON else 0.0
        self.p_hit = max(0.05, 0.9 * self.p_hit + 0.1 * hit)

    def on_handled(self, cid: int, t: float, abandoned: bool) -> None:
        super().on_handled(cid, t, abandoned)
        self.drop = 0.99 * self.drop + 0.01 * (1.0 if abandoned else 0.0)

    def on_agent(self, aid: int, t: float, activity: AgentActivity) -> None:
        previous = self.state.get(aid)
        if previous is not None:
            old, since = previous
            if old is AgentActivity.TALK:
                self.talk_sum += t - since
                self.talks += 1
            elif old is AgentActivity.WRAP:
                self.wrap_sum += t - since
                self.wraps += 1
        super().on_agent(aid, t, activity)

    def decide(self, now: float) -> int:
        sim = self.sim
        progressive = max(0, min(sim.ready_count - len(sim.inflight), self.room()))
        if now >= self.next_tick:  # latch bookkeeping on the 0.5 s ticks
            self.next_tick = math.floor(now * 2.0) / 2.0 + 0.5
            self.at_cap_ticks = self.at_cap_ticks + 1 if self.drop >= self.cap else 0
            if self.at_cap_ticks >= 5:
                self.latched = True
            if self.latched and self.drop < 0.8 * self.cap:
                self.latched = False
        if self.persons < 50 or self.latched or not self.talks or not self.wraps:
            return progressive
        half = self.cap / 2.0
        gamma = 1.0 if self.drop <= half else max(0.2, 1.0 - 0.8 * (self.drop - half) / half)
        t_ring = self.ring_sum / max(1, self.rings) + self.AMD_LATENCY_S
        mean_talk = self.talk_sum / self.talks
        mean_wrap = self.wrap_sum / self.wraps
        freeing = 0.0
        for busy in sim.busy.values():
            elapsed = now - busy.since
            if busy.activity is AgentActivity.TALK:
                remaining = max(mean_talk - elapsed, 1.0) + mean_wrap
            else:
                remaining = max(mean_wrap - elapsed, 1.0)
            freeing += 1.0 - math.exp(-t_ring / remaining)
        ringing = len(sim.inflight)
        lines = math.floor((sim.ready_count + freeing - ringing * self.p_hit) / self.p_hit * gamma)
        return max(0, min(lines, self.room()))


class OraclePacer(PredictivePacer):
    """Bound: our predictive pacer told each record's outcome and answer delay (not talk times).

    Same rule and margin controller; the person answers to come are known exactly (no variance),
    so the margin only covers the agents' side.
    """

    sim: Sim

    def predictive_lines(self, snapshot: PacingSnapshot, now: float, room: int) -> int:
        sim = self.sim
        local = now - sim.offset
        horizon = self.params.answer_horizon_s
        answers = float(snapshot.persons_waiting)
        for cid, launched in sim.inflight.items():
            outcome, delay, _, _ = sim.inflight_record[cid]
            if outcome in (PERSON, MACHINE_TO_AGENT) and launched - sim.offset + delay - local <= horizon:
                answers += 1.0
        free_mean, free_var = self.free_agents(snapshot, now)
        opened = 0
        while opened < room:
            outcome, delay, _, _ = sim.records.resolve(sim.next_record + opened, local)
            if outcome in (PERSON, MACHINE_TO_AGENT):
                if not fits(1, answers, 0.0, free_mean, free_var, 1.0, 0.0, self.margin):
                    break
                answers += 1.0
            opened += 1
        return opened


def oracle_policy(params: dict[str, object], cap: float, window_s: float, max_lines: int) -> DialerPolicy:
    def build(tracker: AbandonmentTracker, limits: PacingLimits) -> AnyPacer:
        return OraclePacer(tracker, limits, PredictiveParams(**params))  # type: ignore[arg-type]

    policy = DialerPolicy("oracle(answer-time bound)", build, cap, window_s, max_lines)
    original = policy.start_day

    def start_day(sim: Sim) -> None:
        original(sim)
        assert isinstance(policy.pacer, OraclePacer)
        policy.pacer.sim = sim

    policy.start_day = start_day  # type: ignore[method-assign]
    return policy


class FullInformation(_Visible):
    """Bound: knows every record's outcome, answer delay, talk and wrap-up time.

    Keeps the projected free time of every agent; dials the next record as soon as it is not a
    person, or as soon as a person would answer no earlier than 2 s before an agent is free for
    them. Breaks are seen when they happen, like everything else about agents.
    """

    def decide(self, now: float) -> int:
        sim = self.sim
        local = now - sim.offset
        avail: list[float] = []
        for a in range(sim.scenario.agents):
            state = sim.state[a]
            if state is AgentActivity.READY:
                avail.append(local)
            elif state is AgentActivity.TALK or state is AgentActivity.WRAP:
                avail.append(max(local, sim.free_at[a]))
        if not avail:
            return 0
        heapq.heapify(avail)
        persons: list[tuple[float, float]] = []
        for cid, launched in sim.inflight.items():
            outcome, delay, talk, wrap = sim.inflight_record[cid]
            if outcome in (PERSON, MACHINE_TO_AGENT):
                persons.append((launched - sim.offset + delay, talk + wrap))
        for cid in sim.waiting_set:
            talk, wrap = sim.call_handle[cid]
            persons.append((sim.answered_at[cid], talk + wrap))
        persons.sort()
        for answered, handle in persons:
            a = heapq.heappop(avail)
            heapq.heappush(avail, max(a, answered) + handle)
        room = self.room()
        opened = 0
        while opened < room:
            outcome, delay, talk, wrap = sim.records.resolve(sim.next_record + opened, local)
            if outcome in (PERSON, MACHINE_TO_AGENT):
                answered = local + delay
                if avail[0] > answered + GRACE_S - 1e-6:
                    break
                a = heapq.heappop(avail)
                heapq.heappush(avail, max(a, answered) + talk + wrap)
            opened += 1
        return opened
