"""The compliance gate: gathers the facts for one candidate call, applies the rules, audits the decision.

The runtime calls, for every lead it is about to dial::

    decision = await gate.check(request, now)        # before the attempt row and the originate
    await gate.record_attempt(number, lead, campaign, at)      # right after the attempt row exists
    await gate.record_outcome(number, lead, campaign, "refusal" | "abandoned" | "machine" | "contact", at)

Anything that stops a rule from being evaluated (unknown profile, store down, an exception in a
rule, an audit that cannot be written) blocks the call and records why: the gate fails closed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

from prometheus_client import Counter
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from dialer.compliance.audit import DECISIONS, AuditEntry, SqlAuditSink
from dialer.compliance.dnc import DncStore, StoreUnavailable
from dialer.compliance.erased import ErasedNumbers
from dialer.compliance.history import (
    ContactHistory,
    InProcessContactHistory,
    NumberKeyer,
    RedisContactHistory,
    keyer_from_database,
)
from dialer.compliance.profiles import ProfileSet, load_profiles
from dialer.domain.compliance import (
    OUTCOME_KINDS,
    RULE_ERROR,
    RULE_PROFILE,
    RULE_STORE,
    CallRequest,
    CampaignRules,
    Decision,
    Facts,
    Profile,
    ProfileError,
    decide,
    parse_number,
)
from dialer.store.db import Database
from telephony.base import mask_number

log = logging.getLogger(__name__)


class AuditSink(Protocol):
    @property
    def healthy(self) -> bool: ...

    def record(self, entry: AuditEntry) -> None: ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class ComplianceConfig:
    """Everything the gate needs to start; built once from the TOML config or the CLI options."""

    database_url: str
    redis_url: str | None = None
    redis_namespace: str = "dialer:"
    profile_files: tuple[Path, ...] = ()
    number_hash_key: str | None = None  # None: generated once and kept in the database
    dnc_refresh_seconds: float = 1.0
    registry_status_cache_seconds: float = 30.0
    audit_flush_seconds: float = 0.5


class ComplianceGate:
    def __init__(
        self,
        profiles: ProfileSet,
        dnc_store: DncStore,
        contact_history: ContactHistory,
        audit_sink: AuditSink,
        keyer: NumberKeyer,
        closers: tuple[object, ...] = (),
        erased: ErasedNumbers | None = None,
    ) -> None:
        self.profiles = profiles
        self.dnc = dnc_store
        self.history = contact_history
        self.audit = audit_sink
        self.keyer = keyer
        self._closers = closers
        self.erased = erased  # do-not-call entries of erased customers, as keyed hashes
        # The metric's children by (allowed, rule): a closed set, looked up once each.
        self._counters: dict[tuple[bool, str], Counter] = {}

    def validate(self, rules: CampaignRules) -> Profile:
        """The campaign's effective profile; ProfileError (naming the figure) if it loosens its profile.

        Call when a campaign is created or started, so a bad override is refused up front rather
        than blocking every call.
        """
        return self.profiles.for_campaign(rules)

    async def check(self, request: CallRequest, now: datetime) -> Decision:
        """May this lead be dialled now?  Never raises: a failure is a block with its reason."""
        try:
            number_key = self.keyer(request.number_e164)
        except Exception:  # a number the hash cannot take is still audited
            number_key = ""
        decision = await self._decide(request, number_key, now)
        masked = mask_number(request.number_e164)
        if not self.audit.healthy:
            decision = Decision.block(RULE_STORE, "compliance audit cannot be written; no call until it can")
        self.audit.record(
            AuditEntry(
                now,
                "allow" if decision.allowed else "block",
                decision.rule,
                decision.reason,
                masked,
                number_key,
                request.lead_id,
                request.campaign_id,
                decision.retry_after,
            )
        )
        counter = self._counters.get((decision.allowed, decision.rule))
        if counter is None:
            counter = DECISIONS.labels("allow" if decision.allowed else "block", decision.rule)
            self._counters[decision.allowed, decision.rule] = counter
        counter.inc()
        if not decision.allowed:
            log.debug(
                "blocked %s lead=%s campaign=%s rule=%s: %s",
                masked,
                request.lead_id,
                request.campaign_id,
                decision.rule,
                decision.reason,
            )
        return decision

    async def _decide(self, request: CallRequest, number_key: str, now: datetime) -> Decision:
        try:
            profile = self.profiles.for_campaign(request.campaign_rules)
        except ProfileError as exc:
            return Decision.block(RULE_PROFILE, str(exc))
        try:
            if now.tzinfo is None:
                raise ValueError("the gate needs an aware 'now'")
            parsed = parse_number(request.number_e164)
            if parsed is None:
                facts = Facts()
            else:
                # A parsed number is its own E.164 text, so the key hashed for the audit is its key;
                # only a number the hash refused is hashed again, to fail here with the reason.
                key = number_key or self.keyer(parsed.e164)
                facts = await self._facts(request, parsed.digits, key, now - profile.history_horizon())
            return decide(request, facts, profile, now, self.profiles.registries.values())
        except (StoreUnavailable, RedisError, SQLAlchemyError, OSError) as exc:
            log.warning("compliance store unavailable, call blocked: %s", exc)
            return Decision.block(RULE_STORE, f"store unavailable: {type(exc).__name__}: {exc}")
        except Exception as exc:
            log.exception("compliance rule failed, call blocked")
            return Decision.block(RULE_ERROR, f"rule could not be evaluated: {type(exc).__name__}: {exc}")

    async def _facts(self, request: CallRequest, digits: int, number_key: str, since: datetime) -> Facts:
        status = await self.dnc.registry_status()
        redis_index = getattr(self.dnc, "redis_index", None)  # fakes in tests may not have one
        history = self.history
        if (
            redis_index is not None
            and isinstance(history, RedisContactHistory)
            and history.redis is redis_index.redis
        ):
            # One round trip, one command: the DNC script reads the contact history too.
            await self.dnc.maybe_refresh()
            hits, replies = await redis_index.read(
                digits,
                request.campaign_id,
                history.read_keys(number_key, request.lead_id),
                history.low_score(since),
            )
            events = await history.parse_events(replies, number_key, request.lead_id, since)
        else:
            hits = await self.dnc.lookup(digits, request.campaign_id)
            events = await history.events(number_key, request.lead_id, since)
        if self.erased is not None:
            hits = [*hits, *await self.erased.hits(f"+{digits}", request.campaign_id)]
        return Facts(hits, status, events)

    async def record_attempt(self, number: str, lead_id: str, campaign_id: str, at: datetime) -> None:
        """Count an attempt against the person (all campaigns); call once the attempt row exists."""
        await self.history.record(self.keyer(number), lead_id, campaign_id, "attempt", at)

    async def record_outcome(
        self, number: str, lead_id: str, campaign_id: str, kind: str, at: datetime
    ) -> None:
        """Record a refusal, abandoned call, detected machine or contact: lock-outs start from here."""
        if kind not in OUTCOME_KINDS:
            raise ValueError(f"unknown outcome {kind!r}; use one of {', '.join(OUTCOME_KINDS)}")
        await self.history.record(self.keyer(number), lead_id, campaign_id, kind, at)

    async def close(self) -> None:
        stop_reloads = getattr(self.dnc, "close", None)  # fakes in tests may not have one
        if stop_reloads is not None:
            await stop_reloads()
        await self.audit.close()
        if self.erased is not None:
            await self.erased.close()
        for resource in self._closers:
            if isinstance(resource, Redis):
                await resource.aclose()
            elif isinstance(resource, Database):
                await resource.close()


def history_retention(profiles: ProfileSet) -> timedelta:
    """The longest look-back any profile needs, so one history serves every campaign."""
    return max((p.history_horizon() for p in profiles.profiles.values()), default=timedelta(days=30))


async def build_gate(
    config: ComplianceConfig, engine: AsyncEngine | None = None, redis: Redis | None = None
) -> ComplianceGate:
    """Build the gate from its config: profiles, DNC store, contact history and audit, ready to check.

    Raises ProfileError (a profile loosens the law or is malformed) before anything is dialled.
    """
    profiles = load_profiles(config.profile_files)
    closers: list[object] = []
    if engine is None:
        # The store's Database sets SQLite up for concurrent writers (WAL, busy timeout, BEGIN IMMEDIATE).
        database = Database(config.database_url)
        await database.connect()
        engine = database.engine
        closers.append(database)
    if redis is None and config.redis_url:
        redis = Redis.from_url(config.redis_url)
        closers.append(redis)
    keyer = await keyer_from_database(engine, config.number_hash_key)
    dnc = DncStore(
        engine,
        dict(profiles.registries),
        redis,
        config.redis_namespace,
        config.dnc_refresh_seconds,
        config.registry_status_cache_seconds,
    )
    await dnc.start()
    retention = history_retention(profiles)
    history: ContactHistory
    if redis is not None:
        redis_history = RedisContactHistory(engine, redis, config.redis_namespace, retention)
        await redis_history.start()
        history = redis_history
    else:
        local_history = InProcessContactHistory(engine, retention)
        await local_history.start()
        history = local_history
    audit = SqlAuditSink(engine, config.audit_flush_seconds)
    erased = ErasedNumbers(engine, config.dnc_refresh_seconds)
    await erased.start()
    return ComplianceGate(profiles, dnc, history, audit, keyer, tuple(closers), erased)
