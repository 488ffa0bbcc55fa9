"""Who answers the simulator's calls: a scripted callee (lab numbering) or a seeded random one.

Both simulators (AMI and ESL) ask a ``CalleeModel`` for a ``CalleePlan`` when
an originate arrives, then play that plan out with the event sequences of the
real captures.  Times in a plan are in PBX seconds; the simulator divides them
by its time scale.
"""

from __future__ import annotations

import enum
import math
import random
from dataclasses import dataclass, field
from typing import Protocol


class CalleeKind(enum.StrEnum):
    PERSON = "person"  # answers, speaks, stays until the far end hangs up or talk time runs out
    MACHINE = "machine"  # answers with a long greeting, no beep
    MACHINE_BEEP = "machine_beep"  # greeting that ends in a voicemail beep
    BUSY = "busy"
    NO_ANSWER = "no_answer"  # rings until the originate timeout
    CONGESTION = "congestion"
    INVALID = "invalid"  # unallocated number
    SHORT = "short"  # answers and hangs up after about a second
    AGENT = "agent"  # an agent softphone: answers at once, stays until hung up


@dataclass(frozen=True, slots=True)
class CalleePlan:
    kind: CalleeKind
    ring_s: float  # seconds from the originate to answer / refusal
    talk_s: float | None = None  # after answer, seconds until the callee hangs up (None: never)


class CalleeModel(Protocol):
    def plan(self, number: str) -> CalleePlan: ...


# The lab numbering of the captures: the first digit of the last four digits.
_LAB_DIGIT = {
    "1": CalleeKind.AGENT,
    "2": CalleeKind.PERSON,
    "3": CalleeKind.BUSY,
    "4": CalleeKind.NO_ANSWER,
    "5": CalleeKind.CONGESTION,
    "6": CalleeKind.INVALID,
    "7": CalleeKind.MACHINE,
    "8": CalleeKind.SHORT,
    "9": CalleeKind.MACHINE_BEEP,
}


@dataclass
class ScriptedCallee:
    """The lab's callees: ``2XXX`` a person, ``3XXX`` busy, ... as in the capture README.

    The timings are those measured in the captures (SIP peers: a person
    answers after 3 s and hangs up 7 s later; a machine answers after 4 s and
    hangs up 12 s later; refusals come at once).
    """

    person_ring_s: float = 3.0
    person_talk_s: float | None = 7.0
    machine_ring_s: float = 4.0
    machine_talk_s: float = 12.0
    refusal_s: float = 0.002

    def plan(self, number: str) -> CalleePlan:
        digits = "".join(c for c in number if c.isdigit())
        key = digits[-4] if len(digits) >= 4 else (digits[:1] or "6")
        kind = _LAB_DIGIT.get(key, CalleeKind.INVALID)
        if kind is CalleeKind.PERSON:
            return CalleePlan(kind, self.person_ring_s, self.person_talk_s)
        if kind in (CalleeKind.MACHINE, CalleeKind.MACHINE_BEEP):
            return CalleePlan(kind, self.machine_ring_s, self.machine_talk_s)
        if kind is CalleeKind.SHORT:
            return CalleePlan(kind, self.refusal_s, 1.0)
        if kind is CalleeKind.AGENT:
            return CalleePlan(kind, self.refusal_s, None)
        if kind is CalleeKind.NO_ANSWER:
            return CalleePlan(kind, math.inf, None)
        return CalleePlan(kind, self.refusal_s, None)


@dataclass(frozen=True)
class CalleeMix:
    """Probabilities of each kind of callee for a random model (they must sum to 1)."""

    person: float = 0.20
    machine: float = 0.20
    no_answer: float = 0.45
    busy: float = 0.08
    congestion: float = 0.02
    invalid: float = 0.05

    def __post_init__(self) -> None:
        total = self.person + self.machine + self.no_answer + self.busy + self.congestion + self.invalid
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"callee mix sums to {total:.4f}, not 1: adjust the probabilities")

    def weights(self) -> list[tuple[CalleeKind, float]]:
        return [
            (CalleeKind.PERSON, self.person),
            (CalleeKind.MACHINE, self.machine),
            (CalleeKind.NO_ANSWER, self.no_answer),
            (CalleeKind.BUSY, self.busy),
            (CalleeKind.CONGESTION, self.congestion),
            (CalleeKind.INVALID, self.invalid),
        ]


@dataclass
class RandomCallee:
    """A seeded population of callees with ring- and talk-time distributions.

    A person answers after 2 s + lognormal(median ``person_ring_median_s``);
    a machine after uniform(``machine_ring_min_s``, ``machine_ring_max_s``);
    refusals come after uniform(1, 5) s; talk time is lognormal around
    ``talk_median_s``.  The same seed gives the same sequence of plans.
    """

    seed: int = 1
    mix: CalleeMix = field(default_factory=CalleeMix)
    person_ring_median_s: float = 6.0
    person_ring_sigma: float = 0.6
    machine_ring_min_s: float = 12.0
    machine_ring_max_s: float = 20.0
    talk_median_s: float = 60.0
    talk_sigma: float = 0.8
    machine_talk_s: float = 20.0
    beep_share: float = 0.3  # share of machines whose greeting ends in a beep

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        kinds = self.mix.weights()
        self._kinds = [k for k, _ in kinds]
        self._weights = [w for _, w in kinds]

    def plan(self, number: str) -> CalleePlan:
        rng = self._rng
        kind = rng.choices(self._kinds, self._weights)[0]
        if kind is CalleeKind.PERSON:
            ring = 2.0 + rng.lognormvariate(math.log(self.person_ring_median_s), self.person_ring_sigma)
            talk = rng.lognormvariate(math.log(self.talk_median_s), self.talk_sigma)
            return CalleePlan(kind, ring, talk)
        if kind is CalleeKind.MACHINE:
            ring = rng.uniform(self.machine_ring_min_s, self.machine_ring_max_s)
            if rng.random() < self.beep_share:
                kind = CalleeKind.MACHINE_BEEP
            return CalleePlan(kind, ring, self.machine_talk_s)
        if kind is CalleeKind.NO_ANSWER:
            return CalleePlan(kind, math.inf, None)
        return CalleePlan(kind, rng.uniform(1.0, 5.0), None)


@dataclass
class WithAgentPhones:
    """Agent softphones (``agent_digits``-digit extensions) answer at once; the rest follow ``model``."""

    model: CalleeModel
    agent_digits: int = 4

    def plan(self, number: str) -> CalleePlan:
        digits = "".join(c for c in number.split("@")[0] if c.isdigit())
        if len(digits) == self.agent_digits:
            return CalleePlan(CalleeKind.AGENT, 0.05, None)
        return self.model.plan(number)
