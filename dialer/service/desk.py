"""The agent's desk and the supervisor's view of it: the use cases behind the agent screen.

Agent: log in, ready, pause (with a reason from a fixed list), log out, see the
current call (the attempt, its campaign, the customer's record and every
earlier comment by any agent on that customer), hang up, qualify the call in
one click with details, book a callback.  Supervisor: agents and their time in
state, calls in progress, campaign start / pause / stop, abandonment against
the cap, force an agent out.  Admin: a campaign's settings.

Entry points call these and nothing deeper.  ``dispose`` is one unit of work:
the disposition, the lead's next state, the customer-record fields and
comments, and (for a refusal or a do-not-call) the outbox message that carries
it to the compliance gate, all in one transaction.  The engine is then told
only to end the wrap-up.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from dialer.domain.agent import AgentState
from dialer.domain.campaign import CampaignSettings, CampaignStatus, StatusChangeError
from dialer.domain.dispositions import CATALOGUE, DispositionError
from dialer.quality.statelog import StateLog
from dialer.runtime.agents import AgentRegistry
from dialer.runtime.engine import Engine
from dialer.sales.customers import CustomerRecords
from dialer.sales.service import Sales, SaleTerms
from dialer.service import Invalid, NotFound, Refused
from dialer.service.outbox import GATE_KIND_OF_DISPOSITION, OutboxRelay
from dialer.service.uow import SqlUnitOfWork
from dialer.store import repositories as store
from dialer.store.db import Database
from dialer.store.repositories import CampaignRecord, CustomerRecord, HistoryEntry, LeadRecord
from telephony.base import PbxError, mask_number

log = logging.getLogger(__name__)

# An appointment booked without an end lasts this long in the calendar.
APPOINTMENT_LENGTH = timedelta(hours=1)
# The most text a free field of a disposition may hold (a comment, a result, one objection).
MAX_TEXT = 4000


class PauseReason(enum.StrEnum):
    BREAK = "break"
    LUNCH = "lunch"
    TRAINING = "training"
    MEETING = "meeting"
    TECHNICAL = "technical"
    SEAT_CHECK = "seat_check"  # also given by the dialer when the agent's bridge refused a customer


@dataclass(frozen=True, slots=True)
class DeskCall:
    """A call that reached an agent, as captured when the PBX confirmed the connection."""

    attempt_id: str
    agent_id: str
    lead_id: str
    campaign_id: str
    campaign_name: str
    number: str
    connected_at: datetime


@dataclass(frozen=True, slots=True)
class AgentStatus:
    agent_id: str
    state: AgentState
    seconds_in_state: float
    pause_reason: PauseReason | None
    pause_after_call: PauseReason | None  # asked during wrap-up: taken at the disposition
    campaigns: tuple[str, ...]
    attempt_id: str | None  # the call on the agent's desk (talking or wrap-up)


@dataclass(frozen=True, slots=True)
class CurrentCall:
    attempt_id: str
    phase: str  # talking / wrap_up
    campaign_id: str
    campaign_name: str
    number_masked: str
    connected_at: datetime
    lead: LeadRecord | None
    customer: CustomerRecord | None
    history: list[HistoryEntry]  # every earlier disposition of this customer, newest first
    dispositions: list[tuple[str, str]]  # (code, label) the campaign enables
    wrap_up_limit_s: float | None = None  # the campaign's default disposition is written after this


@dataclass(frozen=True, slots=True)
class DispositionInput:
    code: str
    identity: Mapping[str, str] = field(default_factory=dict)  # verified identity fields
    objections: Sequence[str] = ()
    result: str | None = None
    callback_at: datetime | None = None
    callback_agent_only: bool = False
    appointment_at: datetime | None = None
    next_actions: Sequence[str] = ()
    comments: str | None = None
    sale: SaleTerms | None = None  # with code "sale": what the written confirmation states
    information_template: str | None = None  # information promised by email (dialer/followup/templates.toml)
    follow_up: bool = False  # a follow-up contact promised in the customer's preferred channel


@dataclass(frozen=True, slots=True)
class DispositionOutcome:
    attempt_id: str
    code: str
    lead_status: str
    callback_id: int | None
    appointment_id: int | None
    gate_update_queued: bool  # a refusal / do-not-call is on its way to the compliance gate
    agent_state: AgentState | None
    sale_id: int | None = None  # a sale recorded, its confirmation queued


@dataclass(frozen=True, slots=True)
class CallInProgress:
    attempt_id: str
    campaign_id: str
    campaign_name: str
    state: str
    agent_id: str | None
    number_masked: str
    seconds: float


@dataclass(frozen=True, slots=True)
class CampaignOverview:
    """A campaign as the supervisor page shows it: its status and this node's live figures."""

    id: int
    name: str
    status: CampaignStatus
    dialing: bool  # this node dials it now (running and not paused here)
    pacing: str | None  # the pacer this node uses for it (predictive, ratio, progressive...)
    dial_level: float | None  # calls in progress per agent taking its calls; None without such agents
    lines: int  # calls in progress
    agents: int  # agents taking its calls (logged in for it, not paused)
    outcomes: dict[str, int]  # calls ended on this node since it started dialing the campaign, by outcome
    blocked: dict[str, int]  # leads the compliance gate refused, by rule


