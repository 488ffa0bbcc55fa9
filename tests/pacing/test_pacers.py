"""Pacers: modes, limits, warm-up, the fallback to progressive when the budget is gone."""

import math
import random

import pytest

from dialer.pacing import (
    UK_WINDOW_S,
    US_WINDOW_S,
    AbandonmentTracker,
    AgentActivity,
    BusyAgent,
    LimitsError,
    LineGate,
    PacingError,
    PacingLimits,
    PacingSnapshot,
    PredictivePacer,
    RingOutcome,
    make_pacer,
)


def _teach(pacer: PredictivePacer, seed: int = 3) -> float:
    """Feed OB-20-like outcomes and handle times through the observe_* calls; returns the clock."""
    rng = random.Random(seed)
    t = 0.0
    for i in range(1500):
        pacer.observe_dial_launched(i, t)
        u = rng.random()
        if u < 0.2:
            delay = 2.0 + min(19.0, rng.lognormvariate(math.log(6.0), 0.6))
            pacer.observe_ring_outcome(i, t + delay, RingOutcome.PERSON)
        elif u < 0.4:
            pacer.observe_ring_outcome(i, t + rng.uniform(15.0, 23.0), RingOutcome.MACHINE)
        elif u < 0.85:
            pacer.observe_ring_outcome(i, t + 22.0, RingOutcome.NO_ANSWER)
        else:
            pacer.observe_ring_outcome(i, t + rng.uniform(1.0, 5.0), RingOutcome.FAILED)
        t += 0.5
    for a in range(200):
        start = t + a * 200.0
        talk = rng.lognormvariate(math.log(150.0) - 0.32, 0.8)
        wrap = rng.lognormvariate(math.log(10.0) - 0.125, 0.5)
        pacer.observe_agent_state(a, start, AgentActivity.TALK)
        pacer.observe_agent_state(a, start + talk, AgentActivity.WRAP)
        pacer.observe_agent_state(a, start + talk + wrap, AgentActivity.READY)
    return t + 200 * 200.0 + 1000.0


def _snapshot(now: float, ready: int, in_flight: int = 0) -> PacingSnapshot:
    busy = [BusyAgent(AgentActivity.TALK, now - 30.0 * i) for i in range(18 - ready)]
    busy += [BusyAgent(AgentActivity.WRAP, now - 4.0), BusyAgent(AgentActivity.WRAP, now - 6.0)]
    return PacingSnapshot(ready, busy, [now - 1.0 * i for i in range(in_flight)])


def _predictive(cap: float = 0.03) -> tuple[PredictivePacer, float]:
    pacer = make_pacer("predictive", {}, cap, US_WINDOW_S, limits=PacingLimits(max_lines=50))
    assert isinstance(pacer, PredictivePacer)
    return pacer, _teach(pacer)


def test_progressive_opens_one_line_per_ready_agent_not_already_dialed_for() -> None:
    pacer = make_pacer("progressive", None, 0.03, US_WINDOW_S)
    assert pacer.lines_to_open(PacingSnapshot(5, [], [0.0, 0.0]), 10.0) == 3
    assert pacer.lines_to_open(PacingSnapshot(1, [], [0.0, 0.0]), 10.0) == 0


def test_ratio_keeps_ratio_times_ready_agents_dialing() -> None:
    pacer = make_pacer("ratio", {"ratio": 2.5}, 0.03, US_WINDOW_S)
    assert pacer.lines_to_open(PacingSnapshot(4, [], [0.0] * 3), 10.0) == 7


def test_predictive_dials_progressively_until_it_has_learned_enough() -> None:
    pacer = make_pacer("predictive", {}, 0.03, US_WINDOW_S)
    assert isinstance(pacer, PredictivePacer)
    assert not pacer.warm
    assert pacer.lines_to_open(_snapshot(100.0, ready=3), 100.0) == 3


def test_predictive_dials_ahead_of_agents_while_the_budget_lasts() -> None:
    pacer, now = _predictive()
    for i in range(2000):
        pacer.tracker.record(now - 3000.0 + i, True, False)
    assert pacer.warm
    opened = pacer.lines_to_open(_snapshot(now, ready=3), now)
    assert opened > 3  # more than progressive: it dials for agents about to be free


def test_predictive_falls_back_to_progressive_when_the_budget_is_gone() -> None:
    pacer, now = _predictive()
    for i in range(2000):
        pacer.tracker.record(now - 3000.0 + i, True, i % 20 == 0)  # 5 % abandoned: over the 3 % cap
    assert pacer.tracker.budget_left(now) < 0
    assert pacer.lines_to_open(_snapshot(now, ready=3), now) == 3
    assert pacer.fallback


def test_predictive_holds_the_1_percent_cap_the_same_way() -> None:
    pacer, now = _predictive(cap=0.01)
    for i in range(2000):
        pacer.tracker.record(now - 3000.0 + i, True, i % 50 == 0)  # 2 %: over a 1 % cap
    assert pacer.lines_to_open(_snapshot(now, ready=2), now) == 2


def test_predictive_opens_fewer_lines_when_many_are_already_ringing() -> None:
    pacer, now = _predictive()
    for i in range(2000):
        pacer.tracker.record(now - 3000.0 + i, True, False)
    empty = pacer.lines_to_open(_snapshot(now, ready=3), now)
    busy = pacer.lines_to_open(_snapshot(now + 0.5, ready=3, in_flight=empty), now + 0.5)
    assert busy < empty


