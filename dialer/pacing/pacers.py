"""Pacers: how many lines to open at every moment, for one campaign.

A pacer is a pure object: it is told what happened (observe_* with timestamps) and asked
lines_to_open(snapshot, now). It never reads a clock; the daemon drives it with the wall clock
and bench/pacing.py with a virtual clock, so both run the very same code.

Modes:
- progressive: one line per ready agent no call is already waiting for, never an abandon.
- ratio: a fixed number of lines per ready agent no answered call is already waiting for.
- predictive: learns online when dials are answered by persons and when busy agents free up,
  and opens lines while the person answers to come, plus a margin of z standard deviations,
  stay within the agents free soon. z is steered so that the measured rate meets a target
  drawn from the budget left in the abandonment window; it falls back to progressive during
  warm-up and whenever the projected window rate would cross the cap.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Collection
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from dialer.domain.pacing import lines_within_margin, target_abandon_rate
from dialer.pacing.limits import LineGate, PacingLimits
from dialer.pacing.model import AnswerModel, ReleaseModel
from dialer.pacing.tracker import AbandonmentTracker


class PacingError(ValueError):
    """A pacing mode or parameter that cannot work."""


class AgentActivity(StrEnum):
    READY = "ready"
    TALK = "talk"
    WRAP = "wrap"
    AWAY = "away"  # paused, on break or logged out: neither ready nor about to be


class RingOutcome(StrEnum):
    PERSON = "person"
    MACHINE = "machine"
    NO_ANSWER = "no_answer"
    FAILED = "failed"  # busy, invalid number, congestion


@dataclass(frozen=True, slots=True)
class BusyAgent:
    """An agent on a call or wrapping up, and since when (same clock as `now`)."""

    activity: AgentActivity
    since: float


@dataclass(frozen=True, slots=True)
class PacingSnapshot:
    """What the campaign looks like now.

    calls_in_flight: launch times of the calls still dialing (not yet answered nor released).
    persons_waiting: answered calls not yet connected to an agent and with no agent reserved yet
        (waiting for the answering-machine verdict or for an agent): each will take a ready agent.
    trunk_lines_free: lines left on the trunk the campaign uses (None: not limited by the trunk).
    """

    ready_agents: int
    busy_agents: Collection[BusyAgent]
    calls_in_flight: Collection[float]
    persons_waiting: int = 0
    trunk_lines_free: int | None = None


class Pacer(Protocol):
    tracker: AbandonmentTracker

    def observe_dial_launched(self, call_id: object, at: float) -> None: ...

    def observe_ring_outcome(self, call_id: object, at: float, outcome: RingOutcome) -> None: ...

    def observe_person_handled(self, call_id: object, at: float, abandoned: bool) -> None: ...

    def observe_agent_state(self, agent_id: object, at: float, activity: AgentActivity) -> None: ...

    def lines_to_open(self, snapshot: PacingSnapshot, now: float) -> int: ...


def unclaimed_agents(snapshot: PacingSnapshot) -> int:
    """Ready agents that no answered call is already waiting for.

    An answered call still waiting for its machine-detection verdict or for an agent leaves the
    agent it will take READY until it is connected; that agent is spoken for all the same.
    """
    return max(0, snapshot.ready_agents - snapshot.persons_waiting)


def progressive_lines(snapshot: PacingSnapshot) -> int:
    """One line per ready agent that no call, dialing or answered and not yet connected, is waiting
    for: every call that answers then finds an agent, so nobody is abandoned (agents behaving)."""
    return max(0, unclaimed_agents(snapshot) - len(snapshot.calls_in_flight))


class _BasePacer:
    """Bookkeeping shared by every mode: the tracker, the limits, launch times."""

    def __init__(self, tracker: AbandonmentTracker, limits: PacingLimits) -> None:
        self.tracker = tracker
        self.limits = limits
        self.gate = LineGate(limits)
        self._launched: dict[object, float] = {}

    def observe_dial_launched(self, call_id: object, at: float) -> None:
        self._launched[call_id] = at

    def observe_ring_outcome(self, call_id: object, at: float, outcome: RingOutcome) -> None:
        self._launched.pop(call_id, None)

    def observe_person_handled(self, call_id: object, at: float, abandoned: bool) -> None:
        self.tracker.record(at, True, abandoned)

    def observe_agent_state(self, agent_id: object, at: float, activity: AgentActivity) -> None:
        return None

    def _admit(self, wanted: int, snapshot: PacingSnapshot, now: float) -> int:
        return self.gate.admit(wanted, len(snapshot.calls_in_flight), snapshot.trunk_lines_free, now)


class ProgressivePacer(_BasePacer):
    """One line per ready agent."""

    def lines_to_open(self, snapshot: PacingSnapshot, now: float) -> int:
        return self._admit(progressive_lines(snapshot), snapshot, now)


class RatioPacer(_BasePacer):
    """A fixed number of lines per ready agent (1.0 is progressive)."""

    def __init__(self, tracker: AbandonmentTracker, limits: PacingLimits, ratio: float) -> None:
        if ratio < 1.0:
            raise PacingError(f"ratio {ratio} is below 1 line per ready agent; use 1.0 or more")
        super().__init__(tracker, limits)
        self.ratio = ratio

    def lines_to_open(self, snapshot: PacingSnapshot, now: float) -> int:
        # Ready agents an answered call is already waiting for are not dialed for again.
        agents = unclaimed_agents(snapshot)
        wanted = math.floor(self.ratio * agents + 1e-9) - len(snapshot.calls_in_flight)
        return self._admit(max(0, wanted), snapshot, now)


@dataclass(frozen=True, slots=True)
class PredictiveParams:
    """Tuning of the predictive mode; the defaults are the benchmarked ones."""

    free_horizon_s: float = 8.0  # agents count as free if expected free within this (plus the grace)
    answer_horizon_s: float = 20.0  # person answers to come from the calls dialing, within this
    grace_s: float = 2.0  # a person waits this long for an agent before the call counts as abandoned
    initial_margin: float = 1.9  # z at a 3 % cap: standard deviations of room between answers and agents
    margin_per_cap_halving: float = 0.35  # a tighter cap starts with more room (measured on OB-20)
    min_margin: float = 0.0
    max_margin: float = 6.0
    gain: float = 0.01  # margin step per person, scaled by the target rate (see observe_person_handled)
    safety: float = 0.93  # aim at this fraction of the cap over the window
    # ... and lower where a window holds few abandons' worth of calls (a 24-hour window, a small
    # team): the aim leaves this many standard deviations of the window's abandon count (about
    # the square root of the cap x the calls in it) below the cap, so that a day's random
    # variation does not cross it.
    window_variation: float = 1.0
    boldness: float = 0.97  # never aim above this multiple of the cap, however much budget is left
    planning_horizon_s: float = 8 * 3600.0  # spend the budget left over about one shift of answers
    projection_s: float = 600.0  # the fallback checks the window rate this far ahead
    # The window guard: lines open only while the abandons the calls in flight could cause stay
    # within the abandons the window can still take, with this many standard deviations of room.
    guard_margin: float = 3.0
    guard_reserve: float = 3.0  # below this many affordable abandons, no line beyond the ready agents
    # ... the window's room taken at its worst over this time ahead (calls leave the window as
    # they age), counting this fraction of the person answers lately as still to come meanwhile;
    # looked ahead every guard_every_s (the abandons in between are counted as they come).
    guard_ahead_s: float = 3600.0
    guard_answer_share: float = 0.7
    guard_every_s: float = 30.0
    warmup_dials: int = 300
    warmup_persons: int = 40
    warmup_handles: int = 40
    answer_decay: float = 0.9
    answer_decay_every: int = 200
    recent_persons: int = 300


class PredictivePacer(_BasePacer):
    """Model-based pacing that spends the abandonment budget on purpose."""

    def __init__(self, tracker: AbandonmentTracker, limits: PacingLimits, params: PredictiveParams) -> None:
        super().__init__(tracker, limits)
        self.params = params
        if params.free_horizon_s <= 0 or params.answer_horizon_s <= 0:
            raise PacingError("pacing horizons must be positive numbers of seconds")
        self.answers = AnswerModel(
            [params.answer_horizon_s], decay=params.answer_decay, decay_every=params.answer_decay_every
        )
        self.releases = ReleaseModel([params.free_horizon_s + params.grace_s])
        self.margin = params.initial_margin + params.margin_per_cap_halving * math.log2(0.03 / tracker.cap)
        self._agent_state: dict[object, tuple[AgentActivity, float]] = {}
        self._answer_times: deque[float] = deque(maxlen=100)
        self._recent: deque[bool] = deque(maxlen=params.recent_persons)
        self._recent_abandoned = 0
        self._target = tracker.cap * params.safety
        self._target_at = -math.inf
        self.fallback = False
        self.guarded = False  # the window guard held back the latest decision that wanted more lines
        self._dip = 0.0  # how far the window's room will dip over the guard's time ahead
        self._dip_at = -math.inf
        # The moments of answers to come and agents free of the snapshot being decided on (held
        # so that the margin's rule and the window guard sum them once).
        self._moments_of: tuple[PacingSnapshot, float] | None = None
        self._moments = (0.0, 0.0, 0.0, 0.0)

    # -- observations -----------------------------------------------------------------------

    def observe_ring_outcome(self, call_id: object, at: float, outcome: RingOutcome) -> None:
        launched = self._launched.pop(call_id, None)
        if launched is None:
            return
        person = outcome is RingOutcome.PERSON
        self.answers.observe(at - launched, person)
        if person:
            self._answer_times.append(at)

    def observe_person_handled(self, call_id: object, at: float, abandoned: bool) -> None:
        super().observe_person_handled(call_id, at, abandoned)
        recent = self._recent
        if len(recent) == recent.maxlen and recent[0]:
            self._recent_abandoned -= 1
        recent.append(abandoned)
        if abandoned:
            self._recent_abandoned += 1
        if not self.warm or self.fallback or self.guarded:
            # While dialing progressively, or held back by the window guard, nothing here says how
            # wide the margin should be (and it must not wind down while the guard holds it).
            return
        # Stochastic approximation: the margin settles where the abandon rate equals the target.
        # Dividing by sqrt(target) keeps an abandon's kick moderate at a 1 % cap as at 3 %.
        target = self._target
        step = self.params.gain * (((1.0 if abandoned else 0.0) - target) / math.sqrt(max(target, 1e-4)))
        p = self.params
        self.margin = min(p.max_margin, max(p.min_margin, self.margin + step))

    def observe_agent_state(self, agent_id: object, at: float, activity: AgentActivity) -> None:
        previous = self._agent_state.get(agent_id)
        self._agent_state[agent_id] = (activity, at)
        if previous is None:
            return
        old, since = previous
        if old is AgentActivity.TALK and activity is not AgentActivity.TALK:
            self.releases.observe_talk(at - since)
        elif old is AgentActivity.WRAP and activity is not AgentActivity.WRAP:
            self.releases.observe_wrap(at - since)

    def new_session(self, tracker: AbandonmentTracker | None = None) -> None:
        """Forget calls in flight and agent states (PBX reconnect, next shift); keep what was learned.

        tracker: the campaign's tracker rebuilt from the attempts table, when the caller has one.
        """
        self._launched.clear()
        self._agent_state.clear()
        self._answer_times.clear()  # the answer rate is measured afresh, not across the night
        if tracker is not None:
            self.tracker = tracker
        self._target_at = -math.inf
        self._dip_at = -math.inf

    # -- state ------------------------------------------------------------------------------

    @property
    def warm(self) -> bool:
        p = self.params
        return (
            self.answers.observations >= p.warmup_dials
            and self.answers.persons >= p.warmup_persons
            and self.releases.talks >= p.warmup_handles
            and self.releases.wraps >= p.warmup_handles
            and self.releases.ready
        )

    def answer_rate(self, now: float) -> float:
        """Person answers per second lately (0 until there are a few)."""
        times = self._answer_times
        if len(times) < 10:
            return 0.0
        span = max(now, times[-1]) - times[0]
        return (len(times) - 1) / span if span > 0 else 0.0

    def recent_abandon_rate(self) -> float:
        return self._recent_abandoned / len(self._recent) if self._recent else 0.0

    def _refresh_target(self, now: float) -> None:
        if now - self._target_at < 10.0:
            return
        self._target_at = now
        p = self.params
        rate = self.answer_rate(now)
        expected = rate * p.planning_horizon_s
        # Plan on the window as it will be at the end of the planning horizon: with a 24-hour
        # window, yesterday's calls will have left it by then; with 30 days, hardly any.
        answered, abandoned = self.tracker.counts_ahead(now, p.planning_horizon_s)
        self._target = target_abandon_rate(
            self.tracker.cap, answered, abandoned, expected, self.safety(now), p.boldness
        )
        # Fall back to progressive when, at the rate seen lately, the window would cross the cap.
        soon = rate * p.projection_s
        projected = self.tracker.projected_rate(now, soon, soon * self.recent_abandon_rate())
        self.fallback = self._target <= 0.0 or projected > self.tracker.cap

    def safety(self, now: float) -> float:
        """The fraction of the cap to aim at: lower when the window holds few abandons' worth."""
        answered, _ = self.tracker.counts(now)
        budget = self.tracker.cap * answered  # abandons the whole window may hold
        if budget <= 0.0:
            return 0.0
        return max(0.0, min(self.params.safety, 1.0 - self.params.window_variation / math.sqrt(budget)))

    # -- decision ---------------------------------------------------------------------------

    def lines_to_open(self, snapshot: PacingSnapshot, now: float) -> int:
        progressive = progressive_lines(snapshot)
        if not self.warm:
            return self._admit(progressive, snapshot, now)
        self._refresh_target(now)
        if self.fallback:
            return self._admit(progressive, snapshot, now)
        room = self.limits.max_lines - len(snapshot.calls_in_flight)
        if snapshot.trunk_lines_free is not None:
            room = min(room, snapshot.trunk_lines_free)
        if room <= 0:
            return 0
        wanted = self.predictive_lines(snapshot, now, room)
        if wanted > progressive:
            allowed = self.guard_lines(snapshot, now, room)
            self.guarded = allowed < wanted
            wanted = min(wanted, allowed)
        return self._admit(max(wanted, progressive), snapshot, now)

    def free_agents(self, snapshot: PacingSnapshot, now: float) -> tuple[float, float]:
        """Mean and variance of the agents free within the free horizon (plus the grace)."""
        talk_row = self.releases.talk_row
        wrap_row = self.releases.wrap_row
        talk = AgentActivity.TALK
        wrap = AgentActivity.WRAP
        mean = float(snapshot.ready_agents)
        var = 0.0
        for agent in snapshot.busy_agents:
            activity = agent.activity
            if activity is talk:
                probs, variances = talk_row(now - agent.since)
            elif activity is wrap:
                probs, variances = wrap_row(now - agent.since)
            else:
                continue
            mean += probs[0]
            var += variances[0]
        return mean, var

    def expected_answers(self, snapshot: PacingSnapshot, now: float) -> tuple[float, float]:
        """Mean and variance of the person answers to come from the calls dialing (and waiting)."""
        scale = 1.0 / AnswerModel.BIN_S
        row_at = self.answers.row_at_bin
        mean = float(snapshot.persons_waiting)
        var = 0.0
        for launched in snapshot.calls_in_flight:
            probs, variances = row_at(int((now - launched) * scale))
            mean += probs[0]
            var += variances[0]
        return mean, var

    def window_headroom(self, now: float) -> float:
        """The abandons the window can still take, now and at its worst over the time ahead."""
        p = self.params
        tracker = self.tracker
        if now - self._dip_at >= p.guard_every_s:
            rate = self.answer_rate(now) * p.guard_answer_share
            self._dip = max(0.0, tracker.headroom(now) - tracker.headroom(now, p.guard_ahead_s, rate))
            self._dip_at = now
        return tracker.headroom(now) - self._dip

    def guard_lines(self, snapshot: PacingSnapshot, now: float, room: int) -> int:
        """The most lines that keep the abandons the calls in flight could cause within the window.

        The person answers to come beyond the agents free, A - F, are what could be abandoned;
        lines open while E[A - F] + guard_margin * sd(A - F) stays within the window's headroom
        (the abandons it can still take, at its worst over the time ahead), so the margin grows as
        the budget left shrinks; below guard_reserve abandons (answers come in bursts) no line
        beyond the ready agents opens. This holds in the window the campaign is subject to,
        whatever the target says: a 24-hour window is not crossed by a bad hour late in it.
        """
        headroom = self.window_headroom(now)
        if headroom < max(1.0, self.params.guard_reserve):
            return 0
        answers_mean, answers_var, free_mean, free_var = self.moments(snapshot, now)
        new_probs, new_vars = self.answers.row_at_bin(0)
        return lines_within_margin(
            room,
            answers_mean,
            answers_var,
            free_mean + headroom,
            free_var,
            new_probs[0],
            new_vars[0],
            self.params.guard_margin,
        )

    def moments(self, snapshot: PacingSnapshot, now: float) -> tuple[float, float, float, float]:
        """Mean and variance of the person answers to come, then of the agents free soon."""
        held = self._moments_of
        if held is None or held[0] is not snapshot or held[1] != now:
            self._moments = (*self.expected_answers(snapshot, now), *self.free_agents(snapshot, now))
            self._moments_of = (snapshot, now)
        return self._moments

    def predictive_lines(self, snapshot: PacingSnapshot, now: float, room: int) -> int:
        answers_mean, answers_var, free_mean, free_var = self.moments(snapshot, now)
        new_probs, new_vars = self.answers.row_at_bin(0)
        return lines_within_margin(
            room, answers_mean, answers_var, free_mean, free_var, new_probs[0], new_vars[0], self.margin
        )


