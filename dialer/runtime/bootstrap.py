"""The one place that builds everything: store, compliance gate, pacers, PBX adapters, engine.

The engine only knows its ports (``dialer.runtime.ports``); this module adapts
the SQL store and the compliance gate to them, loads running campaigns with a
pacer whose abandonment history is reloaded from the attempts table, and
builds the PBX adapter named in the settings.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

from redis.exceptions import RedisError

from dialer.compliance.gate import ComplianceConfig, ComplianceGate, build_gate
from dialer.compliance.history import RedisContactHistory
from dialer.compliance.profiles import ProfileSet, load_profiles
from dialer.domain.campaign import CampaignSettings, CampaignStatus, LeadStatus, PacingMode, RecordingPolicy
from dialer.domain.compliance import (
    RULE_CONSENT,
    RULE_DNC,
    RULE_NUMBER,
    CallRequest,
    CampaignRules,
    ConsentRecord,
    ProfileError,
)
from dialer.domain.fencing import AttemptFenced
from dialer.pacing.limits import PacingLimits
from dialer.pacing.pacers import Pacer, make_pacer
from dialer.runtime.agents import AgentRegistry
from dialer.runtime.engine import Engine
from dialer.runtime.lease import CampaignLeases, RedisLeaseStore
from dialer.runtime.pbx_pool import PbxPool, pool_of
from dialer.runtime.ports import (
    AmdPolicy,
    AttemptResult,
    CampaignPlan,
    DispositionDetails,
    GateVerdict,
    Lead,
    OpenAttempt,
)
from dialer.runtime.prompts import prompt_problem
from dialer.runtime.takeover import Takeover
from dialer.service.outbox import GATE_KIND_OF_DISPOSITION, OutboxRelay
from dialer.service.uow import SqlUnitOfWork
from dialer.settings import PbxSettings, Settings, sqlite_path
from dialer.store.db import Database, DatabaseError
from dialer.store.fences import highest_token
from dialer.store.leads_repo import LeadAdmin
from dialer.store.repositories import CampaignRecord
from telephony.base import AmdResult, Pbx

log = logging.getLogger(__name__)

# The pacer counts abandonment over the jurisdiction's window; a profile without one gets a day.
DEFAULT_ABANDON_WINDOW = timedelta(hours=24)
# An appointment booked from a disposition without an end lasts this long in the calendar.
APPOINTMENT_LENGTH = timedelta(hours=1)
# A lead the gate could not judge (store down, rule error) is tried again after this.
RETRY_AFTER_GATE_ERROR = timedelta(minutes=5)
# Rules whose block takes the lead out of the list for good (the gate audit keeps the reason).
_CLOSING_RULES = {
    RULE_NUMBER: LeadStatus.INVALID,
    RULE_DNC: LeadStatus.DO_NOT_CALL,
    RULE_CONSENT: LeadStatus.BLOCKED,
}


class SqlRecord:
    """The engine's ``Record`` port over the SQL store's repositories."""

    def __init__(self, db: Database, node_id: str, agents: AgentRegistry) -> None:
        self.db = db
        self.node_id = node_id
        self.agents = agents
        # Told when a disposition queued a message for the gate (the outbox relay delivers it).
        self.outbox_written: Callable[[], None] | None = None
        # With several nodes: attempts are written under the campaign lease's token (fenced).
        self.leases: CampaignLeases | None = None
        self._campaign_of: dict[str, str] = {}  # open attempts of this node -> campaign id

    async def claim_leads(self, campaign_id: str, limit: int, now: datetime) -> list[Lead]:
        ready = [a.agent_id for a in self.agents.view(campaign_id) if a.state.value == "ready"]
        claimed = await self.db.hopper.claim_leads(
            int(campaign_id), limit, now, self.node_id, ready_agents=ready
        )
        return [
            Lead(
                lead_id=str(c.lead_id),
                campaign_id=str(c.campaign_id),
                number=c.number,
                timezones=c.timezones,
                attempts=c.attempt_count,
                consent=c.consent,
                consent_given_at=c.consent_given_at,
                consent_source=c.consent_source,
                callback_agent_id=c.callback.agent_id if c.callback else None,
            )
            for c in claimed
        ]

    async def release_lead(self, lead: Lead, verdict: GateVerdict, now: datetime) -> None:
        status = _CLOSING_RULES.get(verdict.rule)
        due = None if status else (verdict.retry_after or now + RETRY_AFTER_GATE_ERROR)
        await self.db.hopper.release(
            int(lead.lead_id),
            self.node_id,
            due_at=due,
            status=status,
            reason=f"{verdict.rule}: {verdict.reason}",
            now=now,
        )

    async def open_attempt(self, lead: Lead, now: datetime) -> str:
        token = None
        if self.leases is not None:
            token = self.leases.token(lead.campaign_id)
            if token is None:
                raise AttemptFenced(lead.campaign_id, None, None)
        try:
            attempt_id = await self.db.attempts.open_attempt(
                int(lead.lead_id), int(lead.campaign_id), lead.number, self.node_id, now, fencing_token=token
            )
        except AttemptFenced as exc:
            self._fenced(exc)
            raise
        if self.leases is not None:
            self._campaign_of[attempt_id] = lead.campaign_id
        return attempt_id

    def _fenced(self, exc: AttemptFenced) -> None:
        """A write refused by the campaign's fence: logged and counted (dialer_fenced_writes_total)."""
        if self.leases is not None:
            self.leases.fenced[exc.campaign_id] += 1
        log.warning("node %s: %s", self.node_id, exc)

    async def attempt_event(self, attempt_id: str, kind: str, at: datetime) -> None:
        await self.db.attempts.record_event(attempt_id, kind, at)

    async def close_attempt(self, attempt_id: str, result: AttemptResult) -> bool:
        amd = result.amd.value if result.amd is not None else None
        if result.outcome == "machine":
            amd = AmdResult.MACHINE.value
        if result.detail and result.outcome == "lost":
            log.warning("attempt %s lost: %s", attempt_id, result.detail)
        campaign = self._campaign_of.get(attempt_id)
        token = None if campaign is None or self.leases is None else self.leases.last_token(campaign)
        try:
            closed = await self._close_attempt(attempt_id, result, amd, token)
        except AttemptFenced as exc:  # the campaign's new holder closed it already (as lost)
            self._fenced(exc)
            closed = False
        self._campaign_of.pop(attempt_id, None)
        return closed

    async def _close_attempt(
        self, attempt_id: str, result: AttemptResult, amd: str | None, token: int | None
    ) -> bool:
        return await self.db.attempts.close_attempt(
            attempt_id,
            result.outcome,
            result.cause,
            amd,
            result.ended_at,
            answered=result.answered,
            agent_id=result.agent_id,
            amd_detail=result.amd_detail or None,
            originated_at=result.originated_at,
            fencing_token=token,
        )

    async def dispose(
        self, attempt_id: str, agent_id: str, code: str, now: datetime, details: DispositionDetails
    ) -> Lead:
        """One unit of work: the disposition, the lead's next state and, for a refusal or a
        do-not-call, the outbox message that carries it to the gate (delivered by the relay,
        retried until acknowledged: a crash after this commit cannot lose it)."""
        attempt = await self.db.attempts.get(attempt_id)
        kind = GATE_KIND_OF_DISPOSITION.get(code)
        async with SqlUnitOfWork(self.db) as uow:
            written = await uow.write_disposition(
                attempt_id,
                code,
                agent_id,
                now=now,
                callback_at=details.callback_at,
                callback_agent_only=details.callback_agent_only,
                appointment_at=details.appointment_at,
                appointment_ends_at=details.appointment_at + APPOINTMENT_LENGTH
                if details.appointment_at
                else None,
                comments=details.comments,
            )
            if kind is not None and written.changed:
                uow.tell_gate(attempt.lead_id, attempt.campaign_id, attempt.number, kind, now)
            await uow.commit()
        if kind is not None and written.changed and self.outbox_written is not None:
            self.outbox_written()
        return Lead(str(attempt.lead_id), str(attempt.campaign_id), attempt.number)

    async def open_attempts(self) -> list[OpenAttempt]:
        return [
            OpenAttempt(a.attempt_id, str(a.lead_id), str(a.campaign_id), a.number, a.created_at)
            for a in await self.db.attempts.open_attempts(self.node_id)
        ]


