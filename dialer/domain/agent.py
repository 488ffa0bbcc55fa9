"""The agent state machine: every transition of an agent's seat lives in this file.

LOGGED_OUT -> READY -> RESERVED -> ON_CALL -> WRAP_UP -> READY, plus PAUSED.
A reservation that does not become a call because the customer hung up first
returns the agent to READY; one that failed at the agent's end (the bridge
refused the customer) pauses the agent until the seat is checked.  The agent's
phone leg hanging up takes the agent out of dialing at once: logged out, or
after the wrap-up of the call in progress.  An input the table does not allow
raises ``InvalidAgentTransition``; repeats of the input that led to the
current state are no-ops (an API click sent twice).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class AgentState(enum.StrEnum):
    LOGGED_OUT = "logged_out"
    READY = "ready"
    RESERVED = "reserved"
    ON_CALL = "on_call"
    WRAP_UP = "wrap_up"
    PAUSED = "paused"


class AgentInput(enum.StrEnum):
    LOGIN = "login"
    READY = "ready"
    PAUSE = "pause"
    RESERVE = "reserve"
    RELEASE = "release"  # a reservation that did not become a call
    CONNECT = "connect"
    SEAT_FAULT = "seat_fault"  # the agent's bridge refused a customer: check the seat first
    LEG_LOST = "leg_lost"  # the agent's phone leg hung up
    CALL_ENDED = "call_ended"
    DISPOSE = "dispose"  # the agent qualified the call (or the wrap-up limit ran out)
    LOGOUT = "logout"


A, In = AgentState, AgentInput

TRANSITIONS: dict[tuple[AgentState, AgentInput], AgentState] = {
    (A.LOGGED_OUT, In.LOGIN): A.PAUSED,  # logged in but not yet taking calls
    (A.PAUSED, In.READY): A.READY,
    (A.READY, In.PAUSE): A.PAUSED,
    (A.READY, In.RESERVE): A.RESERVED,
    (A.RESERVED, In.RELEASE): A.READY,
    (A.RESERVED, In.CONNECT): A.ON_CALL,
    (A.RESERVED, In.SEAT_FAULT): A.PAUSED,
    (A.READY, In.LEG_LOST): A.LOGGED_OUT,
    (A.PAUSED, In.LEG_LOST): A.LOGGED_OUT,
    (A.RESERVED, In.LEG_LOST): A.LOGGED_OUT,
    (A.ON_CALL, In.CALL_ENDED): A.WRAP_UP,
    (A.WRAP_UP, In.DISPOSE): A.READY,
    (A.WRAP_UP, In.PAUSE): A.WRAP_UP,  # pause requested during wrap-up: taken at dispose
    (A.READY, In.LOGOUT): A.LOGGED_OUT,
    (A.PAUSED, In.LOGOUT): A.LOGGED_OUT,
}

# States whose agent can be counted on by the pacer within the next seconds.
AVAILABLE_SOON: frozenset[AgentState] = frozenset({A.ON_CALL, A.WRAP_UP})


class InvalidAgentTransition(Exception):
    def __init__(self, agent_id: str, state: AgentState, event: AgentInput) -> None:
        super().__init__(f"agent {agent_id}: {event.value!r} is not allowed in state {state.value!r}")
        self.agent_id = agent_id
        self.state = state
        self.event = event


@dataclass
class Agent:
    agent_id: str
    state: AgentState = AgentState.LOGGED_OUT
    since: float = 0.0  # when the current state began (clock of the caller)
    pause_after_wrap_up: bool = False
    logout_after_wrap_up: bool = False  # the phone leg is gone: no call after this one
    previous: AgentState | None = None

    def apply(self, event: AgentInput, now: float) -> bool:
        """Apply ``event`` at ``now``; True when the state changed."""
        if (self.state, event) == (A.WRAP_UP, In.PAUSE):
            self.pause_after_wrap_up = True
            return False
        if event is In.LEG_LOST and self.state in (A.ON_CALL, A.WRAP_UP):
            self.logout_after_wrap_up = True
            return False
        if event is In.LEG_LOST and self.state is A.LOGGED_OUT:
            return False
        target = TRANSITIONS.get((self.state, event))
        if target is None:
            if self.previous is not None and TRANSITIONS.get((self.previous, event)) is self.state:
                return False  # the same click twice
            raise InvalidAgentTransition(self.agent_id, self.state, event)
        if event is In.DISPOSE and self.logout_after_wrap_up:
            target = A.LOGGED_OUT
            self.logout_after_wrap_up = self.pause_after_wrap_up = False
        elif event is In.DISPOSE and self.pause_after_wrap_up:
            target = A.PAUSED
            self.pause_after_wrap_up = False
        self.previous, self.state, self.since = self.state, target, now
        return True
