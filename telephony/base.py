"""The PBX interface: what the dialer asks of a PBX and the call events it gets back.

Everything above ``telephony/`` talks to a PBX only through the types in this
module, so Asterisk (AMI + FastAGI) and FreeSWITCH (Event Socket) are equal.
An adapter turns its own protocol into these normalized events, keyed by the
attempt id the dialer chose before the call was placed (Asterisk ``ChannelId``,
FreeSWITCH ``origination_uuid``).
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


class Outcome(enum.StrEnum):
    """How a dial attempt ended before anybody spoke, in call-center words."""

    ANSWERED = "answered"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    CONGESTION = "congestion"
    INVALID_NUMBER = "invalid_number"
    FAILED = "failed"  # no channel was created or the PBX refused the call
    CANCELLED = "cancelled"  # the dialer hung up a ringing call itself
    LOST = "lost"  # the PBX lost the call (restart, link down) and cannot tell


class AmdResult(enum.StrEnum):
    """Answering-machine detection verdict for an answered call."""

    PERSON = "person"
    MACHINE = "machine"
    UNKNOWN = "unknown"  # detector ran but could not decide (Asterisk NOTSURE)


# Q.850 cause codes the dialer reasons about.  Other codes pass through as ints.
class Q850(enum.IntEnum):
    UNKNOWN = 0
    UNALLOCATED_NUMBER = 1
    NO_ROUTE_DESTINATION = 3
    NORMAL_CLEARING = 16
    USER_BUSY = 17
    NO_USER_RESPONSE = 18
    NO_ANSWER = 19
    SUBSCRIBER_ABSENT = 20
    CALL_REJECTED = 21
    NUMBER_CHANGED = 22
    DESTINATION_OUT_OF_ORDER = 27
    INVALID_NUMBER_FORMAT = 28
    NORMAL_UNSPECIFIED = 31
    NORMAL_CIRCUIT_CONGESTION = 34
    NETWORK_OUT_OF_ORDER = 38
    NORMAL_TEMPORARY_FAILURE = 41
    SWITCH_CONGESTION = 42
    REQUESTED_CHAN_UNAVAIL = 44
    BEARERCAPABILITY_NOTAVAIL = 58
    RECOVERY_ON_TIMER_EXPIRE = 102
    INTERWORKING = 127


def outcome_for_cause(cause: int) -> Outcome:
    """Outcome of an unanswered call from its Q.850 hang-up cause.

    Used by both adapters: on a SIP trunk busy, congestion and invalid numbers
    are told apart only by the cause (Asterisk says ``Reason: 0`` for all).
    Asterisk reports a 503 as 34, FreeSWITCH as 41: both are congestion.
    """
    if cause == Q850.USER_BUSY:
        return Outcome.BUSY
    if cause in (Q850.NO_USER_RESPONSE, Q850.NO_ANSWER, Q850.SUBSCRIBER_ABSENT):
        return Outcome.NO_ANSWER
    if cause in (
        Q850.NORMAL_CIRCUIT_CONGESTION,
        Q850.NETWORK_OUT_OF_ORDER,
        Q850.NORMAL_TEMPORARY_FAILURE,
        Q850.SWITCH_CONGESTION,
        Q850.REQUESTED_CHAN_UNAVAIL,
    ):
        return Outcome.CONGESTION
    if cause in (
        Q850.UNALLOCATED_NUMBER,
        Q850.NO_ROUTE_DESTINATION,
        Q850.NUMBER_CHANGED,
        Q850.INVALID_NUMBER_FORMAT,
    ):
        return Outcome.INVALID_NUMBER
    return Outcome.FAILED


# ---------------------------------------------------------------------------
# Normalized call events.  ``at`` is wall-clock seconds since the epoch as seen
# by the adapter when the event arrived; ``attempt_id`` is always ours.


@dataclass(frozen=True, slots=True)
class CallEvent:
    attempt_id: str
    at: float


@dataclass(frozen=True, slots=True)
class Ringing(CallEvent):
    """The far end is alerting (SIP 180, Asterisk DialState RINGING)."""


@dataclass(frozen=True, slots=True)
class Answered(CallEvent):
    """The called party picked up.  ``pbx_id`` is the PBX's own channel id."""

    pbx_id: str = ""


@dataclass(frozen=True, slots=True)
class AmdDetected(CallEvent):
    """Result of answering-machine / beep detection on an answered call."""

    result: AmdResult = AmdResult.UNKNOWN
    detail: str = ""  # the detector's own words, e.g. "HUMAN-803-800", "beep 1000 Hz"


@dataclass(frozen=True, slots=True)
class Failed(CallEvent):
    """The call ended without being answered; ``outcome`` says how."""

    outcome: Outcome = Outcome.FAILED
    cause: int | None = None  # Q.850, when the PBX gave one
    detail: str = ""


@dataclass(frozen=True, slots=True)
class HungUp(CallEvent):
    """An answered call ended.  Sent once per attempt, after ``Answered``.

    ``lost``: the PBX cut it (a restart, a link that never came back), not a
    party hanging up; a call not yet with an agent then has the outcome ``lost``.
    """

    cause: int = 0
    cause_text: str = ""
    lost: bool = False


@dataclass(frozen=True, slots=True)
class Connected(CallEvent):
    """The PBX confirms the customer joined the agent's bridge (not merely that we asked).

    Asterisk: ``ConfbridgeJoin`` of the attempt's channel in ``agent_<id>``;
    FreeSWITCH: the customer's ``conference::maintenance`` ``add-member`` in
    ``agent_<id>``.
    """

    agent_id: str = ""