class GatePort:
    """The engine's ``Gate`` port over the compliance gate, with each campaign's rules."""

    def __init__(self, gate: ComplianceGate) -> None:
        self.gate = gate
        self.rules: dict[str, CampaignRules] = {}
        self.history_stale = False

    async def check(self, lead: Lead, plan: CampaignPlan, now: datetime) -> GateVerdict:
        if self.history_stale and not await self.resync_history():
            return GateVerdict(False, "store", "Redis is down: the contact history cannot be read")
        rules = self.rules.get(plan.campaign_id)
        if rules is None:
            return GateVerdict(False, "profile", f"campaign {plan.name} has no compliance rules loaded")
        consent = ConsentRecord(
            given_at=lead.consent_given_at or datetime.min.replace(tzinfo=now.tzinfo),
            source=lead.consent_source or "lead list",
        )
        decision = await self.gate.check(
            CallRequest(
                number_e164=lead.number,
                lead_id=lead.lead_id,
                campaign_id=lead.campaign_id,
                campaign_rules=rules,
                lead_timezones=list(lead.timezones) or None,
                consent=consent if lead.consent else None,
                lead_attempts=lead.attempts,
                last_outcome=lead.last_outcome,
                last_attempt_at=lead.last_attempt_at,
            ),
            now,
        )
        return GateVerdict(decision.allowed, decision.rule, decision.reason, decision.retry_after)

    async def record_attempt(self, lead: Lead, at: datetime) -> None:
        try:
            await self.gate.record_attempt(lead.number, lead.lead_id, lead.campaign_id, at)
        except (RedisError, OSError) as exc:
            self._redis_failed("attempt", exc)

    async def record_outcome(self, lead: Lead, kind: str, at: datetime) -> None:
        """Tell the gate; the database is written first, so a Redis failure loses nothing.

        The disposition that led here is already committed: a Redis outage is logged in one line,
        never reported as a failed disposition, and the history is copied into Redis again once
        Redis answers (the gate blocks every call meanwhile: it cannot read Redis either).
        """
        if kind == "do_not_call":
            # An agent's "do not call": blocked at once on every node (Redis and the database).
            # The DNC index copies database entries it has not seen into Redis when it is back.
            try:
                await self.gate.dnc.add(lead.number, source="agent", now=at)
            except (RedisError, OSError) as exc:
                self._redis_failed("do-not-call entry", exc)
            kind = "refusal"
        try:
            await self.gate.record_outcome(lead.number, lead.lead_id, lead.campaign_id, kind, at)
        except (RedisError, OSError) as exc:
            self._redis_failed(kind, exc)

    def _redis_failed(self, what: str, exc: BaseException) -> None:
        self.history_stale = True
        log.error(
            "Redis failed while recording the %s (%s: %s): it is in the database; "
            "Redis gets it again when it answers, and no call is placed until then",
            what,
            type(exc).__name__,
            exc,
        )

    async def resync_history(self) -> bool:
        """After a Redis outage: reload the contact history into Redis from the database."""
        history = self.gate.history
        if not self.history_stale:
            return True
        if not isinstance(history, RedisContactHistory):
            self.history_stale = False
            return True
        try:
            await history.redis.delete(f"{history.ns}ch:ready")
            await history.start()
        except (RedisError, OSError):
            return False
        self.history_stale = False
        log.info("Redis answers again: contact history reloaded from the database")
        return True