MODES = ("progressive", "ratio", "predictive")


def make_pacer(
    mode: str,
    params: dict[str, object] | None,
    cap: float,
    window_s: float,
    campaign_id: str = "campaign",
    limits: PacingLimits | None = None,
    tracker: AbandonmentTracker | None = None,
) -> ProgressivePacer | RatioPacer | PredictivePacer:
    """Build the pacer of a campaign from its configuration.

    params: for ratio, {"ratio": 2.5}; for predictive, any PredictiveParams field. An unknown key
    is refused so that a typo in the configuration does not silently pace with defaults.
    """
    params = dict(params or {})
    tracker = tracker or AbandonmentTracker(campaign_id, cap, window_s)
    limits = limits or PacingLimits()
    if mode == "progressive":
        _refuse_unknown(mode, params, set())
        return ProgressivePacer(tracker, limits)
    if mode == "ratio":
        _refuse_unknown(mode, params, {"ratio"})
        ratio = params.get("ratio", 2.0)
        if not isinstance(ratio, int | float):
            raise PacingError(f"pacing.ratio is {ratio!r}; give a number of lines per ready agent, e.g. 2.0")
        return RatioPacer(tracker, limits, float(ratio))
    if mode == "predictive":
        allowed = set(PredictiveParams.__dataclass_fields__)
        _refuse_unknown(mode, params, allowed)
        return PredictivePacer(tracker, limits, PredictiveParams(**params))  # type: ignore[arg-type]
    raise PacingError(f"pacing mode {mode!r} is unknown; use one of {', '.join(MODES)}")


def _refuse_unknown(mode: str, params: dict[str, object], allowed: set[str]) -> None:
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise PacingError(
            f"pacing mode {mode!r} does not take {', '.join(unknown)}; "
            f"allowed: {', '.join(sorted(allowed)) or 'nothing'}"
        )
