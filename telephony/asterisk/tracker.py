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
normalized event at most once.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping

from telephony.asterisk.protocol import AmiMessage
from telephony.base import (
    Q850,
    AmdDetected,
    AmdResult,
    Answered,
    CallEvent,
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
        "outcome",
        "reason",
        "registered_at",
        "response_seen",
        "ringing",
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


class CallTracker:
    """Per-attempt call state from AMI events; see the module docstring for the rules.

    Memory stays bounded: an attempt is forgotten once both its
    ``OriginateResponse`` and its ``Hangup`` have been seen (or, via
    ``expire``, a grace period after its last event); only its outcome label
    is kept, in a bounded table.
    """

    __slots__ = ("_by_action", "_by_uniqueid", "_calls", "_handlers", "_labels", "grace_s", "ignored")

    def __init__(self, grace_s: float = 30.0) -> None:
        self._calls: dict[str, _Call] = {}
        self._by_action: dict[str, _Call] = {}
        self._by_uniqueid: dict[str, _Call] = {}
        self._labels: OrderedDict[str, str] = OrderedDict()
        self.grace_s = grace_s
        self.ignored = 0  # events naming an attempt we do not know (another dialer, a forgotten call)
        self._handlers: dict[str, Handler] = {
            "OriginateResponse": self._on_originate_response,
            "Hangup": self._on_hangup,
            "Newstate": self._on_newstate,
            "Newchannel": self._on_newchannel,
            "VarSet": self._on_varset,
            "UserEvent": self._on_user_event,
            "Shutdown": self._on_shutdown,
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
            return []
        handler = self._handlers.get(event)
        if handler is None:
            return []
        return handler(msg, at)

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
                self._finish(call, HungUp(call.attempt_id, at, call.hangup_cause, call.hangup_text), out)
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
        call = self._by_uniqueid.get(msg.get("Uniqueid", ""))
        if call is None or call.hangup_seen:
            return []
        call.channel_seen = True
        call.hangup_seen = True
        call.hangup_cause = _int(msg.get("Cause"), 0)
        call.hangup_text = msg.get("Cause-txt", "")
        call.hangup_at = at
        out: list[CallEvent] = []
        if not call.final:
            if call.answered:
                self._finish(call, HungUp(call.attempt_id, at, call.hangup_cause, call.hangup_text), out)
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
        if outcome is Outcome.FAILED and call.hangup_requested:
            outcome = Outcome.CANCELLED
        return Failed(call.attempt_id, at, outcome, cause, call.hangup_text)

    def _lost_end(self, call: _Call, at: float, detail: str) -> CallEvent:
        if call.answered:
            return HungUp(call.attempt_id, at, call.hangup_cause, detail)
        if call.hangup_seen:
            failed = self._unanswered_end(call, at)
            if failed.outcome is not Outcome.FAILED:
                return failed
        return Failed(call.attempt_id, at, Outcome.LOST, None, detail)

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
        out.append(event)

    def _forget(self, call: _Call) -> None:
        if self._calls.pop(call.attempt_id, None) is None:
            return
        if self._by_action.get(call.action_id) is call:
            del self._by_action[call.action_id]
        if call.uniqueid is not None and self._by_uniqueid.get(call.uniqueid) is call:
            del self._by_uniqueid[call.uniqueid]
        labels = self._labels
        labels[call.attempt_id] = call.label()
        if len(labels) > _LABELS_KEPT:
            labels.popitem(last=False)