def plan_of(record: CampaignRecord) -> CampaignPlan:
    s = record.settings
    return CampaignPlan(
        campaign_id=str(record.id),
        name=record.name,
        dial_string_template=s.dial_string,
        caller_id_number=s.caller_id,
        caller_id_name=s.caller_id_name,
        ring_timeout_s=s.ring_timeout_s,
        amd_policy=AmdPolicy(s.amd_policy.value),
        machine_message=s.machine_message,
        identification_message=s.identification_message or "dialer-identification",
        answer_to_agent_limit_s=s.connect_limit_s,
        wrap_up_limit_s=s.wrap_up_limit_s,
        default_disposition=s.default_disposition,
        pbx_name=s.pbx,
        recording=s.recording.value,
        recording_announcement=s.recording_announcement,
    )


def rules_of(settings: CampaignSettings) -> CampaignRules:
    return CampaignRules(profile=settings.jurisdiction, max_attempts_per_lead=settings.max_attempts)


async def pacer_of(
    db: Database, gate: ComplianceGate, record: CampaignRecord, limits: PacingLimits, now: datetime
) -> Pacer:
    """The campaign's pacer, its abandonment tracker refilled from the attempts of the window."""
    s = record.settings
    profile = gate.profiles.for_campaign(rules_of(s))
    window = profile.abandon_window or DEFAULT_ABANDON_WINDOW
    cap = min(s.abandon_cap, profile.abandon_rate_cap) if profile.abandon_rate_cap else s.abandon_cap
    params: dict[str, object] = {}
    if s.pacing_mode is PacingMode.RATIO:
        params["ratio"] = s.dial_ratio
    pacer = make_pacer(s.pacing_mode.value, params, cap, window.total_seconds(), str(record.id), limits)
    history = await db.attempts.abandon_history(record.id, now - window)
    kept = pacer.tracker.restore((h.at.timestamp(), h.person_answered, h.abandoned) for h in history)
    if kept:
        log.info(
            "campaign %s: %d person-answered call(s) of the window reloaded for pacing", record.name, kept
        )
    return pacer