@dataclass(frozen=True, slots=True)
class ConnectFailed(CallEvent):
    """The customer was sent to the agent's bridge and did not reach the agent.

    The bridge refused it (Asterisk ``conf-locked``: a stale leg filled it),
    the channel was gone before the move (FreeSWITCH ``-ERR No such channel!``)
    or the agent's leg was no longer in the bridge.  The agent's seat is to be
    checked; the customer, if still there, gets another agent or the
    identification message.
    """

    agent_id: str = ""
    reason: str = ""
    customer_gone: bool = False  # the customer's channel left before the move: nobody to route again


@dataclass(frozen=True, slots=True)
class AgentLegEnded(CallEvent):
    """An agent's phone leg hung up.  ``attempt_id`` is the leg's own id.

    The agent is out of dialing at once: no call may be routed to a dead leg.
    """

    agent_id: str = ""
    cause: int = 0
    detail: str = ""


# ---------------------------------------------------------------------------
# Requests from the dialer.


@dataclass(frozen=True, slots=True)
class OriginateRequest:
    """One outbound dial.  ``attempt_id`` is written to the database first."""

    attempt_id: str
    number: str  # E.164, e.g. "+33123456789"
    dial_string: str  # rendered channel, e.g. "PJSIP/0123456789@trunk"
    caller_id_number: str
    caller_id_name: str = ""
    ring_timeout_s: float = 25.0
    campaign_id: str = ""
    amd: bool = False
    variables: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AnsweredCall:
    """What the PBX tells the dialer when an answered call needs a decision."""

    attempt_id: str
    at: float
    amd: AmdResult | None = None  # None: no detection ran for this call
    amd_detail: str = ""


@dataclass(frozen=True, slots=True)
class ConnectToAgent:
    agent_id: str
    # Recording (campaign policy): ``record`` starts one before the customer joins the bridge,
    # to ``<attempt>.wav`` in the PBX's recordings directory; ``record_muted`` keeps it silent
    # until the agent asks (on demand).  ``announcement`` is played to the customer first.
    record: bool = False
    record_muted: bool = False
    announcement: str = ""


@dataclass(frozen=True, slots=True)
class PlayMessageThenHangup:
    """Abandon path (identification message) or machine message."""

    message: str  # a sound file name the PBX knows, without extension


@dataclass(frozen=True, slots=True)
class HangupCall:
    cause: int = Q850.NORMAL_CLEARING


AnswerDecision = ConnectToAgent | PlayMessageThenHangup | HangupCall


class AnswerRouter(Protocol):
    """Decides what to do with an answered call (the runtime implements it).

    Called by the adapter once per answered attempt, from the FastAGI session
    on Asterisk or from the parked channel on FreeSWITCH.  It must answer
    quickly: the caller is waiting on the line.
    """

    async def on_answered(self, call: AnsweredCall) -> AnswerDecision: ...

    async def on_connect_failed(self, call: AnsweredCall, agent_id: str, reason: str) -> AnswerDecision:
        """The customer did not reach ``agent_id`` (see ``ConnectFailed``): decide again.

        Called by the adapter while it still holds the customer's channel; the
        reply is another ``ConnectToAgent`` within the campaign's limit, the
        identification message, or a hang-up.
        """
        ...


class PhoneLogin(Protocol):
    """Signs in an agent who dialed the login extension (the runtime implements it).

    Returns None when the agent is signed in, else why not (wrong PIN,
    unknown or disabled agent): the caller says so on the phone and logs it.
    ``leg_id`` is the phone leg's PBX id; its hang-up ends the agent's dialing.
    """

    async def on_phone_login(self, agent_id: str, pin: str, leg_id: str) -> str | None: ...


class PbxError(Exception):
    """A PBX action failed; the message says what and what to do."""


class PbxUnavailable(PbxError):
    """Not connected to the PBX: no call can be placed now."""


class ActionTimeout(PbxError):
    """The PBX did not answer an action in time."""


@runtime_checkable
class Pbx(Protocol):
    """One PBX connection as the runtime sees it.

    ``originate`` returns once the PBX has accepted the request (AMI "queued",
    ESL "+OK Job-UUID"); the outcome arrives later on ``events()``.  It raises
    ``PbxError`` when the request was refused and ``PbxUnavailable`` when it
    could not be sent.  An originate is never re-sent by the adapter: after a
    reconnect it reconciles in-flight attempts against the PBX's live channels
    and reports ``Failed(outcome=LOST)`` for those that are gone.
    """

    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    @property
    def connected(self) -> bool: ...

    def events(self) -> AsyncIterator[CallEvent]: ...

    async def originate(self, request: OriginateRequest) -> None: ...

    async def hangup(self, attempt_id: str, cause: int = Q850.NORMAL_CLEARING) -> None: ...

    async def connect_to_agent(self, attempt_id: str, agent_id: str) -> None: ...

    async def play_then_hangup(self, attempt_id: str, message: str) -> None: ...

    async def login_agent(self, agent_id: str, endpoint: str) -> str: ...

    async def live_attempts(self) -> set[str]: ...

    def set_answer_router(self, router: AnswerRouter) -> None: ...


def mask_number(number: str, keep: int = 3) -> str:
    """Mask a phone number for logs: ``+33123456789`` -> ``+33******789``."""
    digits = [i for i, c in enumerate(number) if c.isdigit()]
    if len(digits) <= keep:
        return "*" * len(number)
    shown_prefix = 2 if number.startswith("+") else 0
    out = list(number)
    for n, i in enumerate(digits):
        if n < shown_prefix or n >= len(digits) - keep:
            continue
        out[i] = "*"
    return "".join(out)
