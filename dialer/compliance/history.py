"""Contact history per person (number and lead), across every campaign: the facts of contact pressure.

Every event is written to the database first (the record), then to the shared index:

* ``SqlContactHistory``: reads the database on each check; right for any number of processes;
* ``InProcessContactHistory``: one node without Redis; keeps the recent events in memory;
* ``RedisContactHistory``: several nodes; a sorted set per number key and per lead, so a refusal
  written by one node is seen by the next check on any other node.  If Redis lost its data (the
  ``ready`` marker is gone) reads fall back to the database rather than answering "no history".

Numbers are identified by a keyed hash (``NumberKeyer``), never stored in clear here.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from redis.asyncio import Redis
from sqlalchemy import Select, insert, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from dialer.compliance.tables import ComplianceSetting, ContactEventRow, read_only
from dialer.domain.compliance import EVENT_KINDS, ContactEvent, EventKind

_KEY_SETTING = "number_hash_key"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _micros(at: datetime) -> int:
    # Exact integer microseconds: a Redis score (a double) holds them without loss until year 2255.
    return (at - _EPOCH) // timedelta(microseconds=1)


def _events_since(since: datetime) -> Select[int, str, str, str, str, datetime]:
    """The contact events still inside the retention, to load a node's history at start-up."""
    return select(
        ContactEventRow.id,
        ContactEventRow.number_key,
        ContactEventRow.lead_id,
        ContactEventRow.campaign_id,
        ContactEventRow.kind,
        ContactEventRow.at,
    ).where(ContactEventRow.at > since)


