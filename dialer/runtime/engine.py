"""The campaign engine: pace, check, record, originate, follow every call to its end.

For each running campaign, every tick: ask the pacer how many lines to open,
claim that many leads, pass each through the compliance gate, write the
attempt row, and only then send the originate.  PBX events drive each call's
state machine; the outcome is written with the lead's next state.  The engine
is also the PBX's ``AnswerRouter``: an answered person gets a free agent within
the campaign's limit or the identification message (an abandoned call).

Nothing here knows which PBX it talks to, nor which database.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime

from dialer.domain.agent import AgentState
from dialer.domain.call import Call, CallInput, CallState, InvalidCallTransition, result_of
from dialer.domain.campaign import PERSON_RESULTS, CallResult
from dialer.domain.fencing import AttemptFenced
from dialer.pacing.pacers import AgentActivity, BusyAgent, Pacer, PacingSnapshot, RingOutcome
from dialer.runtime.agents import AgentRegistry
from dialer.runtime.lease import CampaignLeases
from dialer.runtime.ports import (
    AmdPolicy,
    AttemptResult,
    CampaignPlan,
    DispositionDetails,
    Gate,
    GateVerdict,
    Lead,
    Record,
)
from telephony.base import (
    AgentLegEnded,
    AmdDetected,
    AmdResult,
    AnswerDecision,
    Answered,
    AnsweredCall,
    CallEvent,
    Connected,
    ConnectFailed,
    ConnectToAgent,
    Failed,
    HangupCall,
    HungUp,
    OriginateRequest,
    Outcome,
    Pbx,
    PbxError,
    PlayMessageThenHangup,
    Ringing,
    mask_number,
)

log = logging.getLogger(__name__)

# What the pacer is told of each agent state: a reserved agent is about to talk.
_ACTIVITY = {
    AgentState.READY: AgentActivity.READY,
    AgentState.RESERVED: AgentActivity.TALK,
    AgentState.ON_CALL: AgentActivity.TALK,
    AgentState.WRAP_UP: AgentActivity.WRAP,
}

_FAILURE_INPUT = {
    Outcome.BUSY: CallInput.BUSY,
    Outcome.NO_ANSWER: CallInput.NO_ANSWER,
    Outcome.CONGESTION: CallInput.CONGESTION,
    Outcome.INVALID_NUMBER: CallInput.INVALID_NUMBER,
    Outcome.FAILED: CallInput.FAILED,
    Outcome.CANCELLED: CallInput.CANCELLED,
    Outcome.LOST: CallInput.LOST,
}


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class ActiveCall:
    lead: Lead
    plan: CampaignPlan
    call: Call
    launched_at: float
    answered_at: float | None = None
    ring_observed: bool = False  # the pacer has been told how the ringing ended
    amd: AmdResult | None = None
    amd_detail: str = ""
    agent_id: str | None = None
    cause: int | None = None
    person_observed: bool = False  # the pacer has been told whether this person was abandoned
    gate_told: set[str] = field(default_factory=set)  # outcomes already given to the gate
    writes: list[asyncio.Future[object]] = field(default_factory=list)  # its event writes under way
    served_by: str | None = None  # the agent a machine reached before its beep was heard
    originated_at: datetime | None = None  # when the PBX accepted the originate
    held_agent: str | None = None  # reserved from the dial for an agent-only callback, until the answer


@dataclass
class CampaignRun:
    plan: CampaignPlan
    pacer: Pacer
    paused: bool = False
    counts: Counter[str] = field(default_factory=Counter)


class Engine:
    """Runs campaigns on one PBX.  ``tick`` is driven by ``run``; tests call it directly."""

    def __init__(
        self,
        pbx: Pbx,
        record: Record,
        gate: Gate,
        agents: AgentRegistry,
        *,
        tick_s: float = 0.25,
        clock: Callable[[], float] = time.time,
        wall: Callable[[], datetime] = utcnow,
    ) -> None:
        self.pbx = pbx
        self.record = record
        self.gate = gate
        self.agents = agents
        self.tick_s = tick_s
        # Epoch seconds for the pacers: their abandonment history is reloaded after a restart.
        self._clock = clock
        self._wall = wall
        self.campaigns: dict[str, CampaignRun] = {}
        self.calls: dict[str, ActiveCall] = {}
        self.outcomes: Counter[str] = Counter()  # closed attempts by outcome, for the demo and metrics
        self.blocked: Counter[str] = Counter()  # gate refusals by rule
        self._blocked_reported: dict[str, tuple[float, Counter[str]]] = {}  # see _report_blocked
        self.errors: Counter[str] = Counter()  # refused transitions, failed actions, handler errors
        # Answer-to-agent seconds of the latest connected calls (the two-second promise).
        self.connect_delays: deque[float] = deque(maxlen=10_000)
        # Called as listener(attempt_id, agent_id) when a call joins an agent.
        self.connected_listeners: list[Callable[[str, str], None]] = []
        # Lines a campaign may open now on its PBX's trunk (dialer.runtime.pbx_pool); None: no shared limit.
        self.line_limit: Callable[[CampaignPlan], int] | None = None
        self._draining = False
        self._idle = asyncio.Event()  # set when the last call in progress ends and its outcome is written
        self._closing = 0  # outcomes being written
        self._wrapped_up = asyncio.Event()  # set when the last agent in wrap-up qualified the call
        # Agents in wrap-up: agent id -> (attempt id, default disposition, the limit's timer).
        self._wrapups: dict[str, tuple[str, str, asyncio.Task[None]]] = {}
        self._recording: set[asyncio.Future[object]] = set()  # writes queued after answer decisions
        self._handling: dict[str, asyncio.Future[None]] = {}  # each call's latest event being handled
        # With several nodes: a campaign is dialed only while this node holds its lease (runtime.lease).
        self.leases: CampaignLeases | None = None
        pbx.set_answer_router(self)
        agents.listeners.append(self._agent_changed)

    # -- campaigns ----------------------------------------------------------------

    def add_campaign(self, plan: CampaignPlan, pacer: Pacer) -> None:
        self.campaigns[plan.campaign_id] = CampaignRun(plan, pacer)

    def pause_campaign(self, campaign_id: str) -> None:
        self.campaigns[campaign_id].paused = True

    # -- the pacing tick -------------------------------------------------------

    def snapshot(self, run: CampaignRun) -> PacingSnapshot:
        ready = 0
        busy: list[BusyAgent] = []
        for agent in self.agents.view(run.plan.campaign_id):
            if agent.state is AgentState.READY:
                ready += 1
            elif agent.state in (AgentState.ON_CALL, AgentState.RESERVED):
                busy.append(BusyAgent(AgentActivity.TALK, agent.since))
            elif agent.state is AgentState.WRAP_UP:
                busy.append(BusyAgent(AgentActivity.WRAP, agent.since))
        dialing: list[float] = []
        waiting = 0
        for c in self.calls.values():
            if c.plan.campaign_id != run.plan.campaign_id:
                continue
            if c.call.state in (CallState.NEW, CallState.DIALING, CallState.RINGING):
                dialing.append(c.launched_at)
            elif c.call.state in (CallState.ANSWERED, CallState.WAITING):
                waiting += 1  # a person in detection or waiting for an agent (not yet one reserved)
        return PacingSnapshot(ready, busy, dialing, persons_waiting=waiting)

    async def tick(self) -> int:
        """One pacing round over every running campaign; returns the number of originates sent."""
        if self._draining or not self.pbx.connected:
            return 0
        sent = 0
        for run in list(self.campaigns.values()):
            self._report_blocked(run)
            if run.paused:
                continue
            if self.leases is not None and self.leases.token(run.plan.campaign_id) is None:
                continue  # another node paces it
            lines = run.pacer.lines_to_open(self.snapshot(run), self._clock())
            live = sum(1 for c in self.calls.values() if c.plan.campaign_id == run.plan.campaign_id)
            lines = min(lines, run.plan.max_lines - live)
            if self.line_limit is not None:
                lines = min(lines, self.line_limit(run.plan))
            if lines <= 0:
                continue
            leads = await self.record.claim_leads(run.plan.campaign_id, lines, self._wall())
            # One lead's store and gate round trips do not hold the next one back.
            dialed = await asyncio.gather(*(self._dial(run, lead) for lead in leads))
            sent += sum(dialed)
        return sent

    def _report_blocked(self, run: CampaignRun, every_s: float = 60.0) -> None:
        """Log, at most once a minute per campaign, how many leads each gate rule blocked since last time."""
        now = self._clock()
        last, before = self._blocked_reported.get(run.plan.campaign_id, (float("-inf"), Counter()))
        if now - last < every_s:
            return
        total = Counter({k[8:]: n for k, n in run.counts.items() if k.startswith("blocked:")})
        new = total - before
        if not new:
            return
        self._blocked_reported[run.plan.campaign_id] = (now, total)
        hints = {  # what the operator can do about the rules that block whole lists
            "consent": "leads without a consent record: add consent_given_at and consent_source with "
            "`dialer leads update FILE --campaign NAME`",
            "registry_stale": "import the national registry: "
            "`dialer dnc import --registry NAME --screened-on DAY FILE`",
        }
        since = f"in the last {now - last:.0f} s" if last > float("-inf") else "since start"
        rules = ", ".join(f"{r} {n}" + (f" ({hints[r]})" if r in hints else "") for r, n in new.most_common())
        log.info(
            "campaign %s: %d leads blocked by the compliance gate %s: %s",
            run.plan.name,
            sum(new.values()),
            since,
            rules,
        )

    async def _dial(self, run: CampaignRun, lead: Lead) -> bool:
        plan = run.plan
        now = self._wall()
        if self._draining:  # the node stopped while this tick claimed its leads: hand them back
            await self.record.release_lead(
                lead, GateVerdict(False, "node_stopping", "the node stopped", now), now
            )
            return False
        try:
            verdict = await self.gate.check(lead, plan, now)
        except Exception as exc:  # fail closed: a gate that cannot decide blocks the call
            log.exception("gate failed for lead %s; call not placed", lead.lead_id)
            verdict = GateVerdict(False, "gate_error", f"the gate could not decide: {exc}")
        if not verdict.allowed:
            self.blocked[verdict.rule] += 1
            run.counts[f"blocked:{verdict.rule}"] += 1
            await self.record.release_lead(lead, verdict, now)
            return False
        held = lead.callback_agent_id
        if held is not None and not self.agents.reserve_agent(held, plan.campaign_id):
            # The callback's agent is no longer ready: it waits for them (or for the grace to run out).
            away = GateVerdict(False, "callback_agent_away", f"agent {held} is not ready", retry_after=now)
            await self.record.release_lead(lead, away, now)
            return False
        try:
            attempt_id = await self.record.open_attempt(lead, now)
        except AttemptFenced as exc:  # the lease was lost meanwhile: the lead goes back, due now
            if held is not None:
                self.agents.release(held)
            self.errors["fenced"] += 1
            log.warning("lead %s not dialed: %s", lead.lead_id, exc)
            await self.record.release_lead(lead, GateVerdict(False, "lease_lost", str(exc), now), now)
            return False
        except BaseException:
            if held is not None:
                self.agents.release(held)
            raise
        await self.gate.record_attempt(lead, now)
        if self._draining:  # stopped meanwhile: the attempt row is closed, nothing is dialed
            if held is not None:
                self.agents.release(held)
            await self.record.close_attempt(
                attempt_id, AttemptResult("cancelled", self._wall(), detail="the node stopped before dialing")
            )
            self.outcomes["cancelled"] += 1
            run.counts["cancelled"] += 1
            return False
        if self.leases is not None and self.leases.token(plan.campaign_id) is None:
            # Lost the lease since the attempt was written: nothing more goes to the PBX for it.
            if held is not None:
                self.agents.release(held)
            await self.record.close_attempt(
                attempt_id, AttemptResult("cancelled", self._wall(), detail="the campaign's lease was lost")
            )
            self.outcomes["cancelled"] += 1
            run.counts["cancelled"] += 1
            return False
        active = ActiveCall(lead, plan, Call(attempt_id), self._clock(), held_agent=held)
        self.calls[attempt_id] = active  # before the originate: its events may beat the reply
        request = OriginateRequest(
            attempt_id=attempt_id,
            number=lead.number,
            dial_string=plan.dial_string(lead.number, attempt_id),
            caller_id_number=plan.caller_id_number,
            caller_id_name=plan.caller_id_name,
            ring_timeout_s=plan.ring_timeout_s,
            campaign_id=plan.campaign_id,
            amd=plan.amd_policy is not AmdPolicy.OFF,
        )
        run.pacer.observe_dial_launched(attempt_id, active.launched_at)
        try:
            await self.pbx.originate(request)
        except PbxError as exc:
            self.errors["originate"] += 1
            log.warning("attempt %s to %s: originate refused: %s", attempt_id, mask_number(lead.number), exc)
            await self._finish(active, Outcome.FAILED, cause=None, detail=str(exc))
            return False
        self._advance(active, CallInput.ORIGINATE)
        active.originated_at = self._wall()  # written with the outcome: no extra write per dial
        log.info("attempt %s campaign %s: dialing %s", attempt_id, plan.name, mask_number(lead.number))
        return True

    # -- PBX events ------------------------------------------------------------------

    def _advance(self, active: ActiveCall, event: CallInput) -> bool:
        try:
            return active.call.apply(event)
        except InvalidCallTransition as exc:
            self.errors["transition"] += 1
            log.warning("%s", exc)
            return False

    async def handle(self, event: CallEvent) -> None:
        if isinstance(event, AgentLegEnded):
            await self._agent_leg_ended(event)
            return
        active = self.calls.get(event.attempt_id)
        if active is None:
            log.debug("event for unknown attempt %s: %s", event.attempt_id, type(event).__name__)
            return
        at = datetime.fromtimestamp(event.at, UTC)
        if isinstance(event, Ringing):
            if active.call.state is CallState.NEW:  # the ringing beat the originate's reply
                self._advance(active, CallInput.ORIGINATE)
            if self._advance(active, CallInput.RINGING):
                self._after_reply(self.record.attempt_event(event.attempt_id, "ringing", at), active)
        elif isinstance(event, Answered):
            self._mark_answered(active)
            self._after_reply(self.record.attempt_event(event.attempt_id, "answered", at), active)
        elif isinstance(event, AmdDetected):
            await self._amd_verdict(active, event)
        elif isinstance(event, Connected):
            await self._confirm_connected(active, event.agent_id)
        elif isinstance(event, ConnectFailed):
            await self._connect_failed_event(active, event)
        elif isinstance(event, Failed):
            await self._finish(active, event.outcome, event.cause, event.detail)
        elif isinstance(event, HungUp):
            active.cause = event.cause
            # The call table says what a PBX cut means: lost before an agent, ended after one.
            self._advance(active, CallInput.LOST if event.lost else CallInput.HUNG_UP)
            await self._finish(active, None, event.cause, event.cause_text)

    async def _amd_verdict(self, active: ActiveCall, event: AmdDetected) -> None:
        """A detection verdict; a beep on a call already with its agent makes it a machine.

        FreeSWITCH connects a person at once and lets avmd listen on for the
        campaign's window: a voicemail's beep then comes after the connect.
        The agent is taken off the call and is ready again at once, with no
        wrap-up (nobody was on the line to qualify); the attempt is recorded
        as a machine (amd and its detail), and the customer leg gets the
        machine message or is hung up, as the campaign's policy says.
        """
        active.amd, active.amd_detail = event.result, event.detail
        plan, attempt_id, agent_id = active.plan, active.call.attempt_id, active.agent_id
        if event.result is not AmdResult.MACHINE or plan.amd_policy is AmdPolicy.OFF:
            return
        if active.call.state is not CallState.CONNECTED or agent_id is None:
            return
        self._advance(active, CallInput.MACHINE)
        active.agent_id = None  # the call is no longer the agent's: no wrap-up when it ends
        active.served_by = agent_id  # but the record says who had it
        if self.agents.call_ended(agent_id):
            self.agents.disposed(agent_id)
        log.info("attempt %s: %s after connect: machine; agent %s free", attempt_id, event.detail, agent_id)
        await self._tell_gate(active, "machine")
        try:
            if plan.amd_policy is AmdPolicy.LEAVE_MESSAGE and plan.machine_message:
                await self.pbx.play_then_hangup(attempt_id, plan.machine_message)
            else:
                await self.pbx.hangup(attempt_id)
        except PbxError as exc:
            self.errors["machine_hangup"] += 1
            log.warning("attempt %s: machine after connect not hung up: %s", attempt_id, exc)

    def _mark_answered(self, active: ActiveCall) -> None:
        if active.call.state is CallState.NEW:  # the answer beat the originate's reply
            self._advance(active, CallInput.ORIGINATE)
        if self._advance(active, CallInput.ANSWERED):
            active.answered_at = self._clock()

    def _observe_ring(self, active: ActiveCall, outcome: RingOutcome) -> None:
        if active.ring_observed:
            return
        active.ring_observed = True
        run = self.campaigns.get(active.plan.campaign_id)
        if run is not None:
            at = active.answered_at if active.answered_at is not None else self._clock()
            run.pacer.observe_ring_outcome(active.call.attempt_id, at, outcome)

    async def _finish(
        self, active: ActiveCall, failure: Outcome | None, cause: int | None, detail: str
    ) -> None:
        """Close the attempt: a failure exit, or the end of an answered call."""
        attempt_id = active.call.attempt_id
        if failure is not None:
            self._advance(active, _FAILURE_INPUT.get(failure, CallInput.FAILED))
        if not active.call.finished:
            return
        self.calls.pop(attempt_id, None)
        self._closing += 1  # until the outcome is written, a drain must keep waiting
        try:
            await self._close(active, failure, cause, detail)
        finally:
            self._closing -= 1
            if not self.calls and not self._closing:
                self._idle.set()

    async def _close(
        self, active: ActiveCall, failure: Outcome | None, cause: int | None, detail: str
    ) -> None:
        attempt_id = active.call.attempt_id
        result = result_of(active.call)  # the one result: pacer, gate, record and metrics alike
        outcome = result.value
        abandoned = result is CallResult.ABANDONED
        if active.answered_at is not None:
            self._observe_ring(
                active, RingOutcome.PERSON if active.call.person_answered else RingOutcome.MACHINE
            )
        else:
            self._observe_ring(
                active, RingOutcome.NO_ANSWER if failure is Outcome.NO_ANSWER else RingOutcome.FAILED
            )
        if result in PERSON_RESULTS:
            self._person_handled(active, abandoned)
        run = self.campaigns.get(active.plan.campaign_id)
        if run is not None:
            run.counts[outcome] += 1
        self.outcomes[outcome] += 1
        if active.held_agent is not None:  # the callback ended before reaching its agent
            if self.agents.state_of(active.held_agent) is AgentState.RESERVED:
                self.agents.release(active.held_agent)
            active.held_agent = None
        # The agent moves on now; a slow store delays only the writes below.
        agent_state = None if active.agent_id is None else self.agents.state_of(active.agent_id)
        if active.agent_id is not None and agent_state is AgentState.ON_CALL:
            self.agents.call_ended(active.agent_id)
            self._start_wrap_up(active)
        elif active.agent_id is not None and agent_state is AgentState.RESERVED:
            # It ended on its way to the agent (hung up, cut by a restart): the agent never had it.
            self.agents.release(active.agent_id)
            active.agent_id = None
        record = AttemptResult(
            outcome=outcome,
            ended_at=self._wall(),
            cause=cause,
            amd=active.amd,
            amd_detail=active.amd_detail,
            abandoned=abandoned,
            person_answered=active.call.person_answered,
            answered=active.answered_at is not None,
            agent_id=active.agent_id or active.served_by,
            detail=detail,
            originated_at=active.originated_at,
        )
        if abandoned:
            await self._tell_gate(active, "abandoned")
        if active.writes:  # this call's event writes land before its outcome
            await asyncio.gather(*active.writes, return_exceptions=True)
        await self.record.close_attempt(attempt_id, record)
        log.info("attempt %s: %s (cause %s)", attempt_id, outcome, cause)

    # -- answered calls: the AnswerRouter ------------------------------------------

    async def on_answered(self, call: AnsweredCall) -> AnswerDecision:
        active = self.calls.get(call.attempt_id)
        if active is None:
            # Never connect a call we cannot account for to an agent.
            self.errors["unknown_answer"] += 1
            log.warning("answered call for unknown attempt %s: hung up", call.attempt_id)
            return HangupCall()
        self._mark_answered(active)
        if call.amd is not None:
            active.amd, active.amd_detail = call.amd, call.amd_detail
        plan = active.plan
        if active.amd is AmdResult.MACHINE and plan.amd_policy is not AmdPolicy.OFF:
            self._advance(active, CallInput.MACHINE)
            self._observe_ring(active, RingOutcome.MACHINE)
            self._after_reply(self._tell_gate(active, "machine"))
            if plan.amd_policy is AmdPolicy.LEAVE_MESSAGE and plan.machine_message:
                return PlayMessageThenHangup(plan.machine_message)
            return HangupCall()
        self._observe_ring(active, RingOutcome.PERSON)
        return await self._route(active)

    async def on_connect_failed(self, call: AnsweredCall, agent_id: str, reason: str) -> AnswerDecision:
        """The PBX still holds the customer, who did not reach ``agent_id``: decide again."""
        active = self.calls.get(call.attempt_id)
        if active is None:
            return HangupCall()
        self._seat_failed(active, agent_id, reason)
        return await self._route(active)

    async def _route(self, active: ActiveCall) -> AnswerDecision:
        """A free agent within the campaign's limit after the answer, or the identification message.

        The decision (reserve, transition, reply) does no I/O: what must be
        written is queued to run after the reply.  The deadline is the
        campaign's limit counted from the answer; it is owned here.
        """
        plan = active.plan
        attempt_id = active.call.attempt_id
        self._advance(active, CallInput.WAIT_FOR_AGENT)
        answered_at = active.answered_at if active.answered_at is not None else self._clock()
        budget = plan.answer_to_agent_limit_s - (self._clock() - answered_at)
        held, active.held_agent = active.held_agent, None
        if held is not None and self.agents.state_of(held) is AgentState.RESERVED:
            agent_id: str | None = held  # the callback's own agent, kept for it since the dial
        else:
            agent_id = await self.agents.wait_and_reserve(plan.campaign_id, budget)
        if active.call.finished or active.call.state is not CallState.WAITING:
            # The person left (or the PBX cut the call) while we looked: its result is already recorded.
            if agent_id is not None:
                self.agents.release(agent_id)
            return HangupCall()
        if agent_id is None:
            self._advance(active, CallInput.ABANDONED)
            self._person_handled(active, abandoned=True)
            self._after_reply(self._tell_gate(active, "abandoned"))
            log.warning(
                "attempt %s: nobody free within the campaign's %.1f s after the answer: abandoned",
                attempt_id,
                plan.answer_to_agent_limit_s,
            )
            return PlayMessageThenHangup(plan.identification_message)
        active.agent_id = agent_id
        self._advance(active, CallInput.SENT_TO_AGENT)
        log.info("attempt %s: sent to agent %s", attempt_id, agent_id)
        recorded = plan.recording in ("all", "on_demand")
        return ConnectToAgent(
            agent_id,
            record=recorded,
            record_muted=plan.recording == "on_demand",
            announcement=plan.recording_announcement if recorded else "",
        )

    def _person_handled(self, active: ActiveCall, abandoned: bool) -> None:
        """Tell the pacer once whether this answered person was abandoned."""
        if active.person_observed:
            return
        active.person_observed = True
        run = self.campaigns.get(active.plan.campaign_id)
        if run is not None:
            run.pacer.observe_person_handled(active.call.attempt_id, self._clock(), abandoned=abandoned)

    async def _tell_gate(self, active: ActiveCall, kind: str) -> None:
        """The gate hears each outcome of a call once (lock-outs, contact pressure)."""
        if kind in active.gate_told:
            return
        active.gate_told.add(kind)
        await self.gate.record_outcome(active.lead, kind, self._wall())

    def _after_reply(self, work: Coroutine[object, object, object], active: ActiveCall | None = None) -> None:
        """Run a write after the answer decision was given, never inside its deadline.

        A call's own writes are awaited before its outcome is written, so the
        record sees them in order (the talk time needs the connect time).
        """
        task = asyncio.ensure_future(work)
        self._recording.add(task)
        task.add_done_callback(self._recorded)
        if active is not None:
            active.writes.append(task)

    def _recorded(self, task: asyncio.Future[object]) -> None:
        self._recording.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.errors["recording"] += 1
            log.error("writing after an answer decision failed: %s", task.exception())

    async def _confirm_connected(self, active: ActiveCall, agent_id: str) -> None:
        """The PBX says the customer joined the agent's bridge: only now is the call connected."""
        attempt_id = active.call.attempt_id
        if active.call.state is not CallState.CONNECTING or agent_id != active.agent_id:
            self.errors["unexpected_connect"] += 1
            log.warning(
                "attempt %s joined agent %s's bridge in state %s (sent to %s)",
                attempt_id,
                agent_id,
                active.call.state.value,
                active.agent_id,
            )
            return
        self._advance(active, CallInput.CONNECTED)
        self.agents.connected(agent_id)
        self._person_handled(active, abandoned=False)
        answered_at = active.answered_at if active.answered_at is not None else self._clock()
        delay = self._clock() - answered_at
        self.connect_delays.append(delay)
        for listener in self.connected_listeners:
            listener(attempt_id, agent_id)
        log.info("attempt %s: connected to agent %s after %.2f s", attempt_id, agent_id, delay)
        self._after_reply(self._tell_gate(active, "contact"))
        self._after_reply(self.record.attempt_event(attempt_id, "connected", self._wall()), active)

    def _seat_failed(
        self, active: ActiveCall, agent_id: str, reason: str, customer_gone: bool = False
    ) -> None:
        """The customer did not reach ``agent_id``: back to ANSWERED; the agent released or paused."""
        if active.call.state is not CallState.CONNECTING or active.agent_id != agent_id:
            return
        self._advance(active, CallInput.CONNECT_FAILED)
        active.agent_id = None
        if self.agents.state_of(agent_id) is not AgentState.RESERVED:
            return  # the agent already left (their phone leg hung up)
        if customer_gone:
            self.agents.release(agent_id)  # nothing wrong at the agent's end
            return
        self.errors["seat_fault"] += 1
        self.agents.seat_fault(agent_id)
        log.warning(
            "agent %s paused: %s (attempt %s); check the agent's phone and bridge before making them ready",
            agent_id,
            reason,
            active.call.attempt_id,
        )

    async def _connect_failed_event(self, active: ActiveCall, event: ConnectFailed) -> None:
        """A failed connect the PBX reported on its own (not inside an answer decision)."""
        self._seat_failed(active, event.agent_id, event.reason, event.customer_gone)
        if event.customer_gone or active.call.state is not CallState.WAITING:
            return
        decision = await self._route(active)
        attempt_id = active.call.attempt_id
        try:
            if isinstance(decision, ConnectToAgent):
                await self.pbx.connect_to_agent(attempt_id, decision.agent_id)
            elif isinstance(decision, PlayMessageThenHangup):
                await self.pbx.play_then_hangup(attempt_id, decision.message)
            else:
                await self.pbx.hangup(attempt_id, decision.cause)
        except PbxError as exc:
            self.errors["reroute"] += 1
            log.warning("attempt %s: could not carry out the new decision: %s", attempt_id, exc)

    async def _agent_leg_ended(self, event: AgentLegEnded) -> None:
        """The agent's phone is gone: out of dialing now; a customer left alone is hung up."""
        agent_id = event.agent_id
        if not self.agents.leg_lost(agent_id, event.attempt_id):
            return
        log.warning("agent %s: phone leg hung up (%s): out of dialing", agent_id, event.detail or event.cause)
        for active in list(self.calls.values()):
            if active.agent_id == agent_id and active.call.state is CallState.CONNECTED:
                try:
                    await self.pbx.hangup(active.call.attempt_id)
                except PbxError as exc:
                    log.warning(
                        "attempt %s: customer left alone could not be hung up: %s",
                        active.call.attempt_id,
                        exc,
                    )

    # -- wrap-up ------------------------------------------------------------------------

    def _start_wrap_up(self, active: ActiveCall) -> None:
        assert active.agent_id is not None
        agent_id, attempt_id = active.agent_id, active.call.attempt_id
        limit, default = active.plan.wrap_up_limit_s, active.plan.default_disposition

        async def expire() -> None:
            await asyncio.sleep(limit)
            if self.agents.state_of(agent_id) is AgentState.WRAP_UP:
                log.info("agent %s: wrap-up limit reached; disposition %s by default", agent_id, default)
                await self.dispose(agent_id, attempt_id, default)

        task = asyncio.get_running_loop().create_task(expire())
        self._wrapups[agent_id] = (attempt_id, default, task)

    async def dispose(
        self, agent_id: str, attempt_id: str, code: str, details: DispositionDetails | None = None
    ) -> None:
        """The agent's one-click qualification; ends the wrap-up.

        The record writes it in one unit of work with, for a refusal or a
        do-not-call, the outbox message that carries it to the gate.
        """
        now = self._wall()
        await self.record.dispose(attempt_id, agent_id, code, now, details or DispositionDetails())
        self.end_wrap_up(agent_id)

    def end_wrap_up(self, agent_id: str) -> None:
        """The agent's call is qualified (its disposition is written): the agent goes on."""
        pending = self._wrapups.pop(agent_id, None)
        if pending is not None and pending[2] is not asyncio.current_task():
            pending[2].cancel()
        if not self._wrapups:
            self._wrapped_up.set()
        self.agents.disposed(agent_id)

    def _agent_changed(
        self, agent_id: str, before: AgentState, after: AgentState, before_since: float, now: float
    ) -> None:
        activity = _ACTIVITY.get(after, AgentActivity.AWAY)
        for campaign_id in self.agents.campaigns_of(agent_id):
            run = self.campaigns.get(campaign_id)
            if run is not None:
                run.pacer.observe_agent_state(agent_id, now, activity)

    # -- start, run, drain ------------------------------------------------------------

    async def reconcile(self) -> int:
        """After a restart: close every attempt this node left open.

        A call still live on the PBX is left alone (never cut a customer off
        mid-conversation) but its outcome can no longer be observed; calls the
        PBX no longer has were lost with the crash.  Both are recorded as
        ``lost`` with the reason, so every attempt has exactly one outcome.
        """
        open_attempts = await self.record.open_attempts()
        if not open_attempts:
            return 0
        live = await self.pbx.live_attempts()
        now = self._wall()
        for attempt in open_attempts:
            if attempt.attempt_id in self.calls:
                continue
            detail = (
                "still live on the PBX at restart; outcome not observed"
                if attempt.attempt_id in live
                else "not on the PBX at restart: cut by the crash"
            )
            await self.record.close_attempt(attempt.attempt_id, AttemptResult("lost", now, detail=detail))
            self.outcomes["lost"] += 1
        return len(open_attempts)

    async def consume(self) -> None:
        """Feed PBX events to the call state machines until the stream ends.

        Each call's events are handled in order; a call whose record write is
        slow does not hold back the events of the others.
        """
        try:
            async for event in self.pbx.events():
                previous = self._handling.get(event.attempt_id)
                task = asyncio.ensure_future(self._handle_in_turn(previous, event))
                self._handling[event.attempt_id] = task
                task.add_done_callback(functools.partial(self._handled, event.attempt_id))
        finally:
            if self._handling:
                await asyncio.wait(set(self._handling.values()), timeout=5.0)

    async def _handle_in_turn(self, previous: asyncio.Future[None] | None, event: CallEvent) -> None:
        if previous is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(previous)
        try:
            await self.handle(event)
        except Exception:
            self.errors["handler"] += 1
            log.exception("handling %s for attempt %s failed", type(event).__name__, event.attempt_id)

    def _handled(self, attempt_id: str, task: asyncio.Future[None]) -> None:
        if self._handling.get(attempt_id) is task:
            del self._handling[attempt_id]

    async def run(self, stop: asyncio.Event, drain_timeout_s: float = 120.0) -> None:
        """Tick until ``stop`` is set, then drain: no new dials, calls in progress finish.

        PBX events keep flowing while draining, so the calls still up get their
        outcome written; after ``drain_timeout_s`` the rest are left to
        reconciliation at the next start.
        """
        loop = asyncio.get_running_loop()
        consumer = loop.create_task(self.consume())
        watcher = loop.create_task(self._drain_on(stop))
        try:
            while not stop.is_set():
                try:
                    await self.tick()
                except Exception:
                    self.errors["tick"] += 1
                    log.exception("pacing tick failed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.tick_s)
            self._draining = True
            deadline = loop.time() + drain_timeout_s
            if self.calls:
                log.info("draining: %d call(s) in progress, up to %.0f s", len(self.calls), drain_timeout_s)
            while (self.calls or self._closing) and not consumer.done():
                self._idle.clear()
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._idle.wait(), remaining)
            # Agents still qualifying their last call get the rest of the drain time, then the default.
            while self._wrapups:
                self._wrapped_up.clear()
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wrapped_up.wait(), remaining)
            await self.flush_wrap_ups()
            if self._recording:
                await asyncio.wait(set(self._recording), timeout=max(0.1, deadline - loop.time()))
        finally:
            self._draining = True
            watcher.cancel()
            consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await consumer
            for _, _, task in self._wrapups.values():
                task.cancel()

    async def _drain_on(self, stop: asyncio.Event) -> None:
        """No dial after the stop, even one a tick in progress has already claimed."""
        await stop.wait()
        self._draining = True

    async def flush_wrap_ups(self) -> int:
        """Give every call still in wrap-up its campaign's default disposition (graceful stop)."""
        flushed = 0
        for agent_id, (attempt_id, default, _) in list(self._wrapups.items()):
            try:
                await self.dispose(agent_id, attempt_id, default)
                flushed += 1
            except Exception:
                self.errors["disposition"] += 1
                log.exception("agent %s: default disposition of attempt %s failed", agent_id, attempt_id)
        return flushed
