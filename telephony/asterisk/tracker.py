"""Turns the AMI event stream into normalized call events, one attempt at a time.

Sans-IO: ``feed(message, at)`` in, ``CallEvent`` list out.  The adapter owns the
socket and the clock; this module owns every rule that says how an Asterisk
call ended, so the rules are replayed against the recorded captures without a
network.

How an attempt is recognised (see ../shared/asterisk-transcripts/README.md):

- ``OriginateResponse`` by ``ActionID`` (its ``Uniqueid`` is ``<unknown>`` on a
  failure unless ``ChannelId`` was preset);
- channel events by ``Uniqueid``: the preset ``ChannelId``, or, when none was
  preset, the ``;1`` half of a Local channel learned from the
  ``OriginateResponse`` or from the ``VarSet`` of ``ATTEMPT`` / ``DIALER_ATTEMPT``.
  The ``;2`` half runs the callee's dialplan and is never tracked;
- AMD verdicts by the ``Attempt`` header of ``UserEvent: DialerAMD``.

How it ended: ``Reason 4`` answered, ``3`` no answer, ``5`` busy, ``8``
congestion (Local channels); ``Reason 0`` (every SIP refusal) leaves it to the
tracked channel's ``Hangup`` ``Cause``; ``Reason 0`` with no channel at all is
a failed originate.  The ``Hangup`` may come before or after the
``OriginateResponse``; messages may come twice.  Each attempt emits each
normalized event at most once.  An Originate that Asterisk refuses at once
(``Response: Error``, e.g. ``Originate Access Forbidden``) never gets an
``OriginateResponse``: it failed.

A PBX restart: the least-privilege manager user never receives ``Event:
Shutdown`` (it is in the ``system`` class).  What it does see is
``SoftHangupRequest`` with ``Cause: 4`` (AST_SOFTHANGUP_SHUTDOWN) on every
channel, then the link closing.  A call cut that way is ``lost``: a ringing
one says nothing about the number (its cause is 0), an answered one that
was not yet with an agent never had its chance.

Agent bridges (``agent_<id>``): a customer is connected when Asterisk says
its channel joined the agent's bridge (``ConfbridgeJoin``), not when we
asked; a bridge that the customer's join *started* (``ConfbridgeStart``
first) had no agent in it, so that is a failed connect.  Agent legs are
learnt from our own login originates and from any channel that joins an
``agent_<id>`` bridge as a non-admin member; their hang-up is reported as
``AgentLegEnded`` so the agent leaves dialing at once.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping

from telephony.asterisk.protocol import AmiMessage
from telephony.base import (
    Q850,
    AgentLegEnded,
    AmdDetected,
    AmdResult,
    Answered,
    CallEvent,
    Connected,
    ConnectFailed,
    Failed,
    HungUp,
    Outcome,
    Ringing,
    outcome_for_cause,
)

UNKNOWN_UNIQUEID = "<unknown>"
ATTEMPT_VARIABLES = frozenset({"ATTEMPT", "DIALER_ATTEMPT"})
AMD_USER_EVENT = "DialerAMD"

# OriginateResponse Reason (Asterisk AST_CONTROL_* of the outgoing leg).
REASON_NO_ANSWER = 3
REASON_ANSWERED = 4
REASON_BUSY = 5
REASON_CONGESTION = 8

# SoftHangupRequest Cause bits (AST_SOFTHANGUP_*): 4 is a shutdown or restart of Asterisk.
SOFTHANGUP_SHUTDOWN = 4
AGENT_BRIDGE_PREFIX = "agent_"
RESTART_DETAIL = "cut by a PBX restart"

# Channel states of Newstate / CoreShowChannel.
STATE_RINGING = "5"
STATE_UP = "6"

_AMD_RESULTS = {
    "HUMAN": AmdResult.PERSON,
    "MACHINE": AmdResult.MACHINE,
    "NOTSURE": AmdResult.UNKNOWN,
}
# AMDSTATUS HANGUP means the callee left during detection: the Hangup says it,
# no verdict is reported.

_LABELS_KEPT = 50_000
PENDING = "pending"


class _Call:
    """What the tracker knows of one attempt."""

    __slots__ = (
        "action_id",
        "agent_id",
        "amd",
        "answered",
        "attempt_id",
        "channel_seen",
        "final",
        "finished_at",
        "hangup_at",
        "hangup_cause",
        "hangup_requested",
        "hangup_seen",
        "hangup_text",
        "joined",
        "outcome",
        "reason",
        "registered_at",
        "response_seen",
        "ringing",
        "shutdown",
        "uniqueid",
    )

    def __init__(self, attempt_id: str, action_id: str, uniqueid: str | None, at: float) -> None:
        self.attempt_id = attempt_id
        self.action_id = action_id
        self.uniqueid = uniqueid
        self.registered_at = at
        self.response_seen = False
        self.reason = -1
        self.channel_seen = False
        self.hangup_seen = False
        self.hangup_cause = 0
        self.hangup_text = ""
        self.hangup_at = 0.0
        self.hangup_requested = False
        self.ringing = False
        self.answered = False
        self.amd: AmdResult | None = None
        self.final = False
        self.outcome: Outcome | None = None
        self.finished_at = 0.0
        self.shutdown = False  # SoftHangupRequest Cause 4: Asterisk is going down
        self.agent_id: str | None = None  # set for an agent's own phone leg
        self.joined: str | None = None  # the first agent bridge the customer entered

    def label(self) -> str:
        if self.answered:
            if self.amd is AmdResult.PERSON:
                return "answered:person"
            if self.amd is AmdResult.MACHINE:
                return "answered:machine"
            return "answered"
        if self.outcome is not None:
            return self.outcome.value
        return PENDING


def _int(value: str | None, default: int) -> int:
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        return default


Handler = Callable[[AmiMessage, float], list[CallEvent]]


class _Bridge:
    """Who is in one ``agent_<id>`` bridge, as far as the events told us.

    ``complete`` once we saw it start: from then on we know every member.
    """

    __slots__ = ("agents", "complete")

    def __init__(self, complete: bool) -> None:
        self.complete = complete
        self.agents: set[str] = set()  # Uniqueids of the agent legs in it


def agent_of_bridge(conference: str) -> str | None:
    if conference.startswith(AGENT_BRIDGE_PREFIX) and len(conference) > len(AGENT_BRIDGE_PREFIX):
        return conference[len(AGENT_BRIDGE_PREFIX) :]
    return None


class CallTracker:
    """Per-attempt call state from AMI events; see the module docstring for the rules.

    Memory stays bounded: an attempt is forgotten once both its
    ``OriginateResponse`` and its ``Hangup`` have been seen (or, via
    ``expire``, a grace period after its last event); only its outcome label
    is kept, in a bounded table.
    """

    __slots__ = (
        "_bridges",
        "_by_action",
        "_by_uniqueid",
        "_calls",
        "_dialin_legs",
        "_ended_channels",
        "_handlers",
        "_labels",
        "grace_s",
        "ignored",
        "restarting",
    )

    def __init__(self, grace_s: float = 30.0) -> None:
        self._calls: dict[str, _Call] = {}
        self._by_action: dict[str, _Call] = {}
        self._by_uniqueid: dict[str, _Call] = {}
        self._labels: OrderedDict[str, str] = OrderedDict()
        self.grace_s = grace_s
        self.ignored = 0  # events naming an attempt we do not know (another dialer, a forgotten call)
        self._bridges: dict[str, _Bridge] = {}
        self._dialin_legs: dict[str, str] = {}  # Uniqueid of an agent leg we did not originate -> agent
        self._ended_channels: OrderedDict[str, None] = OrderedDict()  # those already reported ended
        self.restarting = False  # the PBX said it is going down (SoftHangupRequest 4)
        self._handlers: dict[str, Handler] = {
            "OriginateResponse": self._on_originate_response,
            "Hangup": self._on_hangup,
            "Newstate": self._on_newstate,
            "Newchannel": self._on_newchannel,
            "VarSet": self._on_varset,
            "UserEvent": self._on_user_event,
            "Shutdown": self._on_shutdown,
            "SoftHangupRequest": self._on_soft_hangup_request,
            "ConfbridgeStart": self._on_confbridge_start,
            "ConfbridgeEnd": self._on_confbridge_end,
            "ConfbridgeJoin": self._on_confbridge_join,
            "ConfbridgeLeave": self._on_confbridge_leave,
        }

    # ------------------------------------------------------------------
    # What the adapter tells us

    def register_originate(self, attempt_id: str, action_id: str, channel_id: str | None, at: float) -> None:
        """An Originate is about to be sent: remember how to recognise its events."""
        if attempt_id in self._calls:
            raise ValueError(f"attempt {attempt_id!r} is already tracked; an attempt is dialed once")
        call = _Call(attempt_id, action_id, channel_id, at)
        self._calls[attempt_id] = call
        self._by_action[action_id] = call
        if channel_id is not None:
            self._by_uniqueid[channel_id] = call

    def register_agent_leg(
        self, leg_id: str, agent_id: str, at: float, channel_id: str | None = None
    ) -> None:
        """Our Originate of an agent's phone into ``agent_<id>``: its end is ``AgentLegEnded``."""
        self.register_originate(leg_id, leg_id, channel_id, at)
        self._calls[leg_id].agent_id = agent_id

    def agent_legs(self) -> dict[str, str]:
        """Live agent legs we know of: leg id (Uniqueid) -> agent id."""
        legs = {a: c.agent_id for a, c in self._calls.items() if c.agent_id is not None and not c.final}
        legs.update(self._dialin_legs)
        return legs

    def note_hangup_requested(self, attempt_id: str) -> None:
        """We sent a Hangup for this attempt: an unanswered end is then ours (cancelled)."""
        call = self._calls.get(attempt_id)
        if call is not None:
            call.hangup_requested = True

    def forget_attempt(self, attempt_id: str) -> None:
        """Drop an attempt whose Originate was refused before Asterisk queued it."""
        call = self._calls.get(attempt_id)
        if call is not None:
            self._forget(call)

    def outcome_label(self, attempt_id: str) -> str:
        """``answered:person``, ``answered:machine``, ``answered``, an Outcome value, or ``pending``."""
        call = self._calls.get(attempt_id)
        if call is not None:
            return call.label()
        label = self._labels.get(attempt_id)
        if label is None:
            raise KeyError(f"attempt {attempt_id!r} was never registered (or is too old to remember)")
        return label

    def in_flight(self) -> list[str]:
        """Attempts with no final event yet."""
        return [a for a, c in self._calls.items() if not c.final]

    def uniqueid_of(self, attempt_id: str) -> str | None:
        call = self._calls.get(attempt_id)
        return None if call is None else call.uniqueid

    def __len__(self) -> int:
        return len(self._calls)

    # ------------------------------------------------------------------
    # The event stream

    def feed(self, msg: AmiMessage, at: float) -> list[CallEvent]:
        event = msg.get("Event")
        if event is None:
            if msg.get("Response") == "Error":
                return self._on_refused(msg, at)
            return []
        handler = self._handlers.get(event)
        if handler is None:
            return []
        return handler(msg, at)

    def _on_refused(self, msg: AmiMessage, at: float) -> list[CallEvent]:
        """``Response: Error`` to an Originate: Asterisk will send no OriginateResponse."""
        call = self._by_action.get(msg.get("ActionID", ""))
        if call is None or call.response_seen or call.channel_seen or call.final:
            return []
        call.response_seen = True
        out: list[CallEvent] = []
        detail = f"Originate refused: {msg.get('Message', 'no reason given')}"
        self._finish(call, Failed(call.attempt_id, at, Outcome.FAILED, None, detail), out)
        self._forget(call)
        return out

    def _on_originate_response(self, msg: AmiMessage, at: float) -> list[CallEvent]:
        call = self._by_action.get(msg.get("ActionID", ""))
        if call is None:
            self.ignored += 1
            return []
        if call.response_seen:
            return []
        call.response_seen = True
        call.reason = reason = _int(msg.get("Reason"), 0)
        uid = msg.get("Uniqueid")
        if uid and uid != UNKNOWN_UNIQUEID and call.uniqueid is None:
            self._learn(call, uid)
        out: list[CallEvent] = []
        if call.final:
            pass
        elif reason == REASON_ANSWERED:
            self._answer(call, at, out)
            if call.hangup_seen:
                self._finish(call, self._hung_up(call, at), out)
        elif reason == REASON_NO_ANSWER:
            cause = call.hangup_cause if call.hangup_seen and call.hangup_cause else None
            self._finish(call, Failed(call.attempt_id, at, Outcome.NO_ANSWER, cause, "Reason 3"), out)
        elif reason == REASON_BUSY:
            self._finish(call, Failed(call.attempt_id, at, Outcome.BUSY, Q850.USER_BUSY, "Reason 5"), out)
        elif reason == REASON_CONGESTION:
            cause = Q850.NORMAL_CIRCUIT_CONGESTION
            failed = Failed(call.attempt_id, at, Outcome.CONGESTION, cause, "Reason 8")
            self._finish(call, failed, out)
        elif call.hangup_seen:
            self._finish(call, self._unanswered_end(call, at), out)
        elif not call.channel_seen:
            detail = f"Reason {reason}: no channel was created (check the dial string and the trunk)"
            self._finish(call, Failed(call.attempt_id, at, Outcome.FAILED, None, detail), out)
        # else: a channel exists; its Hangup cause will decide.
        if call.final and (call.hangup_seen or not call.channel_seen):
            self._forget(call)
        return out

    def _on_hangup(self, msg: AmiMessage, at: float) -> list[CallEvent]:
        uid = msg.get("Uniqueid", "")
        call = self._by_uniqueid.get(uid)
        if call is None:
            agent = self._dialin_legs.pop(uid, None)
            if agent is None:
                return []
            self._leg_ended(uid)
            cause = _int(msg.get("Cause"), 0)
            return [AgentLegEnded(uid, at, agent, cause, msg.get("Cause-txt", ""))]
        if call.hangup_seen:
            return []
        call.channel_seen = True
        call.hangup_seen = True
        call.hangup_cause = _int(msg.get("Cause"), 0)
        call.hangup_text = msg.get("Cause-txt", "")
        call.hangup_at = at
        out: list[CallEvent] = []
        if not call.final:
            if call.answered:
                self._finish(call, self._hung_up(call, at), out)
            elif call.response_seen:
                self._finish(call, self._unanswered_end(call, at), out)
            # else: the OriginateResponse (still to come) says whether it was answered.
        if call.final and call.response_seen:
            self._forget(call)
        return out

    def _on_newchannel(self, msg: AmiMessage, at: float) -> list[CallEvent]:
        call = self._by_uniqueid.get(msg.get("Uniqueid", ""))
        if call is not None:
            call.channel_seen = True
        return []

    def _on_newstate(self, msg: AmiMessage, at: float) -> list[CallEvent]:
        call = self._by_uniqueid.get(msg.get("Uniqueid", ""))
        if call is None:
            return []
        call.channel_seen = True
        if call.final or call.answered:
            return []
        state = msg.get("ChannelState")
        out: list[CallEvent] = []
        if state == STATE_UP:
            self._answer(call, at, out)
        elif state == STATE_RINGING and not call.ringing:
            call.ringing = True
            out.append(Ringing(call.attempt_id, at))
        return out

    def _on_varset(self, msg: AmiMessage, at: float) -> list[CallEvent]:
        if msg.get("Variable") not in ATTEMPT_VARIABLES:
            return []
        channel = msg.get("Channel", "")
        if channel.endswith(";2"):
            return []  # the callee half of a Local channel
        call = self._calls.get(msg.get("Value", ""))
        uid = msg.get("Uniqueid")
        if call is None or not uid:
            return []
        if call.uniqueid is None:
            self._learn(call, uid)
        if call.uniqueid == uid:
            call.channel_seen = True
        return []

    def _on_user_event(self, msg: AmiMessage, at: float) -> list[CallEvent]:
        if msg.get("UserEvent") != AMD_USER_EVENT:
            return []
        call = self._calls.get(msg.get("Attempt", "")) or self._by_uniqueid.get(msg.get("Uniqueid", ""))
        if call is None or call.amd is not None:
            return []
        result = _AMD_RESULTS.get(msg.get("Status", "").upper())
        if result is None:
            return []
        call.amd = result
        out: list[CallEvent] = []
        if not call.final:
            self._answer(call, at, out)  # detection runs only on an answered channel
        out.append(AmdDetected(call.attempt_id, at, result, msg.get("Cause", "")))
        return out

    def _on_soft_hangup_request(self, msg: AmiMessage, at: float) -> list[CallEvent]:
        if _int(msg.get("Cause"), 0) & SOFTHANGUP_SHUTDOWN == 0:
            return []
        self.restarting = True
        call = self._by_uniqueid.get(msg.get("Uniqueid", ""))
        if call is not None:
            call.shutdown = True
        return []

    def _on_confbridge_start(self, msg: AmiMessage, at: float) -> list[CallEvent]:
        conference = msg.get("Conference", "")
        if agent_of_bridge(conference) is not None and conference not in self._bridges:
            self._bridges[conference] = _Bridge(complete=True)
        return []

    def _on_confbridge_end(self, msg: AmiMessage, at: float) -> list[CallEvent]:
        self._bridges.pop(msg.get("Conference", ""), None)
        return []

    def _on_confbridge_join(self, msg: AmiMessage, at: float) -> list[CallEvent]:
        conference = msg.get("Conference", "")
        agent = agent_of_bridge(conference)
        uid = msg.get("Uniqueid", "")
        if agent is None or not uid:
            return []
        bridge = self._bridges.get(conference)
        if bridge is None:
            bridge = self._bridges[conference] = _Bridge(complete=False)
        call = self._by_uniqueid.get(uid)
        out: list[CallEvent] = []
        if call is not None and call.agent_id is None:
            # A customer: connected only if the agent is there to talk to.
            if call.joined is None and not call.final:
                call.joined = conference
                if bridge.complete and not bridge.agents:
                    reason = f"the bridge {conference} had no agent in it (the agent's phone had left)"
                    out.append(ConnectFailed(call.attempt_id, at, agent, reason))
                else:
                    out.append(Connected(call.attempt_id, at, agent))
        elif msg.get("Admin", "No") != "Yes" and uid not in self._labels and uid not in self._ended_channels:
            bridge.agents.add(uid)
            if call is None:
                self._dialin_legs.setdefault(uid, agent)
        return out

    def _on_confbridge_leave(self, msg: AmiMessage, at: float) -> list[CallEvent]:
        bridge = self._bridges.get(msg.get("Conference", ""))
        if bridge is not None:
            bridge.agents.discard(msg.get("Uniqueid", ""))
        return []

    def _on_shutdown(self, msg: AmiMessage, at: float) -> list[CallEvent]:
        detail = "Asterisk shut down" + (" to restart" if msg.get("Restart", "").lower() == "true" else "")
        return self.end_all(at, detail)

    # ------------------------------------------------------------------
    # Ends decided outside the event stream

    def end_all(self, at: float, detail: str) -> list[CallEvent]:
        """Every live call is over (PBX shut down): answered ones hung up, others lost."""
        out: list[CallEvent] = []
        for call in list(self._calls.values()):
            if not call.final:
                self._finish(call, self._lost_end(call, at, detail), out)
            self._forget(call)
        out.extend(self._end_dialin_legs(at, detail))
        self._bridges.clear()
        return out

    def _end_dialin_legs(
        self, at: float, detail: str, live: Mapping[str, str] | None = None
    ) -> list[CallEvent]:
        out: list[CallEvent] = []
        for uid, agent in list(self._dialin_legs.items()):
            if live is None or uid not in live:
                del self._dialin_legs[uid]
                self._leg_ended(uid)
                out.append(AgentLegEnded(uid, at, agent, 0, detail))
        return out

    def reconcile(
        self, attempts: Iterable[str], live: Mapping[str, str], at: float, detail: str
    ) -> list[CallEvent]:
        """After a reconnect: ``live`` maps each live channel Uniqueid to its ChannelState.

        An attempt of ``attempts`` whose channel is gone and that has no outcome
        gets one now (answered ones ``HungUp``, the others ``Failed(LOST)``);
        one whose channel is up but whose answer was missed gets ``Answered``.
        """
        out: list[CallEvent] = []
        for attempt_id in attempts:
            call = self._calls.get(attempt_id)
            if call is None or call.final:
                continue
            state = live.get(call.uniqueid) if call.uniqueid is not None else None
            if state is not None:
                if state == STATE_UP:
                    self._answer(call, at, out)
                continue
            self._finish(call, self._lost_end(call, at, detail), out)
            self._forget(call)
        out.extend(self._end_dialin_legs(at, detail, live))
        if self.restarting:
            self._bridges.clear()  # a restarted PBX has no bridge left
            self.restarting = False
        return out

    def expire(self, now: float) -> list[CallEvent]:
        """Housekeeping: decide and forget calls whose missing message is not coming.

        A call hung up long ago whose OriginateResponse never came is decided
        from its Hangup cause; a finished call whose last message never came is
        forgotten.
        """
        out: list[CallEvent] = []
        limit = now - self.grace_s
        for call in list(self._calls.values()):
            if call.final:
                if call.finished_at < limit:
                    self._forget(call)
            elif call.hangup_seen and call.hangup_at < limit:
                self._finish(call, self._unanswered_end(call, now), out)
                self._forget(call)
        return out

    # ------------------------------------------------------------------

    def _unanswered_end(self, call: _Call, at: float) -> Failed:
        cause = call.hangup_cause
        outcome = outcome_for_cause(cause)
        if call.shutdown and outcome is Outcome.FAILED:
            return Failed(call.attempt_id, at, Outcome.LOST, cause, RESTART_DETAIL)
        if outcome is Outcome.FAILED and call.hangup_requested:
            outcome = Outcome.CANCELLED
        return Failed(call.attempt_id, at, outcome, cause, call.hangup_text)

    def _hung_up(self, call: _Call, at: float) -> HungUp:
        if call.shutdown:
            return HungUp(call.attempt_id, at, call.hangup_cause, RESTART_DETAIL, lost=True)
        return HungUp(call.attempt_id, at, call.hangup_cause, call.hangup_text)

    def _lost_end(self, call: _Call, at: float, detail: str) -> CallEvent:
        if call.answered:
            return HungUp(call.attempt_id, at, call.hangup_cause, detail, lost=True)
        if call.hangup_seen:
            failed = self._unanswered_end(call, at)
            if failed.outcome is not Outcome.FAILED:
                return failed
        return Failed(call.attempt_id, at, Outcome.LOST, None, detail)

    def _leg_ended(self, uid: str) -> None:
        self._ended_channels[uid] = None
        if len(self._ended_channels) > _LABELS_KEPT:
            self._ended_channels.popitem(last=False)

    def _learn(self, call: _Call, uid: str) -> None:
        call.uniqueid = uid
        self._by_uniqueid[uid] = call

    @staticmethod
    def _answer(call: _Call, at: float, out: list[CallEvent]) -> None:
        if not call.answered:
            call.answered = True
            call.channel_seen = True
            out.append(Answered(call.attempt_id, at, call.uniqueid or ""))

    @staticmethod
    def _finish(call: _Call, event: CallEvent, out: list[CallEvent]) -> None:
        call.final = True
        call.finished_at = event.at
        if isinstance(event, Failed):
            call.outcome = event.outcome
        else:
            call.outcome = Outcome.ANSWERED
        if call.agent_id is not None:
            # An agent's own phone: the runtime hears that the agent is gone, not a call outcome.
            detail = event.detail if isinstance(event, Failed) else getattr(event, "cause_text", "")
            cause = event.cause if isinstance(event, Failed | HungUp) and event.cause is not None else 0
            out.append(AgentLegEnded(call.attempt_id, event.at, call.agent_id, cause, detail))
            return
        out.append(event)

    def _forget(self, call: _Call) -> None:
        if self._calls.pop(call.attempt_id, None) is None:
            return
        if self._by_action.get(call.action_id) is call:
            del self._by_action[call.action_id]
        if call.uniqueid is not None:
            self._leg_ended(call.uniqueid)  # a late ConfbridgeJoin of it is no new agent leg
            if self._by_uniqueid.get(call.uniqueid) is call:
                del self._by_uniqueid[call.uniqueid]
        labels = self._labels
        labels[call.attempt_id] = call.label()
        if len(labels) > _LABELS_KEPT:
            labels.popitem(last=False)