class NumberKeyer:
    """HMAC of an E.164 number: searchable in the audit and history without storing the number."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("the number hash key must be at least 16 bytes")
        self._key = key

    def __call__(self, number_e164: str) -> str:
        return hmac.new(self._key, number_e164.encode(), hashlib.sha256).hexdigest()[:32]


async def keyer_from_database(engine: AsyncEngine, configured: str | None = None) -> NumberKeyer:
    """The configured key, else the one stored in the database (generated on first use).

    Every node on one database then hashes numbers alike, so the audit is searchable across nodes.
    """
    if configured:
        return NumberKeyer(configured.encode())
    async with engine.begin() as conn:
        found = await conn.execute(
            select(ComplianceSetting.value).where(ComplianceSetting.name == _KEY_SETTING)
        )
        value = found.scalar_one_or_none()
    if value is None:
        try:
            async with engine.begin() as conn:
                await conn.execute(
                    insert(ComplianceSetting).values(name=_KEY_SETTING, value=secrets.token_hex(32))
                )
        except IntegrityError:
            pass  # another node created it first; read theirs
        async with engine.connect() as conn:
            value = (
                await conn.execute(
                    select(ComplianceSetting.value).where(ComplianceSetting.name == _KEY_SETTING)
                )
            ).scalar_one()
    return NumberKeyer(value.encode())


class ContactHistory(Protocol):
    async def record(
        self, number_key: str, lead_id: str, campaign_id: str, kind: EventKind, at: datetime
    ) -> None: ...

    async def events(self, number_key: str, lead_id: str, since: datetime) -> Sequence[ContactEvent]: ...


def _check_kind(kind: str) -> EventKind:
    if kind not in EVENT_KINDS:
        raise ValueError(f"unknown contact event {kind!r}; use one of {', '.join(EVENT_KINDS)}")
    return kind


async def _insert(
    engine: AsyncEngine, number_key: str, lead_id: str, campaign_id: str, kind: EventKind, at: datetime
) -> int:
    async with engine.begin() as conn:
        result = await conn.execute(
            insert(ContactEventRow)
            .values(
                number_key=number_key, lead_id=lead_id, campaign_id=campaign_id, kind=_check_kind(kind), at=at
            )
            .returning(ContactEventRow.id)
        )
        return int(result.scalar_one())


async def _select(engine: AsyncEngine, number_key: str, lead_id: str, since: datetime) -> list[ContactEvent]:
    async with read_only(engine).connect() as conn:
        rows = await conn.execute(
            select(
                ContactEventRow.kind, ContactEventRow.at, ContactEventRow.campaign_id, ContactEventRow.lead_id
            ).where(
                or_(ContactEventRow.number_key == number_key, ContactEventRow.lead_id == lead_id),
                ContactEventRow.at > since,
            )
        )
        return [ContactEvent(_check_kind(k), at, c, lead) for k, at, c, lead in rows]


class SqlContactHistory:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def record(
        self, number_key: str, lead_id: str, campaign_id: str, kind: EventKind, at: datetime
    ) -> None:
        await _insert(self.engine, number_key, lead_id, campaign_id, kind, at)

    async def events(self, number_key: str, lead_id: str, since: datetime) -> Sequence[ContactEvent]:
        return await _select(self.engine, number_key, lead_id, since)


class InProcessContactHistory:
    """Recent events in memory, written through to the database; for a single node without Redis."""

    def __init__(self, engine: AsyncEngine, retention: timedelta) -> None:
        self.engine = engine
        self.retention = retention
        self._by_number: dict[str, dict[int, ContactEvent]] = defaultdict(dict)
        self._by_lead: dict[str, dict[int, ContactEvent]] = defaultdict(dict)

    async def start(self, now: datetime | None = None) -> None:
        since = (now or datetime.now(UTC)) - self.retention
        async with read_only(self.engine).connect() as conn:
            rows = await conn.execute(_events_since(since))
            for row_id, number_key, lead_id, campaign_id, kind, at in rows:
                self._remember(
                    int(row_id), number_key, ContactEvent(_check_kind(kind), at, campaign_id, lead_id)
                )

    def _remember(self, row_id: int, number_key: str, event: ContactEvent) -> None:
        self._by_number[number_key][row_id] = event
        self._by_lead[event.lead_id][row_id] = event

    async def record(
        self, number_key: str, lead_id: str, campaign_id: str, kind: EventKind, at: datetime
    ) -> None:
        row_id = await _insert(self.engine, number_key, lead_id, campaign_id, kind, at)
        self._remember(row_id, number_key, ContactEvent(kind, at, campaign_id, lead_id))
        self._prune(number_key, lead_id, at)

    def _prune(self, number_key: str, lead_id: str, now: datetime) -> None:
        horizon = now - self.retention
        for table, key in ((self._by_number, number_key), (self._by_lead, lead_id)):
            events = table.get(key)
            if events:
                for row_id in [i for i, e in events.items() if e.at <= horizon]:
                    del events[row_id]

    async def events(self, number_key: str, lead_id: str, since: datetime) -> Sequence[ContactEvent]:
        merged = {**self._by_number.get(number_key, {}), **self._by_lead.get(lead_id, {})}
        return [e for e in merged.values() if e.at > since]


class RedisContactHistory:
    """Events in Redis sorted sets (score: epoch microseconds), one per number key and one per lead."""

    def __init__(self, engine: AsyncEngine, redis: Redis, namespace: str, retention: timedelta) -> None:
        self.engine = engine
        self.redis = redis
        self.ns = namespace
        self.retention = retention

    def _keys(self, number_key: str, lead_id: str) -> tuple[str, str]:
        return f"{self.ns}ch:n:{number_key}", f"{self.ns}ch:l:{lead_id}"

    async def start(self, now: datetime | None = None) -> None:
        """Load the database's recent events into Redis if Redis does not hold them."""
        if await self.redis.exists(f"{self.ns}ch:ready"):
            return
        since = (now or datetime.now(UTC)) - self.retention
        async with read_only(self.engine).connect() as conn:
            rows = await conn.execute(_events_since(since))
            pipe = self.redis.pipeline(transaction=False)
            for row_id, number_key, lead_id, campaign_id, kind, at in rows:
                self._add(pipe, int(row_id), number_key, lead_id, campaign_id, kind, at)
            await pipe.execute()
        await self.redis.set(f"{self.ns}ch:ready", "1")

    def _add(
        self,
        pipe: object,
        row_id: int,
        number_key: str,
        lead_id: str,
        campaign_id: str,
        kind: str,
        at: datetime,
    ) -> None:
        member = f"{row_id}|{kind}|{campaign_id}|{lead_id}"
        score = _micros(at)
        ttl = int(self.retention.total_seconds()) + 86400
        for key in self._keys(number_key, lead_id):
            pipe.zadd(key, {member: score})  # type: ignore[attr-defined]
            pipe.expire(key, ttl)  # type: ignore[attr-defined]

    async def record(
        self, number_key: str, lead_id: str, campaign_id: str, kind: EventKind, at: datetime
    ) -> None:
        row_id = await _insert(self.engine, number_key, lead_id, campaign_id, kind, at)
        pipe = self.redis.pipeline(transaction=False)
        self._add(pipe, row_id, number_key, lead_id, campaign_id, kind, at)
        horizon = _micros(at - self.retention)
        for key in self._keys(number_key, lead_id):
            pipe.zremrangebyscore(key, "-inf", horizon)
        await pipe.execute()

    def read_keys(self, number_key: str, lead_id: str) -> tuple[str, str, str]:
        """The keys a check reads: the ready marker, the number's and the lead's event sets."""
        return (f"{self.ns}ch:ready", *self._keys(number_key, lead_id))

    @staticmethod
    def low_score(since: datetime) -> str:
        """The exclusive lowest score of the events a check reads."""
        return f"({_micros(since)}"

    async def events(self, number_key: str, lead_id: str, since: datetime) -> Sequence[ContactEvent]:
        ready_key, by_number, by_lead = self.read_keys(number_key, lead_id)
        low = self.low_score(since)
        pipe = self.redis.pipeline(transaction=False)
        pipe.exists(ready_key)
        pipe.zrangebyscore(by_number, low, "+inf", withscores=True)
        pipe.zrangebyscore(by_lead, low, "+inf", withscores=True)
        ready, number_events, lead_events = await pipe.execute()
        if not ready:
            return await _select(self.engine, number_key, lead_id, since)
        return _parse((*number_events, *lead_events))

    async def parse_events(
        self, replies: Sequence[Any], number_key: str, lead_id: str, since: datetime
    ) -> Sequence[ContactEvent]:
        """Events from the replies of a combined read: [ready] or [ready, number's, lead's] (flat)."""
        if not replies[0]:
            # Redis lost the history (restart, flush): the database still has it.
            return await _select(self.engine, number_key, lead_id, since)
        flat = (*replies[1], *replies[2])
        return _parse(zip(flat[::2], flat[1::2], strict=True))


def _parse(pairs: Iterable[tuple[bytes | str, bytes | str | float]]) -> list[ContactEvent]:
    """Events from (member, score) pairs; the same event found under the number and the lead counts once."""
    seen: dict[bytes | str, ContactEvent] = {}
    for member, score in pairs:
        if member in seen:
            continue
        text = member.decode() if isinstance(member, bytes) else member
        _, kind, campaign_id, lead = text.split("|", 3)
        # Scores are integer microseconds; a double prints them exactly, whatever the notation.
        at = _EPOCH + timedelta(microseconds=int(float(score)))
        seen[member] = ContactEvent(_check_kind(kind), at, campaign_id, lead)
    return list(seen.values())