def pbx_of(settings: PbxSettings) -> Pbx:
    # Imported here: the CLI commands share this module and never talk to a PBX.
    from telephony.asterisk.adapter import AsteriskPbx
    from telephony.asterisk.settings import AsteriskSettings
    from telephony.freeswitch.adapter import FreeSwitchPbx, FreeSwitchSettings

    if settings.kind == "asterisk":
        return AsteriskPbx(
            AsteriskSettings(
                host=settings.host,
                port=settings.port,
                username=settings.username,
                secret=settings.secret,
                fastagi_host=settings.fastagi_bind,
                fastagi_port=settings.fastagi_port,
                action_timeout_s=settings.action_timeout_s,
                ping_interval_s=settings.ping_interval_s,
                sounds_dir=settings.sounds_dir,
                name=settings.name,
            )
        )
    # Every key of the adapter is settable: the [pbx.*] FreeSWITCH keys go through as they are.
    return FreeSwitchPbx(
        FreeSwitchSettings.from_options(
            {
                "host": settings.host,
                "port": settings.port,
                "password": settings.secret,
                "action_timeout_s": settings.action_timeout_s,
                "liveness_interval_s": settings.ping_interval_s,
                **dict(settings.freeswitch),
            }
        )
    )


@dataclass
class Runtime:
    """Everything a running node holds; ``close`` releases it in the right order."""

    db: Database
    gate: ComplianceGate
    pbx: Pbx
    agents: AgentRegistry
    engine: Engine
    gate_port: GatePort
    node_id: str
    relay: OutboxRelay  # carries refusals and do-not-calls from committed dispositions to the gate
    limits: PacingLimits = field(default_factory=PacingLimits)
    settings: Settings | None = None
    leases: CampaignLeases | None = None  # with Redis: the campaign leases this node takes and holds

    async def load_campaigns(self, now: datetime) -> list[str]:
        """Follow the campaigns' statuses: start the running ones, pause the others; returns new names.

        A running campaign this node cannot dial (unknown or loosening compliance profile, a PBX
        that is not configured) is refused on its own: it is paused with the reason (shown by
        ``dialer campaign show`` and logged) and every other campaign goes on dialing.
        """
        names = []
        for record in await self.db.campaigns.list():
            key = str(record.id)
            run = self.engine.campaigns.get(key)
            running = record.status is CampaignStatus.RUNNING
            if run is None:
                if not running:
                    continue
                problem = self.campaign_problem(record.settings)
                sounds: object = self.pbx
                if isinstance(self.pbx, PbxPool):  # only the PBXs this campaign dials on are asked
                    sounds = self.pbx.sounds_of(record.settings.pbx)
                problem = problem or await prompt_problem(sounds, record.settings, record.name)
                if problem is None:
                    try:
                        limits = self.limits_for(record.settings.pbx)
                        pacer = await pacer_of(self.db, self.gate, record, limits, now)
                    except ProfileError as exc:
                        problem = f"compliance profile: {exc}"
                if problem is not None:
                    log.error("campaign %s refused, not dialed: %s", record.name, problem)
                    await self.db.campaigns.refuse(record.id, problem, actor=self.node_id, now=now)
                    continue
                self.gate_port.rules[key] = rules_of(record.settings)
                self.engine.add_campaign(plan_of(record), pacer)
                names.append(record.name)
            elif run.paused == running:
                run.paused = not running
                log.info(
                    "campaign %s %s", record.name, "resumed" if running else f"now {record.status.value}"
                )
        return names

    def limits_for(self, pbx_name: str) -> PacingLimits:
        """The pacer's limits for a campaign on this PBX or group: the trunks it may use, together
        (the pool shares each trunk between its campaigns)."""
        node = self.settings
        if node is None or not node.pbxs:
            return self.limits
        first = node.pbx_for(pbx_name)
        tables = [first] if first is not None else [p for p in node.pbxs if pbx_name in p.groups]
        if not tables:
            return self.limits
        return PacingLimits(
            max_lines=sum(t.max_lines for t in tables),
            calls_per_second=sum(t.max_calls_per_second for t in tables),
            burst=self.limits.burst,
        )

    def campaign_problem(self, settings: CampaignSettings) -> str | None:
        """Why this node cannot dial a campaign with these settings, or None."""
        # A runtime given its PBX directly (the demo, tests) has no PBX names to check against.
        node = self.settings if self.settings is not None and self.settings.pbxs else None
        return campaign_problem(self.gate.profiles, settings, node)

    async def recover(self, now: datetime) -> int:
        """After a crash: free this node's lead claims, give every attempt it left open an outcome,
        and qualify with the campaign's default the calls whose agent never got to (the wrap-up
        timer died with the process)."""
        freed = await self.db.hopper.release_claims(self.node_id)
        closed = await self.engine.reconcile()
        for lost in await LeadAdmin(self.db).repair_interrupted_imports(now=now, actor=self.node_id):
            log.warning(
                "lead list %s (%s) was left 'importing' by an import that stopped; now 'interrupted' "
                "with its %d leads (import its file again to add the rest)",
                lost.id,
                lost.name,
                lost.leads,
            )
        defaulted = 0
        for record in await self.db.campaigns.list():
            for attempt_id in await self.db.dispositions.pending_wrap_ups(now, record.id):
                await self.db.dispositions.record_disposition(
                    attempt_id, record.settings.default_disposition, None, now=now
                )
                defaulted += 1
        if freed or closed or defaulted:
            log.warning(
                "recovered after an unclean stop: %d lead claim(s) freed, %d attempt(s) closed, "
                "%d wrap-up(s) given the default disposition",
                freed,
                closed,
                defaulted,
            )
        return closed

    async def close(self) -> None:
        if self.leases is not None:
            await self.leases.close()
        await self.pbx.stop()
        await self.gate.close()
        await self.db.close()


