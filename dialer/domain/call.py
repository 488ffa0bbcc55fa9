"""The call state machine: every transition of a dial attempt lives in this file.

NEW -> DIALING -> RINGING -> ANSWERED -> WAITING -> CONNECTING -> CONNECTED -> ENDED,
or WAITING -> ABANDONED -> ENDED, or ANSWERED -> MACHINE -> ENDED, with the failure exits BUSY,
NO_ANSWER, CONGESTION, INVALID_NUMBER, FAILED, CANCELLED and LOST from
NEW/DIALING/RINGING.  CONNECTING is "sent to an agent's bridge": the call is
CONNECTED only when the PBX confirms the customer joined it; a refused or
empty bridge sends it back to WAITING for another agent or the
identification message.  WAITING is "a person, and the dialer is finding an
agent": a person who hangs up then was abandoned by the dialer, whatever the
reason, and ``result_of`` says so for the pacer, the gate, the record and
the metrics alike (one result per call).  An answered call the PBX cut (a restart) before it
reached an agent is LOST; a beep heard after the connect (FreeSWITCH avmd
keeps listening) turns a CONNECTED call into a MACHINE.

PBX events can arrive twice (AMI reconnects) or late (FastAGI racing the
OriginateResponse).  A repeat of the event that led to the current state is a
no-op, and so is an event the table lists as *late* (a ``ringing`` after the
answer).  Anything else is an ``InvalidCallTransition``: the caller logs and
counts it, it is never silently ignored.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from dialer.domain.campaign import CallResult


class CallState(enum.StrEnum):
    NEW = "new"
    DIALING = "dialing"
    RINGING = "ringing"
    ANSWERED = "answered"
    WAITING = "waiting"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    ABANDONED = "abandoned"
    MACHINE = "machine"
    ENDED = "ended"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    CONGESTION = "congestion"
    INVALID_NUMBER = "invalid_number"
    FAILED = "failed"
    CANCELLED = "cancelled"
    LOST = "lost"


class CallInput(enum.StrEnum):
    ORIGINATE = "originate"  # the PBX accepted our originate
    RINGING = "ringing"
    ANSWERED = "answered"
    WAITING = "waiting"
    CONNECTING = "connecting"
    WAIT_FOR_AGENT = "wait_for_agent"  # a person: the dialer looks for a free agent
    SENT_TO_AGENT = "sent_to_agent"  # an agent was reserved and the customer sent to the bridge
    CONNECT_FAILED = "connect_failed"  # the bridge refused the customer or had no agent in it
    CONNECTED = "connected"  # the PBX confirms the customer joined the agent
    ABANDONED = "abandoned"  # a person with nobody free in time
    MACHINE = "machine"  # detection said machine
    HUNG_UP = "hung_up"  # an answered call ended
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    CONGESTION = "congestion"
    INVALID_NUMBER = "invalid_number"
    FAILED = "failed"
    CANCELLED = "cancelled"
    LOST = "lost"


S, Ev = CallState, CallInput

_FAILURE_EXITS = {
    Ev.BUSY: S.BUSY,
    Ev.NO_ANSWER: S.NO_ANSWER,
    Ev.CONGESTION: S.CONGESTION,
    Ev.INVALID_NUMBER: S.INVALID_NUMBER,
    Ev.FAILED: S.FAILED,
    Ev.CANCELLED: S.CANCELLED,
    Ev.LOST: S.LOST,
}

TRANSITIONS: dict[tuple[CallState, CallInput], CallState] = {
    (S.NEW, Ev.ORIGINATE): S.DIALING,
    (S.DIALING, Ev.RINGING): S.RINGING,
    (S.DIALING, Ev.ANSWERED): S.ANSWERED,  # no 180 before the 200
    (S.RINGING, Ev.ANSWERED): S.ANSWERED,
    (S.ANSWERED, Ev.WAIT_FOR_AGENT): S.WAITING,
    (S.ANSWERED, Ev.MACHINE): S.MACHINE,
    (S.ANSWERED, Ev.HUNG_UP): S.ENDED,  # the callee left before any decision (dropped)
    (S.ANSWERED, Ev.LOST): S.LOST,  # cut by the PBX before any agent: says nothing of the person
    (S.WAITING, Ev.SENT_TO_AGENT): S.CONNECTING,
    (S.WAITING, Ev.ABANDONED): S.ABANDONED,
    (S.WAITING, Ev.MACHINE): S.MACHINE,
    (S.WAITING, Ev.HUNG_UP): S.ENDED,  # the person gave up waiting for an agent: abandoned
    (S.WAITING, Ev.LOST): S.LOST,
    (S.CONNECTING, Ev.CONNECTED): S.CONNECTED,
    (S.CONNECTING, Ev.CONNECT_FAILED): S.WAITING,
    (S.CONNECTING, Ev.MACHINE): S.MACHINE,
    (S.CONNECTING, Ev.HUNG_UP): S.ENDED,  # the callee left on the way to the agent
    (S.CONNECTING, Ev.LOST): S.LOST,
    (S.CONNECTED, Ev.MACHINE): S.MACHINE,  # a beep after the connect: it was a voicemail
    (S.CONNECTED, Ev.HUNG_UP): S.ENDED,
    (S.CONNECTED, Ev.LOST): S.ENDED,  # the conversation took place
    (S.ABANDONED, Ev.HUNG_UP): S.ENDED,
    (S.ABANDONED, Ev.LOST): S.ENDED,
    (S.MACHINE, Ev.HUNG_UP): S.ENDED,
    (S.MACHINE, Ev.LOST): S.ENDED,
    **{(src, inp): dst for src in (S.NEW, S.DIALING, S.RINGING) for inp, dst in _FAILURE_EXITS.items()},
}

# Inputs that may arrive after the state they would lead to was passed.  They
# change nothing.  A RINGING after the answer is the common case (the AMI
# DialState and the OriginateResponse race); an ORIGINATE acknowledgement can
# come after the first channel event.
LATE: frozenset[tuple[CallState, CallInput]] = frozenset(
    {
        *((st, Ev.ORIGINATE) for st in CallState if st is not S.NEW),
        *((st, Ev.RINGING) for st in CallState if st not in (S.NEW, S.DIALING)),
        # the AMI answer may be handled after the FastAGI decision moved the call on
        *((st, Ev.ANSWERED) for st in (S.WAITING, S.CONNECTING, S.CONNECTED, S.ABANDONED, S.MACHINE)),
        *((st, Ev.ANSWERED) for st in (S.ENDED, S.LOST)),
        # detection may report after the runtime already dropped the call
        (S.ABANDONED, Ev.MACHINE),
        (S.ENDED, Ev.MACHINE),
        (S.ENDED, Ev.CONNECTED),
        (S.ENDED, Ev.CONNECT_FAILED),
        (S.LOST, Ev.CONNECTED),
        (S.LOST, Ev.CONNECT_FAILED),
        (S.MACHINE, Ev.CONNECTED),
        (S.MACHINE, Ev.CONNECT_FAILED),
        (S.ENDED, Ev.ABANDONED),
        (S.LOST, Ev.ABANDONED),
        (S.ENDED, Ev.SENT_TO_AGENT),
        (S.LOST, Ev.SENT_TO_AGENT),
        (S.MACHINE, Ev.SENT_TO_AGENT),
        (S.MACHINE, Ev.ABANDONED),
    }
)

TERMINAL: frozenset[CallState] = frozenset(
    {S.ENDED, S.BUSY, S.NO_ANSWER, S.CONGESTION, S.INVALID_NUMBER, S.FAILED, S.CANCELLED, S.LOST}
)


class InvalidCallTransition(Exception):
    def __init__(self, attempt_id: str, state: CallState, event: CallInput) -> None:
        super().__init__(f"attempt {attempt_id}: {event.value!r} is not allowed in state {state.value!r}")
        self.attempt_id = attempt_id
        self.state = state
        self.event = event


@dataclass
class Call:
    """One attempt's state and the path it took (for the record and the tests)."""

    attempt_id: str
    state: CallState = CallState.NEW
    history: list[CallState] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.state in TERMINAL

    @property
    def person_answered(self) -> bool:
        """Answered and not a machine: the denominator of the abandonment rate."""
        return CallState.ANSWERED in self.history and CallState.MACHINE not in self.history

    def apply(self, event: CallInput) -> bool:
        """Apply ``event``; True when the state changed, False for a repeat or a late event."""
        target = TRANSITIONS.get((self.state, event))
        if target is not None:
            self.history.append(self.state)
            self.state = target
            return True
        if (self.state, event) in LATE or self._is_repeat(event):
            return False
        raise InvalidCallTransition(self.attempt_id, self.state, event)

    def _is_repeat(self, event: CallInput) -> bool:
        if not self.history:
            return False
        return TRANSITIONS.get((self.history[-1], event)) is self.state


# The state before ENDED that names the result of an answered call.
_ANSWERED_RESULTS: dict[CallState, CallResult] = {
    CallState.CONNECTED: CallResult.CONNECTED,
    CallState.MACHINE: CallResult.MACHINE,
    CallState.ABANDONED: CallResult.ABANDONED,
    CallState.WAITING: CallResult.ABANDONED,  # gave up while the dialer looked for an agent
    CallState.CONNECTING: CallResult.ABANDONED,  # on the way to an agent it never reached
    CallState.ANSWERED: CallResult.DROPPED,  # left before any decision (during detection)
}


def result_of(call: Call) -> CallResult:
    """The one result of a finished call: what the pacer, the gate, the record and the metrics use."""
    if call.state is not CallState.ENDED:
        return CallResult(call.state.value)
    for st in reversed(call.history):
        if st in _ANSWERED_RESULTS:
            return _ANSWERED_RESULTS[st]
    return CallResult.DROPPED
