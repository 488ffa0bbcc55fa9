"""Sans-IO call tracker for FreeSWITCH: ESL events in, normalized ``CallEvent``s out.

Every call the dialer places is ``bgapi originate {origination_uuid=<attempt>}``
with ``Job-UUID: <attempt>-job``, so the channel's ``Unique-ID`` *is* the
attempt id and the BACKGROUND_JOB (which has no Unique-ID) is matched by its
Job-UUID.  Caller-* fields are never used: they swap when an originated leg
enters the dialplan.

What decides an outcome (see the capture README):

- ``+OK <uuid>`` job body, or CHANNEL_ANSWER: answered; a CUSTOM avmd::beep
  for the uuid makes it a machine.  avmd::stop's ``Beep-Status`` is ignored
  (``api avmd <uuid> stop`` reports a beep that never happened).
- ``-ERR <CAUSE>`` with no CHANNEL_CREATE: failed (no channel, e.g.
  INVALID_PROFILE).
- ``-ERR <CAUSE>`` with a channel: the cause, cross-checked with the
  CHANNEL_HANGUP_COMPLETE ``Hangup-Cause``.  The job and the hang-up come in
  either order, so the verdict waits for both.  NORMAL_CLEARING after our own
  ``uuid_kill`` of an unanswered call is ``cancelled``; SYSTEM_SHUTDOWN (the
  switch restarted while the call rang) is ``lost``.  An answered call cut by
  the shutdown ends with ``HungUp`` as any other.

Feeding the same event twice, or events in either order, gives the same
events out once.  Finished attempts leave the live table; only their outcome
label is kept, in a bounded table.
"""

from __future__ import annotations

import contextlib
import logging
from collections import OrderedDict
from dataclasses import dataclass, field

from telephony.base import (
    Q850,
    AmdDetected,
    AmdResult,
    Answered,
    CallEvent,
    Connected,
    Failed,
    HungUp,
    Outcome,
    Ringing,
    outcome_for_cause,
)
from telephony.freeswitch.protocol import EslEvent, EslFrame

log = logging.getLogger(__name__)

# FreeSWITCH cause names that are not Q.850 names, mapped to the Q.850 value
# the dialer reasons about (switch_cause_t in switch_types.h).
_EXTRA_CAUSES: dict[str, int] = {
    "ORIGINATOR_CANCEL": Q850.NORMAL_CLEARING,  # 487: the A side gave up (our kill)
    "PROGRESS_TIMEOUT": Q850.NO_ANSWER,
    "NO_PICKUP": Q850.NO_ANSWER,
    "USER_NOT_REGISTERED": Q850.SUBSCRIBER_ABSENT,
    "NORMAL_CIRCUIT_CONGESTION": Q850.NORMAL_CIRCUIT_CONGESTION,
}
# Our kill of a ringing call ends with one of these: "cancelled", not a failure.
_KILL_CAUSES = frozenset({"NORMAL_CLEARING", "ORIGINATOR_CANCEL"})
# The switch itself went away while the call rang (``fsctl shutdown restart``, a crash
# caught by the core): the number was never really tried, so "lost", not "failed"
# (SYSTEM_SHUTDOWN carries q850 16, which would read as a plain failure).
_LOST_CAUSES = frozenset({"SYSTEM_SHUTDOWN", "CRASH"})

AMD_WORDS: dict[str, AmdResult] = {
    "HUMAN": AmdResult.PERSON,
    "PERSON": AmdResult.PERSON,
    "MACHINE": AmdResult.MACHINE,
    "NOTSURE": AmdResult.UNKNOWN,
    "UNKNOWN": AmdResult.UNKNOWN,
}

DEFAULT_MAX_FINISHED = 50_000
DEFAULT_MAX_LIVE = 50_000


def cause_code(name: str) -> int | None:
    """Q.850 value of a FreeSWITCH cause name, None when unknown."""
    try:
        return int(Q850[name])
    except KeyError:
        return _EXTRA_CAUSES.get(name)