@dataclass(frozen=True, slots=True)
class Abandonment:
    campaign_id: int
    rate: float
    cap: float
    window_s: float
    person_answered: int
    abandoned: int
    budget_left: float  # abandons the window can still take without crossing the cap


class Desk:
    """The desk's use cases over one node's engine, agent registry and record."""

    def __init__(
        self,
        db: Database,
        engine: Engine,
        agents: AgentRegistry,
        *,
        relay: OutboxRelay | None = None,
        clock: Callable[[], float],
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
        follow_campaigns: Callable[[datetime], Awaitable[object]] | None = None,
        sales: Sales | None = None,
        customers: CustomerRecords | None = None,
    ) -> None:
        self.db = db
        self.sales = sales or Sales(db, wall=wall)  # sales, their confirmations and withdrawal periods
        self.customers = customers or CustomerRecords(db, wall=wall)  # search, notes, export, erasure
        self._engine = engine
        self._agents = agents
        self._relay = relay
        self._clock = clock  # the registry's and the engine's clock (epoch seconds)
        self._wall = wall
        self._follow_campaigns = follow_campaigns
        self._calls: dict[str, DeskCall] = {}  # agent -> the call on their desk
        self._pause: dict[str, PauseReason] = {}  # agent -> why they are paused
        self._pause_next: dict[str, PauseReason] = {}  # agent -> pause asked for during wrap-up
        engine.connected_listeners.append(self._connected)
        agents.listeners.append(self._agent_changed)
        self.state_log = StateLog(db, agents)  # each agent's time in each state, for the scorecards

    # -- what the engine and the registry tell the desk ---------------------------------

    def _connected(self, attempt_id: str, agent_id: str) -> None:
        active = self._engine.calls.get(attempt_id)
        if active is None:
            return
        lead, plan = active.lead, active.plan
        self._calls[agent_id] = DeskCall(
            attempt_id, agent_id, lead.lead_id, plan.campaign_id, plan.name, lead.number, self._wall()
        )

    def _agent_changed(
        self, agent_id: str, before: AgentState, after: AgentState, before_since: float, now: float
    ) -> None:
        if after is AgentState.PAUSED:
            if before is AgentState.RESERVED:
                self._pause[agent_id] = PauseReason.SEAT_CHECK
            elif agent_id in self._pause_next:
                self._pause[agent_id] = self._pause_next.pop(agent_id)
        else:
            self._pause.pop(agent_id, None)
        if after in (AgentState.READY, AgentState.PAUSED, AgentState.LOGGED_OUT):
            self._calls.pop(agent_id, None)
        if after is AgentState.LOGGED_OUT:
            self._pause_next.pop(agent_id, None)

    # -- the agent's state -------------------------------------------------------------

    def status(self, agent_id: str) -> AgentStatus:
        state = self._agents.state_of(agent_id)
        if state is None:
            return AgentStatus(agent_id, AgentState.LOGGED_OUT, 0.0, None, None, (), None)
        view = next((v for v in self._agents.view() if v.agent_id == agent_id), None)
        since = view.since if view is not None else self._clock()
        call = self._calls.get(agent_id)
        return AgentStatus(
            agent_id,
            state,
            max(0.0, self._clock() - since),
            self._pause.get(agent_id),
            self._pause_next.get(agent_id),
            tuple(sorted(self._agents.campaigns_of(agent_id))),
            call.attempt_id if call is not None else None,
        )

    async def login(
        self,
        agent_id: str,
        campaigns: Sequence[str] | None = None,
        endpoint: str | None = None,
        *,
        leg_id: str | None = None,
    ) -> AgentStatus:
        """Sign the agent in to dialing, paused until ready; their phone is called when ``endpoint`` is given.

        Without ``campaigns`` the agent takes calls of every campaign this node dials.
        """
        if self._agents.state_of(agent_id) is not None:
            if leg_id is not None:
                self._agents.attach_leg(agent_id, leg_id)  # signed in on the screen, now the phone too
            return self.status(agent_id)
        dialing = self._engine.campaigns
        chosen = list(campaigns) if campaigns else list(dialing)
        unknown = [c for c in chosen if c not in dialing]
        if unknown:
            raise Invalid(
                f"campaign(s) {', '.join(unknown)} are not dialing on this node; "
                f"choose among: {', '.join(dialing) or 'none (no campaign is running)'}"
            )
        if endpoint is not None:
            expect = getattr(self._engine.pbx, "expect_agent", None)
            if callable(expect):  # several PBXs: the phone is called by the PBX of the agent's campaigns
                expect(agent_id, chosen)
            try:
                leg_id = await self._engine.pbx.login_agent(agent_id, endpoint)
            except PbxError as exc:
                raise Refused(
                    f"the PBX could not call your phone {endpoint!r}: {exc}; check the endpoint"
                ) from None
        self._agents.login(agent_id, chosen, leg_id)
        log.info("agent %s logged in for campaign(s) %s", agent_id, ", ".join(chosen) or "none")
        return self.status(agent_id)

    def _state(self, agent_id: str) -> AgentState:
        state = self._agents.state_of(agent_id)
        if state is None:
            raise Refused(f"agent {agent_id} is not logged in: log in first (POST /api/me/login)")
        return state

    def ready(self, agent_id: str) -> AgentStatus:
        state = self._state(agent_id)
        if state is AgentState.WRAP_UP:
            raise Refused("qualify the call first: the disposition makes you ready")
        if state in (AgentState.RESERVED, AgentState.ON_CALL):
            raise Refused("you are on a call: qualify it when it ends and you are ready again")
        if state is AgentState.PAUSED:
            self._agents.ready(agent_id)
        return self.status(agent_id)

    def pause(self, agent_id: str, reason: PauseReason) -> AgentStatus:
        state = self._state(agent_id)
        if state in (AgentState.RESERVED, AgentState.ON_CALL):
            raise Refused(
                "you are on a call: ask for the pause once it ends (during wrap-up it is taken when you "
                "qualify the call)"
            )
        if state in (AgentState.READY, AgentState.WRAP_UP):
            self._pause_next[agent_id] = reason  # the registry's listener turns it into the reason
            self._agents.pause(agent_id)
        else:
            self._pause[agent_id] = reason
        return self.status(agent_id)

    def logout(self, agent_id: str) -> AgentStatus:
        state = self._state(agent_id)
        if state not in (AgentState.READY, AgentState.PAUSED):
            raise Refused(
                f"agent {agent_id} is {state.value.replace('_', ' ')}: finish and qualify the call first, "
                "then log out"
            )
        self._agents.logout(agent_id)
        log.info("agent %s logged out", agent_id)
        return self.status(agent_id)

    # -- the call on the desk ------------------------------------------------------------

    def _call_of(self, agent_id: str, attempt_id: str | None = None) -> DeskCall | None:
        call = self._calls.get(agent_id)
        state = self._agents.state_of(agent_id)
        if call is None or state not in (AgentState.ON_CALL, AgentState.WRAP_UP):
            return None
        if attempt_id is not None and call.attempt_id != attempt_id:
            return None
        return call

    def call_number(self, agent_id: str) -> tuple[str, str] | None:
        """(attempt id, number) of the call on the agent's desk: how an agent reaches a customer record."""
        call = self._call_of(agent_id)
        return None if call is None else (call.attempt_id, call.number)

    async def current_call(self, agent_id: str) -> CurrentCall | None:
        """The call on the agent's desk with the customer's record and history, or None."""
        call = self._call_of(agent_id)
        if call is None:
            return None
        phase = "talking" if self._agents.state_of(agent_id) is AgentState.ON_CALL else "wrap_up"
        lead: LeadRecord | None = None
        codes: Sequence[str] = ()
        wrap_up_limit_s: float | None = None
        try:
            lead = await self.db.leads.get(int(call.lead_id))
            settings = (await self.db.campaigns.get(int(call.campaign_id))).settings
            codes, wrap_up_limit_s = settings.dispositions, settings.wrap_up_limit_s
        except (store.NotFound, ValueError):
            log.warning("attempt %s: lead or campaign not in the record", call.attempt_id)
        customer = await self.db.customers.get(call.number)
        history = await self.db.customers.history(call.number)
        enabled = [(c, CATALOGUE[c].label) for c in (codes or CATALOGUE) if c in CATALOGUE]
        return CurrentCall(
            call.attempt_id,
            phase,
            call.campaign_id,
            call.campaign_name,
            mask_number(call.number),
            call.connected_at,
            lead,
            customer,
            history,
            enabled,
            wrap_up_limit_s,
        )

    async def hangup(self, agent_id: str, attempt_id: str) -> None:
        call = self._call_of(agent_id, attempt_id)
        if call is None:
            raise NotFound(f"you have no call {attempt_id}")
        if self._agents.state_of(agent_id) is not AgentState.ON_CALL:
            raise Refused(f"call {attempt_id} has already ended: qualify it")
        try:
            await self._engine.pbx.hangup(attempt_id)
        except PbxError as exc:
            raise Refused(f"the PBX did not hang up call {attempt_id}: {exc}; try again") from None

    async def dispose(self, agent_id: str, attempt_id: str, given: DispositionInput) -> DispositionOutcome:
        """Qualify a call in one unit of work, then end the agent's wrap-up.

        One disposition per call: a late one (the wrap-up limit already wrote the
        campaign's default) or a second click is refused with what was recorded.
        """
        desk_call = self._call_of(agent_id, attempt_id)
        if desk_call is not None and self._agents.state_of(agent_id) is AgentState.ON_CALL:
            raise Refused(
                f"call {attempt_id} is still up: hang up first (POST /api/calls/{attempt_id}/hangup) or "
                "wait for the customer to hang up, then qualify it"
            )
        try:
            attempt = await self.db.attempts.get(attempt_id)
        except store.NotFound:
            raise NotFound(f"you have no call {attempt_id}") from None
        if desk_call is None and attempt.agent_id != agent_id:
            raise NotFound(f"you have no call {attempt_id}")
        now = self._wall()
        kind = GATE_KIND_OF_DISPOSITION.get(given.code)
        sale_id: int | None = None
        prepared = (
            await self.sales.prepare(attempt, given.sale, dict(given.identity), now)
            if given.code == "sale"
            else None
        )
        try:
            async with SqlUnitOfWork(self.db) as uow:
                written = await uow.write_disposition(
                    attempt_id,
                    given.code,
                    agent_id,
                    now=now,
                    identity=dict(given.identity),
                    objections=list(given.objections),
                    result=given.result,
                    callback_at=given.callback_at,
                    callback_agent_only=given.callback_agent_only,
                    appointment_at=given.appointment_at,
                    appointment_ends_at=given.appointment_at + APPOINTMENT_LENGTH
                    if given.appointment_at
                    else None,
                    next_actions=list(given.next_actions),
                    comments=given.comments,
                    information_template=given.information_template,
                    follow_up=given.follow_up,
                )
                if not written.changed:
                    raise Refused(
                        f"call {attempt_id} is already qualified {written.code!r}"
                        + (
                            " (the campaign's default, written when the wrap-up time ran out)"
                            if desk_call is None
                            else ""
                        )
                        + "; a call has one disposition: put what you wanted to add in a comment the next "
                        "time this customer is called"
                    )
                if prepared is not None:
                    sale = await self.sales.record(
                        uow.session, prepared, attempt, written.disposition_id, agent_id, now
                    )
                    sale_id = sale.id
                if kind is not None:
                    uow.tell_gate(attempt.lead_id, attempt.campaign_id, attempt.number, kind, now)
                await uow.commit()
        except DispositionError as exc:
            raise Invalid(str(exc)) from None
        if kind is not None and self._relay is not None:
            self._relay.wake()
        log.info("attempt %s: qualified %s by agent %s", attempt_id, written.code, agent_id)
        if desk_call is not None:
            self._engine.end_wrap_up(agent_id)  # the record is written: the agent goes on
        return DispositionOutcome(
            attempt_id,
            written.code,
            written.lead_status.value,
            written.callback_id,
            written.appointment_id,
            kind is not None,
            self._agents.state_of(agent_id),
            sale_id,
        )

    async def schedule_callback(
        self,
        agent_id: str,
        attempt_id: str,
        at: datetime,
        *,
        agent_only: bool = False,
        comments: str | None = None,
    ) -> DispositionOutcome:
        """The customer asked to be called back at ``at``: the one-click "callback requested"."""
        return await self.dispose(
            agent_id,
            attempt_id,
            DispositionInput(
                "callback_requested", callback_at=at, callback_agent_only=agent_only, comments=comments
            ),
        )

    # -- supervision ---------------------------------------------------------------------

    def dialing_campaigns(self) -> list[str]:
        """Ids of the campaigns this node is dialing now (not paused)."""
        return [cid for cid, run in self._engine.campaigns.items() if not run.paused]

    def agents(self) -> list[AgentStatus]:
        return sorted((self.status(v.agent_id) for v in self._agents.view()), key=lambda a: a.agent_id)

    def force_logout(self, agent_id: str) -> AgentStatus:
        if self._agents.state_of(agent_id) is None:
            raise NotFound(f"agent {agent_id} is not logged in")
        return self.logout(agent_id)

    def calls(self) -> list[CallInProgress]:
        now = self._clock()
        return [
            CallInProgress(
                attempt_id,
                active.plan.campaign_id,
                active.plan.name,
                active.call.state.value,
                active.agent_id,
                mask_number(active.lead.number),
                max(0.0, now - active.launched_at),
            )
            for attempt_id, active in list(self._engine.calls.items())
        ]

    async def campaigns(self) -> list[CampaignOverview]:
        """Every campaign in the record, with this node's live figures for those it dials."""
        out: list[CampaignOverview] = []
        for record in await self.db.campaigns.list():
            run = self._engine.campaigns.get(str(record.id))
            if run is None:
                off = CampaignOverview(record.id, record.name, record.status, False, None, None, 0, 0, {}, {})
                out.append(off)
                continue
            cid = run.plan.campaign_id
            lines = sum(1 for c in list(self._engine.calls.values()) if c.plan.campaign_id == cid)
            off_states = (AgentState.PAUSED, AgentState.LOGGED_OUT)
            taking = sum(1 for v in self._agents.view(cid) if v.state not in off_states)
            kind = type(run.pacer).__name__.removesuffix("Pacer").lower() or None
            outcomes = {k: n for k, n in sorted(run.counts.items()) if not k.startswith("blocked:")}
            blocked = {k[8:]: n for k, n in sorted(run.counts.items()) if k.startswith("blocked:")}
            out.append(
                CampaignOverview(
                    record.id,
                    record.name,
                    record.status,
                    not run.paused,
                    kind,
                    round(lines / taking, 2) if taking else None,
                    lines,
                    taking,
                    outcomes,
                    blocked,
                )
            )
        return out

    async def set_campaign_status(
        self, campaign_id: int, status: CampaignStatus, actor: str
    ) -> CampaignRecord:
        """Start, pause or stop a campaign; this node follows at once, the others within seconds."""
        try:
            record = await self.db.campaigns.set_status(campaign_id, status, actor=actor, now=self._wall())
        except store.NotFound as exc:
            raise NotFound(str(exc)) from None
        except StatusChangeError as exc:
            raise Refused(str(exc)) from None
        if self._follow_campaigns is not None:
            await self._follow_campaigns(self._wall())
        elif status is not CampaignStatus.RUNNING and str(campaign_id) in self._engine.campaigns:
            self._engine.pause_campaign(str(campaign_id))
        log.info("campaign %s set %s by %s", record.name, status.value, actor)
        return record

    async def abandonment(self, campaign_id: int) -> Abandonment:
        """Abandoned / person-answered over the legal window, as the campaign's pacer counts it."""
        run = self._engine.campaigns.get(str(campaign_id))
        if run is None:
            record = await self.campaign(campaign_id)
            raise Refused(
                f"campaign {record.name} is not dialing on this node ({record.status.value}); its "
                "abandonment "
                "rate is counted by the node that dials it"
            )
        tracker = run.pacer.tracker
        now = self._clock()
        answered, abandoned = tracker.counts(now)
        return Abandonment(
            campaign_id,
            tracker.rate(now),
            tracker.cap,
            tracker.window_s,
            answered,
            abandoned,
            tracker.budget_left(now),
        )

    # -- campaign settings (admin) ----------------------------------------------------------

    async def campaign(self, campaign_id: int) -> CampaignRecord:
        try:
            return await self.db.campaigns.get(campaign_id)
        except store.NotFound as exc:
            raise NotFound(str(exc)) from None

    async def update_campaign_settings(
        self, campaign_id: int, changes: Mapping[str, Any], actor: str
    ) -> CampaignRecord:
        """Change some settings; a node dialing the campaign uses them from its next start."""
        current = await self.campaign(campaign_id)
        try:
            settings = CampaignSettings.from_dict({**current.settings.to_dict(), **changes})
            return await self.db.campaigns.update_settings(
                campaign_id, settings, actor=actor, now=self._wall()
            )
        except store.NotFound as exc:
            raise NotFound(str(exc)) from None
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise Invalid(f"campaign settings not changed: {exc}") from None