def campaign_problem(profiles: ProfileSet, campaign: CampaignSettings, node: Settings | None) -> str | None:
    """Why a campaign cannot be dialed with these profiles (and this node's PBXs), or None.

    The same check refuses a campaign when it is created or started, and at run time.
    """
    try:
        profile = profiles.for_campaign(rules_of(campaign))
    except ProfileError as exc:
        return f"compliance profile: {exc}"
    if (
        profile.recording_announcement
        and campaign.recording is not RecordingPolicy.NONE
        and not campaign.recording_announcement
    ):
        return (
            f"compliance profile {profile.code}: a recorded call must be announced; set the campaign's "
            "recording_announcement (a sound the PBX plays before the agent) or record none"
        )
    if node is not None:
        return node.pbx_problem(campaign.pbx)
    return None


def _country(code: str) -> str:
    country = code.split("-", 1)[0].split("_", 1)[0]
    return "GB" if country == "UK" else country


def jurisdiction_requirements(profiles: ProfileSet, code: str) -> list[str]:
    """What a jurisdiction asks of the operator before its calls go out: registries and consent."""
    profile = profiles.get(code)
    countries = {_country(code), _country(profile.code)}
    if profile.window.holiday_country:
        countries.add(profile.window.holiday_country)
    lines = []
    if profile.registry_screening:
        for rule in sorted(profiles.registries.values(), key=lambda r: r.name):
            if countries & set(rule.regions):
                lines.append(
                    f"registry {rule.name}: calls to {', '.join(rule.regions)} numbers are blocked until it "
                    f"is imported and again once it is {rule.max_age_days} days old "
                    f"(`dialer dnc import --registry {rule.name} --screened-on YYYY-MM-DD FILE`)"
                )
    consent = profile.consent_required_from
    if consent is None:
        lines.append("consent: not required beforehand by this profile")
    elif consent == date.min:
        lines.append(
            "consent: required for every call; leads without consent (import column `consent`) are not dialed"
        )
    else:
        lines.append(
            f"consent: required for calls from {consent.isoformat()}; from that day leads without consent "
            "(import column `consent`) are not dialed"
        )
    return lines