def test_line_gate_applies_campaign_trunk_and_rate_limits() -> None:
    gate = LineGate(PacingLimits(max_lines=10, calls_per_second=2.0, burst=4))
    assert gate.admit(20, in_flight=8, trunk_lines_free=None, now=0.0) == 2  # campaign lines
    assert gate.admit(20, in_flight=0, trunk_lines_free=1, now=0.0) == 1  # trunk
    assert gate.admit(20, in_flight=0, trunk_lines_free=None, now=0.0) == 1  # 4 tokens - 3 spent
    assert gate.admit(20, in_flight=0, trunk_lines_free=None, now=0.0) == 0
    assert gate.admit(20, in_flight=0, trunk_lines_free=None, now=1.0) == 2  # 2 calls per second


def test_new_session_forgets_calls_and_agents_but_keeps_the_learning() -> None:
    pacer, now = _predictive()
    pacer.observe_agent_state("a", now, AgentActivity.TALK)
    pacer.new_session()
    talks = pacer.releases.talks
    pacer.observe_agent_state("a", now + 50_000.0, AgentActivity.READY)  # no 50 000 s talk learned
    assert pacer.releases.talks == talks
    assert pacer.warm


def test_unknown_mode_or_parameter_is_refused_with_what_to_use() -> None:
    with pytest.raises(PacingError, match="progressive, ratio, predictive"):
        make_pacer("preview", None, 0.03, US_WINDOW_S)
    with pytest.raises(PacingError, match="does not take ratoi"):
        make_pacer("ratio", {"ratoi": 2.0}, 0.03, US_WINDOW_S)
    with pytest.raises(PacingError, match="below 1 line"):
        make_pacer("ratio", {"ratio": 0.5}, 0.03, US_WINDOW_S)
    with pytest.raises(LimitsError):
        PacingLimits(max_lines=0)


def test_tracker_of_the_pacer_is_the_one_given() -> None:
    tracker = AbandonmentTracker("c9", 0.03, US_WINDOW_S)
    pacer = make_pacer("progressive", None, 0.03, US_WINDOW_S, tracker=tracker)
    pacer.observe_person_handled("call", 5.0, abandoned=True)
    assert tracker.counts(6.0) == (1, 1)


def test_predictive_dials_no_line_beyond_ready_agents_when_the_window_cannot_take_a_burst() -> None:
    # 24-hour window at 1 %: 250 answered today, 1 abandoned. The rate (0.4 %) is well under the
    # cap and the target leaves room, but the window can take only 1.5 more abandons: a burst of
    # answers could cross it, so the guard holds the pacer to the ready agents.
    pacer, now = _predictive(cap=0.01)
    pacer.tracker = AbandonmentTracker("c1", 0.01, UK_WINDOW_S)
    for i in range(250):
        pacer.tracker.record(now - 3000.0 + i * 10.0, True, i == 0)
    assert 1.0 <= pacer.window_headroom(now) < pacer.params.guard_reserve
    assert pacer.lines_to_open(_snapshot(now, ready=3), now) == 3
    assert pacer.guarded and not pacer.fallback
    # The same pacer with the room of a full day (and the same rate) dials ahead.
    roomy, now = _predictive(cap=0.01)
    roomy.tracker = AbandonmentTracker("c1", 0.01, UK_WINDOW_S)
    for i in range(2500):
        roomy.tracker.record(now - 30000.0 + i * 10.0, True, i % 250 == 0)
    assert roomy.window_headroom(now) > 10.0
    assert roomy.lines_to_open(_snapshot(now, ready=3), now) > 3
    assert not roomy.guarded


def test_predictive_guard_looks_ahead_at_calls_leaving_the_window() -> None:
    # Yesterday's calls are about to leave a 24-hour window; the abandons were made late
    # yesterday and stay: the room is fine now, gone within the hour.
    pacer, now = _predictive(cap=0.01)
    pacer.tracker = AbandonmentTracker("c1", 0.01, UK_WINDOW_S)
    yesterday = now - 86400.0
    for i in range(1000):  # 1,000 answered from 24 h ago, one every 3 s
        pacer.tracker.record(yesterday + 60.0 + i * 3.0, True, i >= 995)  # the last 5 abandoned
    assert pacer.tracker.headroom(now) > pacer.params.guard_reserve  # (10 - 5) / 0.99 now
    assert pacer.window_headroom(now) < 1.0  # ... but 800 calls leave within the hour
    assert pacer.lines_to_open(_snapshot(now, ready=3), now) == 3


def test_predictive_aims_lower_where_the_window_holds_few_abandons_worth() -> None:
    pacer, now = _predictive(cap=0.01)
    small = AbandonmentTracker("c1", 0.01, UK_WINDOW_S)
    big = AbandonmentTracker("c1", 0.01, UK_WINDOW_S)
    for i in range(300):
        small.record(now - 3000.0 + i, True, False)
    for i in range(30000):
        big.record(now - 30000.0 + i, True, False)
    pacer.tracker = small
    aim_small = pacer.safety(now)
    pacer.tracker = big
    aim_big = pacer.safety(now)
    assert aim_small < 0.5 < aim_big == pytest.approx(pacer.params.safety)  # 1 - 1/sqrt(3) vs 0.93