@dataclass(slots=True)
class AttemptState:
    """What the tracker knows about one live attempt (read-only for callers)."""

    attempt_id: str
    job_uuid: str
    registered_at: float
    created: bool = False
    ringing: bool = False
    answered: bool = False
    answered_at: float | None = None
    parked: bool = False
    kill_requested: bool = False
    job_body: str | None = None  # "+OK <uuid>" / "-ERR <CAUSE>"
    hangup_cause: str | None = None  # CHANNEL_HANGUP(_COMPLETE) Hangup-Cause
    hangup_q850: int | None = None
    hangup_complete: bool = False
    amd: AmdResult | None = None
    amd_detail: str = ""
    connected_agent: str | None = None
    avmd_sequences: set[str] = field(default_factory=set)


class FreeSwitchCallTracker:
    """Turns ESL events into ``CallEvent``s for the attempts registered with it.

    ``amd_variable`` names a channel variable set by a person/machine
    classifier in the dialplan (``variable_<name>`` = HUMAN / MACHINE /
    NOTSURE); avmd beeps are always honoured.
    """

    def __init__(
        self,
        *,
        amd_variable: str | None = None,
        max_finished: int = DEFAULT_MAX_FINISHED,
        max_live: int = DEFAULT_MAX_LIVE,
    ) -> None:
        self._amd_header = f"variable_{amd_variable}" if amd_variable else None
        self._live: dict[str, AttemptState] = {}
        self._by_job: dict[str, str] = {}
        self._finished: OrderedDict[str, str] = OrderedDict()
        self._max_finished = max_finished
        self._max_live = max_live
        self.ignored_events = 0  # events for uuids we never placed (other traffic on the switch)
        self.cause_mismatches = 0  # job cause != channel hang-up cause (logged)
        self.dropped_live = 0  # live attempts evicted because the table was full

    # -- registration -------------------------------------------------------

    def register_originate(self, attempt_id: str, job_uuid: str, at: float) -> None:
        """Called just before ``bgapi originate`` is written.  Idempotent."""
        if attempt_id in self._live or attempt_id in self._finished:
            return
        if len(self._live) >= self._max_live:
            oldest = next(iter(self._live))
            log.error("freeswitch tracker full (%d live attempts): forgetting %s", self._max_live, oldest)
            self._forget(oldest)
            self.dropped_live += 1
        self._live[attempt_id] = AttemptState(attempt_id, job_uuid, at)
        self._by_job[job_uuid] = attempt_id

    def note_kill_requested(self, attempt_id: str) -> None:
        """We sent ``uuid_kill``: NORMAL_CLEARING without answer means cancelled."""
        state = self._live.get(attempt_id)
        if state is not None:
            state.kill_requested = True

    # -- queries ------------------------------------------------------------

    def attempt(self, attempt_id: str) -> AttemptState | None:
        return self._live.get(attempt_id)

    def live_ids(self) -> list[str]:
        return list(self._live)

    def is_finished(self, attempt_id: str) -> bool:
        return attempt_id in self._finished

    def outcome_label(self, attempt_id: str) -> str | None:
        """The outcome in the capture vocabulary (``answered:machine``, ``busy``...), None if open."""
        return self._finished.get(attempt_id)

    # -- events -------------------------------------------------------------

    def feed(self, item: EslFrame | EslEvent, at: float) -> list[CallEvent]:
        if isinstance(item, EslFrame):
            if not item.is_event:
                return []
            item = item.event
        name = item.get("Event-Name")
        if name == "BACKGROUND_JOB":
            return self._on_job(item, at)
        uid = item.get("Unique-ID")
        if uid is None:
            return []
        state = self._live.get(uid)
        if state is None:
            if uid not in self._finished:
                self.ignored_events += 1
            return []
        out: list[CallEvent] = []
        if name == "CHANNEL_CREATE":
            state.created = True
        elif name in ("CHANNEL_PROGRESS", "CHANNEL_PROGRESS_MEDIA"):
            state.created = True
            if not state.ringing and not state.answered:
                state.ringing = True
                out.append(Ringing(uid, at))
        elif name == "CHANNEL_ANSWER":
            state.created = True
            self._answer(state, at, out)
        elif name == "CHANNEL_PARK":
            state.parked = True
        elif name == "CUSTOM":
            self._on_custom(state, item, at, out)
        elif name in ("CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE"):
            state.created = True
            self._on_hangup(state, item, name == "CHANNEL_HANGUP_COMPLETE", at, out)
            return out
        if self._amd_header is not None and state.answered and state.amd is None:
            word = item.get(self._amd_header)
            if word:
                self._amd(state, AMD_WORDS.get(word.upper(), AmdResult.UNKNOWN), word, at, out)
        return out

    def _answer(self, state: AttemptState, at: float, out: list[CallEvent]) -> None:
        if state.answered:
            return
        state.answered = True
        state.answered_at = at
        out.append(Answered(state.attempt_id, at, pbx_id=state.attempt_id))

    def _amd(
        self, state: AttemptState, result: AmdResult, detail: str, at: float, out: list[CallEvent]
    ) -> None:
        if state.amd is not None:
            return
        state.amd = result
        state.amd_detail = detail
        out.append(AmdDetected(state.attempt_id, at, result=result, detail=detail))

    def _on_custom(self, state: AttemptState, event: EslEvent, at: float, out: list[CallEvent]) -> None:
        subclass = event.get("Event-Subclass")
        if subclass == "avmd::beep":
            # Every avmd event comes twice (bare, then with channel data) with one Event-Sequence.
            seq = event.get("Event-Sequence") or ""
            if seq in state.avmd_sequences:
                return
            state.avmd_sequences.add(seq)
            freq = event.get("Frequency") or "?"
            with contextlib.suppress(ValueError):
                freq = f"{float(freq):.0f}"
            self._amd(state, AmdResult.MACHINE, f"beep {freq} Hz", at, out)
        elif subclass == "conference::maintenance" and event.get("Action") == "add-member":
            conference = event.get("Conference-Name") or ""
            if conference.startswith("agent_") and state.connected_agent is None:
                state.connected_agent = conference.removeprefix("agent_")
                out.append(Connected(state.attempt_id, at, agent_id=state.connected_agent))

    def _on_job(self, event: EslEvent, at: float) -> list[CallEvent]:
        job = event.get("Job-UUID")
        if job is None:
            return []
        attempt_id = self._by_job.get(job)
        if attempt_id is None:
            return []
        state = self._live[attempt_id]
        if state.job_body is not None:
            return []
        body = event.body.strip()
        state.job_body = body
        out: list[CallEvent] = []
        if body.startswith("+OK"):
            # The job can beat CHANNEL_ANSWER onto the socket; +OK means answered either way.
            state.created = True
            self._answer(state, at, out)
        else:
            self._try_fail(state, at, out)
        return out

    def _on_hangup(
        self, state: AttemptState, event: EslEvent, complete: bool, at: float, out: list[CallEvent]
    ) -> None:
        cause = event.get("Hangup-Cause")
        if cause and state.hangup_cause is None:
            state.hangup_cause = cause
        q850 = event.get("variable_hangup_cause_q850")
        if q850 and q850.isdigit():
            state.hangup_q850 = int(q850)
        if not complete or state.hangup_complete:
            return
        state.hangup_complete = True
        if state.answered:
            code = state.hangup_q850
            if code is None and state.hangup_cause:
                code = cause_code(state.hangup_cause)
            # cut by the switch itself (restart): lost, not a party hanging up
            lost = state.hangup_cause in _LOST_CAUSES
            out.append(
                HungUp(state.attempt_id, at, cause=code or 0, cause_text=state.hangup_cause or "", lost=lost)
            )
            self._finish(state, self._answered_label(state))
        else:
            self._try_fail(state, at, out)

    def _try_fail(self, state: AttemptState, at: float, out: list[CallEvent]) -> None:
        """Emit Failed once both halves are in: the job's -ERR and the channel's end (or no channel)."""
        if state.answered or state.job_body is None:
            return
        if state.created and not state.hangup_complete:
            return  # the channel's own hang-up is still to come
        job_cause = state.job_body.removeprefix("-ERR").strip() or "UNKNOWN"
        if not state.created:
            outcome = Outcome.FAILED
            code = cause_code(job_cause)
        else:
            channel_cause = state.hangup_cause or job_cause
            if channel_cause != job_cause:
                self.cause_mismatches += 1
                log.warning(
                    "attempt %s: originate said %s but the channel hung up with %s; using the originate's",
                    state.attempt_id,
                    job_cause,
                    channel_cause,
                )
            code = cause_code(job_cause)
            if code is None:
                code = state.hangup_q850
            if job_cause in _LOST_CAUSES:
                outcome = Outcome.LOST
            elif state.kill_requested and job_cause in _KILL_CAUSES:
                outcome = Outcome.CANCELLED
            elif code is None:
                outcome = Outcome.FAILED
            else:
                outcome = outcome_for_cause(code)
        out.append(Failed(state.attempt_id, at, outcome=outcome, cause=code, detail=state.job_body))
        self._finish(state, str(outcome))

    def note_answered(self, attempt_id: str, at: float) -> list[CallEvent]:
        """The switch shows the call up (``show channels`` after a reconnect) though we missed the answer."""
        state = self._live.get(attempt_id)
        out: list[CallEvent] = []
        if state is not None:
            state.created = True
            self._answer(state, at, out)
        return out

    def note_amd(self, attempt_id: str, result: AmdResult, detail: str, at: float) -> list[CallEvent]:
        """A verdict reached outside the event stream (the adapter's avmd window ran out).

        Like any verdict it is given once: a beep after it is not reported.
        """
        state = self._live.get(attempt_id)
        out: list[CallEvent] = []
        if state is not None and state.answered:
            self._amd(state, result, detail, at, out)
        return out

    # -- lost calls ---------------------------------------------------------

    def mark_lost(self, attempt_id: str, at: float) -> list[CallEvent]:
        """The PBX no longer has this call and will never say how it ended (reconnect)."""
        state = self._live.get(attempt_id)
        if state is None:
            return []
        if not state.answered and state.hangup_complete and state.hangup_cause:
            # We saw the channel end but its BACKGROUND_JOB went out while the link was
            # down: the channel's own cause says what the job would have said.
            state.job_body = f"-ERR {state.hangup_cause}"
            out: list[CallEvent] = []
            self._try_fail(state, at, out)
            return out
        if state.answered:
            event: CallEvent = HungUp(attempt_id, at, cause=0, cause_text="LOST", lost=True)
            self._finish(state, self._answered_label(state))
        else:
            event = Failed(attempt_id, at, outcome=Outcome.LOST, detail="channel gone after reconnect")
            self._finish(state, str(Outcome.LOST))
        return [event]

    # -- bookkeeping --------------------------------------------------------

    @staticmethod
    def _answered_label(state: AttemptState) -> str:
        if state.amd in (AmdResult.MACHINE, AmdResult.PERSON):
            return f"answered:{state.amd}"
        return "answered"

    def _finish(self, state: AttemptState, label: str) -> None:
        self._forget(state.attempt_id)
        self._finished[state.attempt_id] = label
        if len(self._finished) > self._max_finished:
            self._finished.popitem(last=False)

    def _forget(self, attempt_id: str) -> None:
        state = self._live.pop(attempt_id, None)
        if state is not None:
            self._by_job.pop(state.job_uuid, None)