def compliance_config(settings: Settings, extra_profiles: tuple[Path, ...] = ()) -> ComplianceConfig:
    """The gate's configuration from the one settings object (daemon, demo and CLI alike)."""
    return ComplianceConfig(
        database_url=settings.database_url,
        redis_url=settings.redis_url,
        redis_namespace=settings.redis_namespace,
        profile_files=(*settings.profile_files, *extra_profiles),
        number_hash_key=settings.number_hash_key,
    )


def profile_set(settings: Settings) -> ProfileSet:
    """The built-in profiles with the operator's file: raises ProfileError naming a bad figure."""
    return load_profiles(settings.profile_files)


async def open_database(settings: Settings, *, check_schema: bool = True) -> Database:
    """The record of these settings, connected; a SQLite file that is not there is not created
    (only ``dialer migrate`` creates one), so a wrong path never yields an empty database."""
    db = Database(settings.database_url)
    path = sqlite_path(db.url)
    if check_schema and path is not None and not path.exists():
        raise DatabaseError(
            f"no database at {path} (from {settings.database_source}); create it with `dialer migrate`, "
            "or point --config, --db or DIALER_DATABASE_URL at the right one"
        )
    await db.connect()
    try:
        if check_schema:
            await db.check_schema()
    except BaseException:
        await db.close()
        raise
    return db


async def build_runtime(
    settings: Settings,
    *,
    pbx: Pbx | None = None,
    profile_files: tuple[Path, ...] = (),
) -> Runtime:
    """Connect the store (migrated), the gate and the PBX, and wire the engine."""
    db = await open_database(settings)
    try:
        gate = await build_gate(compliance_config(settings, profile_files), engine=db.engine)
    except BaseException:
        await db.close()
        raise
    if pbx is None:
        if not settings.pbxs:
            await gate.close()
            await db.close()
            raise ValueError("no PBX configured: add a [pbx.<name>] table to the config")
        pbx = pool_of(settings.pbxs, pbx_of)  # every [pbx.*] table, each with its own trunk limits
    agents = AgentRegistry(clock=time.time)
    record = SqlRecord(db, settings.node_id, agents)
    gate_port = GatePort(gate)
    engine = Engine(pbx, record, gate_port, agents, tick_s=settings.tick_s)
    if isinstance(pbx, PbxPool):
        pbx.attach(engine)
    relay = OutboxRelay(db, gate_port)
    record.outbox_written = relay.wake
    first = settings.pbxs[0] if settings.pbxs else None
    limits = PacingLimits(
        max_lines=first.max_lines if first else 50,
        calls_per_second=first.max_calls_per_second if first else None,
    )
    runtime = Runtime(db, gate, pbx, agents, engine, gate_port, settings.node_id, relay, limits, settings)
    if settings.redis_url:
        runtime.leases = campaign_leases(settings, db, engine)
        engine.leases = record.leases = runtime.leases
    return runtime


def campaign_leases(settings: Settings, db: Database, engine: Engine) -> CampaignLeases:
    """The node's campaign leases in Redis; taking one settles what the last holder left."""
    from redis.asyncio import Redis

    async def floor(campaign_id: str) -> int:
        return await highest_token(db, int(campaign_id))

    assert settings.redis_url is not None
    return CampaignLeases(
        RedisLeaseStore(Redis.from_url(settings.redis_url), settings.redis_namespace),
        settings.node_id,
        settings.lease_s,
        floor=floor,
        on_acquired=Takeover(db, engine, settings.node_id),
    )
