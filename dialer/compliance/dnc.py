"""Do-not-call store: global and campaign lists, national registry imports, shared by every node.

The database is the record of every entry and import.  What the gate reads on each call is an
index kept beside it:

* in-process (embedded, one node): each registry is a sorted numpy ``uint64`` array searched with
  ``searchsorted`` (8 bytes a number), manual entries a dict; changes made by other processes (the
  CLI) are picked up from the database at most ``refresh_seconds`` later;
* Redis (several nodes): numbers live in hashes bucketed by ``number // 1000`` whose field is the last
  three digits, so each bucket stays in Redis' compact listpack encoding; a registry re-import
  writes a new generation and switches to it atomically.  An agent's "do not call" reaches every
  node the moment the HSET returns.

A lookup never answers "not listed" when it could not look: a missing Redis index raises
``StoreUnavailable`` and the gate blocks the call.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import time as monotime
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import phonenumbers
from redis.asyncio import Redis
from redis.exceptions import NoScriptError
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from dialer.compliance.tables import DncEntry, DncRegistryImport, DncRegistryNumber, read_only
from dialer.domain.compliance import DncHit, RegistryRule, parse_number
from telephony.base import mask_number

log = logging.getLogger(__name__)

GLOBAL = "global"
BUCKET = 1000
_INSERT_CHUNK = 20_000


class StoreUnavailable(RuntimeError):
    """A store the gate depends on cannot answer; the call must not be placed."""


class DncInputError(ValueError):
    """A number or scope the operator gave is unusable; the message says what to do."""


def e164_digits(number: str) -> int:
    parsed = parse_number(number)
    if parsed is None:
        raise DncInputError(f"{mask_number(number)} is not a valid E.164 number; write it as +33612345678")
    return parsed.digits


@dataclass
class ImportReport:
    registry: str
    screened_on: date
    numbers: int
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (line number, text)
    import_id: int = 0


def parse_registry_lines(
    lines: Iterable[str], regions: tuple[str, ...]
) -> Iterator[tuple[int, int | None, str]]:
    """(line number, E.164 digits or None when unusable, raw text) for each non-empty line.

    Registries ship plain files in national or international format; a line is accepted when it
    has the length of a number of the registry's country.  A national number is written with the
    trunk prefix (``0612345678``) or without it (US/CA ten digits).
    """
    region = regions[0] if regions else "ZZ"
    cc = str(phonenumbers.country_code_for_region(region)) if region != "ZZ" else ""
    for lineno, raw in enumerate(lines, start=1):
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        digits = "".join(ch for ch in text if ch.isdigit())
        if text.startswith("+"):
            value = digits
        elif digits.startswith("00"):
            value = digits[2:]
        elif cc == "1" and len(digits) == 10:
            value = "1" + digits
        elif cc and digits.startswith("0"):
            value = cc + digits[1:]
        elif cc and digits.startswith(cc) and len(digits) >= 10:
            value = digits
        else:
            value = ""
        if not (8 <= len(value) <= 15) or value.startswith("0") or not _shape_ok(value, cc):
            yield lineno, None, text
        else:
            yield lineno, int(value), text


def _shape_ok(value: str, cc: str) -> bool:
    # A registry file with the wrong country (or junk) should be rejected, not silently loaded.
    if cc and not value.startswith(cc):
        return False
    return not (cc == "1" and len(value) != 11)


# --------------------------------------------------------------------------- in-process index


class InProcessIndex:
    """Sorted arrays per registry plus small dicts for manual entries."""

    def __init__(self) -> None:
        self.registries: dict[str, np.ndarray[Any, np.dtype[np.uint64]]] = {}
        self.manual: dict[int, dict[str, DncHit]] = {}  # number -> scope ("global"/campaign) -> hit

    def set_registry(self, registry: str, numbers: np.ndarray[Any, np.dtype[np.uint64]]) -> None:
        self.registries[registry] = np.unique(numbers.astype(np.uint64, copy=False))

    def add(self, number: int, scope: str, hit: DncHit) -> None:
        self.manual.setdefault(number, {})[scope] = hit

    def remove(self, number: int, scope: str) -> None:
        scopes = self.manual.get(number)
        if scopes is not None:
            scopes.pop(scope, None)
            if not scopes:
                del self.manual[number]

    def lookup(self, number: int, campaign_id: str) -> list[DncHit]:
        hits: list[DncHit] = []
        scopes = self.manual.get(number)
        if scopes:
            for scope in (GLOBAL, campaign_id):
                hit = scopes.get(scope)
                if hit is not None:
                    hits.append(hit)
        key = np.uint64(number)
        for name, arr in self.registries.items():
            i = int(arr.searchsorted(key))
            if i < arr.shape[0] and arr[i] == key:
                hits.append(DncHit(name, f"registry {name}"))
        return hits

    def nbytes(self) -> int:
        return sum(int(a.nbytes) for a in self.registries.values())


# --------------------------------------------------------------------------- Redis index

_LOOKUP = """
local ns, bucket, fieldname, campaign = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if redis.call('EXISTS', ns .. 'dnc:ready') == 0 then return {{'!'}} end
local out = {}
local v = redis.call('HGET', ns .. 'dnc:g:' .. bucket, fieldname)
if v then out[#out + 1] = 'global'; out[#out + 1] = v end
if campaign ~= '' then
  v = redis.call('HGET', ns .. 'dnc:c:' .. campaign .. ':' .. bucket, fieldname)
  if v then out[#out + 1] = 'campaign'; out[#out + 1] = v end
end
local gens = redis.call('HGETALL', ns .. 'dnc:rgen')
for i = 1, #gens, 2 do
  v = redis.call('HGET', ns .. 'dnc:r:' .. gens[i] .. ':' .. gens[i + 1] .. ':' .. bucket, fieldname)
  if v then out[#out + 1] = gens[i]; out[#out + 1] = v end
end
if #KEYS == 0 then return {out} end
-- The contact history rides along (KEYS: its ready marker, the number's and the lead's event sets;
-- ARGV[5]: the exclusive lowest score), so a decision costs one round trip.
if redis.call('EXISTS', KEYS[1]) == 0 then return {out, 0} end
return {
  out, 1,
  redis.call('ZRANGEBYSCORE', KEYS[2], ARGV[5], '+inf', 'WITHSCORES'),
  redis.call('ZRANGEBYSCORE', KEYS[3], ARGV[5], '+inf', 'WITHSCORES'),
}
"""


def _encode(source: str, expires_at: datetime | None) -> str:
    return f"{source}\t{int(expires_at.timestamp()) if expires_at else ''}"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _decode(scope: str, value: str) -> DncHit:
    source, _, expiry = value.partition("\t")
    return DncHit(
        scope, source or f"registry {scope}", datetime.fromtimestamp(int(expiry), UTC) if expiry else None
    )


class RedisIndex:
    def __init__(self, redis: Redis, namespace: str) -> None:
        self.redis = redis
        self.ns = namespace
        self._sha = hashlib.sha1(_LOOKUP.encode()).hexdigest()

    def _manual_key(self, number: int, scope: str) -> str:
        if scope == GLOBAL:
            return f"{self.ns}dnc:g:{number // BUCKET}"
        return f"{self.ns}dnc:c:{scope}:{number // BUCKET}"

    def parse_lookup(self, raw: Sequence[Any]) -> list[DncHit]:
        if len(raw) == 1 and raw[0] in (b"!", "!"):
            raise StoreUnavailable("Redis holds no DNC index (restarted or flushed); run 'dialer dnc sync'")
        return [_decode(_text(raw[i]), _text(raw[i + 1])) for i in range(0, len(raw), 2)]

    async def read(
        self, number: int, campaign_id: str, keys: Sequence[str] = (), low: str = ""
    ) -> tuple[list[DncHit], list[Any]]:
        """The number's DNC hits, and the replies of the reads ``keys`` ask for, in one round trip.

        With ``keys`` (the contact history's ready marker and event sets, ``low`` the exclusive
        lowest score) the rest of the reply is [ready, number's events, lead's events], each event
        set a flat list of member, score.  Loads the script if Redis forgot it.
        """
        args: tuple[str | int, ...] = (*keys, self.ns, number // BUCKET, number % BUCKET, campaign_id, low)
        try:
            reply: list[Any] = await self.redis.evalsha(self._sha, len(keys), *args)
        except NoScriptError:
            await self.redis.script_load(_LOOKUP)
            reply = await self.redis.evalsha(self._sha, len(keys), *args)
        return self.parse_lookup(reply[0]), reply[1:]

    async def lookup(self, number: int, campaign_id: str) -> list[DncHit]:
        return (await self.read(number, campaign_id))[0]

    async def add(self, number: int, scope: str, source: str, expires_at: datetime | None) -> None:
        await self.redis.hset(
            self._manual_key(number, scope), str(number % BUCKET), _encode(source, expires_at)
        )

    async def remove(self, number: int, scope: str) -> None:
        await self.redis.hdel(self._manual_key(number, scope), str(number % BUCKET))

    async def load_registry(self, registry: str, generation: int, numbers: np.ndarray[Any, Any]) -> None:
        """Write a new generation of a registry, switch to it, then drop the old one."""
        prefix = f"{self.ns}dnc:r:{registry}:{generation}:"
        arr = np.unique(numbers.astype(np.uint64, copy=False))
        buckets = arr // np.uint64(BUCKET)
        fields = arr % np.uint64(BUCKET)
        starts = (
            np.flatnonzero(np.r_[True, buckets[1:] != buckets[:-1]]) if arr.size else np.empty(0, np.int64)
        )
        ends = np.r_[starts[1:], arr.shape[0]] if arr.size else starts
        pipe = self.redis.pipeline(transaction=False)
        pending = 0
        for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
            pipe.hset(prefix + str(int(buckets[s])), mapping={str(f): "" for f in fields[s:e].tolist()})
            pending += 1
            if pending >= 2000:
                await pipe.execute()
                pending = 0
        if pending:
            await pipe.execute()
        old = await self.redis.hget(f"{self.ns}dnc:rgen", registry)
        await self.redis.hset(f"{self.ns}dnc:rgen", registry, str(generation))
        if old is not None and int(old) != generation:
            await self._drop(f"{self.ns}dnc:r:{registry}:{int(old)}:*")

    async def _drop(self, pattern: str) -> None:
        batch: list[str | bytes] = []
        async for key in self.redis.scan_iter(match=pattern, count=5000):
            batch.append(key)
            if len(batch) >= 5000:
                await self.redis.unlink(*batch)
                batch = []
        if batch:
            await self.redis.unlink(*batch)

    async def generations(self) -> dict[str, int]:
        raw = await self.redis.hgetall(f"{self.ns}dnc:rgen")
        return {(k.decode() if isinstance(k, bytes) else str(k)): int(v) for k, v in raw.items()}

    async def ready(self) -> bool:
        return bool(await self.redis.exists(f"{self.ns}dnc:ready"))

    async def mark_ready(self) -> None:
        await self.redis.set(f"{self.ns}dnc:ready", "1")


# --------------------------------------------------------------------------- the store


class Freshness:
    """Keeps a cache loaded from the database fresh without making a decision wait for the load.

    Once three quarters of the allowed age have passed, a reload starts in the background; a caller
    waits only when the cache is older than the allowed age, and then gets the reload's error if it
    fails, so nothing is ever judged on data older than that (fail closed).  The age counts from the
    start of the last load that succeeded: anything committed after it began may have been missed.
    """

    def __init__(self, load: Callable[[], Awaitable[None]], what: str) -> None:
        self._load = load
        self._what = what
        self.loaded_at = -math.inf  # monotonic start of the last successful load
        self._generation = 0  # bumped by invalidate: a load begun before it does not count
        self._task: asyncio.Task[None] | None = None

    async def within(self, max_age: float) -> None:
        called = monotime.monotonic()
        if called - self.loaded_at <= max_age * 0.75:
            return
        if self._task is None:
            self._start()
        # Overdue: wait for a load that began no earlier than max_age before this call (with max_age
        # 0, one begun after it), not merely for the one in flight, which may have begun long ago.
        fresh_from = called - max_age
        while self.loaded_at < fresh_from:
            task = self._task or self._start()
            # shield: a caller given up on (timeout, shutdown) must not cancel the load others wait for.
            await asyncio.shield(task)

    def invalidate(self) -> None:
        """The next caller waits for a fresh load (after a change this process made itself)."""
        self.loaded_at = -math.inf
        self._generation += 1

    def mark_loaded(self, started: float) -> None:
        self.loaded_at = max(self.loaded_at, started)

    def _start(self) -> asyncio.Task[None]:
        task = self._task = asyncio.get_running_loop().create_task(self._run(monotime.monotonic()))
        task.add_done_callback(self._done)
        return task

    async def _run(self, started: float) -> None:
        generation = self._generation
        await self._load()
        if generation == self._generation:
            self.mark_loaded(started)

    def _done(self, task: asyncio.Task[None]) -> None:
        if self._task is task:
            self._task = None
        if not task.cancelled() and task.exception() is not None:
            # Whoever waits on it blocks its call; a load nobody waited for is only worth a line.
            log.warning("%s could not be reloaded from the database: %s", self._what, task.exception())

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task


class DncStore:
    """Add, remove, import and look up do-not-call numbers; SQL always, Redis when configured."""

    def __init__(
        self,
        engine: AsyncEngine,
        registries: dict[str, RegistryRule],
        redis: Redis | None = None,
        namespace: str = "dialer:",
        refresh_seconds: float = 1.0,
        status_cache_seconds: float = 30.0,
    ) -> None:
        self.engine = engine
        self._reader = read_only(engine)
        self.registry_rules = registries
        self.redis_index = RedisIndex(redis, namespace) if redis is not None else None
        self.local = InProcessIndex()
        self.refresh_seconds = refresh_seconds
        self.status_cache_seconds = status_cache_seconds
        self._last_entry_id = 0
        self._last_removal_check = datetime.now(UTC)
        self._loaded_imports: dict[str, int] = {}
        self._status: dict[str, date | None] = {}
        # Entries written by a process that does not share our index (a CLI run without --redis).
        self._index_fresh = Freshness(lambda: self._refresh(full=False), "the DNC index")
        self._status_fresh = Freshness(self._load_status, "the registry status")

    # ---- start-up

    async def start(self) -> None:
        """Load the index the gate reads (in-process), or rebuild Redis if it lost it."""
        started = monotime.monotonic()
        if self.redis_index is None:
            await self._refresh(full=True)
        else:
            if not await self.redis_index.ready():
                await self.sync_redis()
            async with self._reader.connect() as conn:
                # Redis already holds what the database held when it was built; watch only what comes next.
                self._last_entry_id = int((await conn.execute(select(func.max(DncEntry.id)))).scalar() or 0)
        self._index_fresh.mark_loaded(started)

    async def close(self) -> None:
        """Stop a reload still running in the background."""
        await self._index_fresh.close()
        await self._status_fresh.close()

    async def sync_redis(self) -> None:
        """Rebuild the Redis index from the database (after a Redis restart)."""
        assert self.redis_index is not None
        async with self._reader.connect() as conn:
            rows = await conn.execute(
                select(DncEntry.number, DncEntry.campaign_id, DncEntry.source, DncEntry.expires_at).where(
                    DncEntry.removed_at.is_(None)
                )
            )
            for number, campaign_id, source, expires_at in rows:
                await self.redis_index.add(int(number[1:]), campaign_id or GLOBAL, source, expires_at)
            for registry, import_id in (await self._active_imports(conn)).items():
                numbers = await self._registry_numbers(conn, import_id)
                await self.redis_index.load_registry(registry, import_id, numbers)
        await self.redis_index.mark_ready()
        log.info("DNC index rebuilt in Redis from the database")

    # ---- writes

    async def add(
        self,
        number: str,
        scope: str = GLOBAL,
        source: str = "manual",
        expires_at: datetime | None = None,
        now: datetime | None = None,
    ) -> None:
        """Put a number on the global list or on one campaign's list (scope = campaign id)."""
        digits = e164_digits(number)
        if not scope:
            raise DncInputError("scope is empty; use 'global' or a campaign id")
        now = now or datetime.now(UTC)
        async with self.engine.begin() as conn:
            await conn.execute(
                insert(DncEntry).values(
                    number=f"+{digits}",
                    campaign_id=None if scope == GLOBAL else scope,
                    source=source,
                    created_at=now,
                    expires_at=expires_at,
                )
            )
        # The database commit comes first: Redis can be rebuilt from it, never the other way round.
        if self.redis_index is not None:
            await self.redis_index.add(digits, scope, source, expires_at)
        self.local.add(digits, scope, DncHit(scope if scope == GLOBAL else "campaign", source, expires_at))
        log.info("DNC add %s scope=%s source=%s", mask_number(f"+{digits}"), scope, source)

    async def remove(self, number: str, scope: str = GLOBAL, removed_by: str = "manual") -> int:
        """Take a number off a list (kept in the database as removed); returns how many entries."""
        digits = e164_digits(number)
        now = datetime.now(UTC)
        campaign = DncEntry.campaign_id.is_(None) if scope == GLOBAL else DncEntry.campaign_id == scope
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(DncEntry)
                .where(DncEntry.number == f"+{digits}", campaign, DncEntry.removed_at.is_(None))
                .values(removed_at=now, removed_by=removed_by)
            )
        if self.redis_index is not None:
            await self.redis_index.remove(digits, scope)
        self.local.remove(digits, scope)
        return int(result.rowcount or 0)

    async def import_registry(self, path: Path, registry: str, screened_on: date) -> ImportReport:
        """Replace a registry's numbers with a plain file screened (downloaded) on ``screened_on``."""
        rule = self.registry_rules.get(registry)
        if rule is None:
            raise DncInputError(
                f"unknown registry {registry!r}; known: {', '.join(sorted(self.registry_rules))}"
            )
        if screened_on > datetime.now(UTC).date():
            raise DncInputError(f"screened-on date {screened_on} is in the future; give the download date")
        report = ImportReport(registry, screened_on, 0)
        values: list[int] = []
        with path.open(encoding="utf-8", errors="replace") as fh:
            for lineno, number, text in parse_registry_lines(fh, rule.regions):
                if number is None:
                    report.rejected.append((lineno, text))
                else:
                    values.append(number)
        numbers = np.unique(np.asarray(values, dtype=np.uint64))
        report.numbers = int(numbers.shape[0])
        async with self.engine.begin() as conn:
            result = await conn.execute(
                insert(DncRegistryImport)
                .values(
                    registry_name=registry,
                    screened_on=screened_on,
                    imported_at=datetime.now(UTC),
                    file_name=str(path)[-400:],
                    numbers=report.numbers,
                    rejected=len(report.rejected),
                    active=False,
                )
                .returning(DncRegistryImport.id)
            )
            import_id = int(result.scalar_one())
            as_list = numbers.tolist()
            for start in range(0, len(as_list), _INSERT_CHUNK):
                chunk = as_list[start : start + _INSERT_CHUNK]
                await conn.execute(
                    insert(DncRegistryNumber), [{"import_id": import_id, "number": n} for n in chunk]
                )
            previous = select(DncRegistryImport.id).where(
                DncRegistryImport.registry_name == registry, DncRegistryImport.id != import_id
            )
            await conn.execute(delete(DncRegistryNumber).where(DncRegistryNumber.import_id.in_(previous)))
            await conn.execute(
                update(DncRegistryImport).where(DncRegistryImport.id == import_id).values(active=True)
            )
            await conn.execute(
                update(DncRegistryImport)
                .where(DncRegistryImport.registry_name == registry, DncRegistryImport.id != import_id)
                .values(active=False)
            )
        report.import_id = import_id
        if self.redis_index is not None:
            await self.redis_index.load_registry(registry, import_id, numbers)
        self.local.set_registry(registry, numbers)
        self._loaded_imports[registry] = import_id
        self._status_fresh.invalidate()
        log.info(
            "registry %s imported: %d numbers, %d rejected lines",
            registry,
            report.numbers,
            len(report.rejected),
        )
        return report

    async def load_index(self, registry: str, import_id: int, numbers: np.ndarray[Any, Any]) -> None:
        """Put the numbers of an import the database already records into the index the gate reads."""
        if self.redis_index is not None:
            await self.redis_index.load_registry(registry, import_id, numbers)
        else:
            self.local.set_registry(registry, numbers)
            self._loaded_imports[registry] = import_id

    # ---- reads

    async def maybe_refresh(self) -> None:
        """Pick up what other processes wrote to the database; waits only if that is overdue."""
        await self._index_fresh.within(self.refresh_seconds)

    async def lookup(self, digits: int, campaign_id: str) -> list[DncHit]:
        """Every list the number is on (expired entries included: the rules judge expiry)."""
        await self._index_fresh.within(self.refresh_seconds)
        if self.redis_index is not None:
            return await self.redis_index.lookup(digits, campaign_id)
        return self.local.lookup(digits, campaign_id)

    async def registry_status(self) -> dict[str, date | None]:
        """Screening day of the active import of every known registry (None: never imported).

        Cached briefly: a newer import only makes the cached date look older, which blocks more.
        """
        await self._status_fresh.within(self.status_cache_seconds)
        return self._status

    async def _load_status(self) -> None:
        async with self._reader.connect() as conn:
            rows = await conn.execute(
                select(DncRegistryImport.registry_name, DncRegistryImport.screened_on).where(
                    DncRegistryImport.active.is_(True)
                )
            )
            status: dict[str, date | None] = dict.fromkeys(self.registry_rules)
            status.update({r: d for r, d in rows})
        self._status = status

    async def check(self, number: str, campaign_id: str = "") -> list[DncHit]:
        """What the database says about a number (for the CLI; the gate uses ``lookup``)."""
        digits = e164_digits(number)
        async with self._reader.connect() as conn:
            rows = await conn.execute(
                select(DncEntry.campaign_id, DncEntry.source, DncEntry.expires_at).where(
                    DncEntry.number == f"+{digits}", DncEntry.removed_at.is_(None)
                )
            )
            hits = [
                DncHit(GLOBAL if c is None else f"campaign {c}", s, e)
                for c, s, e in rows
                if not campaign_id or c is None or c == campaign_id
            ]
            regs = await conn.execute(
                select(DncRegistryImport.registry_name)
                .join(DncRegistryNumber, DncRegistryNumber.import_id == DncRegistryImport.id)
                .where(DncRegistryNumber.number == digits, DncRegistryImport.active.is_(True))
            )
            hits += [DncHit(r, f"registry {r}") for (r,) in regs]
        return hits

    def memory_bytes(self) -> int:
        return self.local.nbytes()

    # ---- in-process refresh from the database

    async def _active_imports(self, conn: Any) -> dict[str, int]:
        rows = await conn.execute(
            select(DncRegistryImport.registry_name, func.max(DncRegistryImport.id))
            .where(DncRegistryImport.active.is_(True))
            .group_by(DncRegistryImport.registry_name)
        )
        return {r: int(i) for r, i in rows}

    async def _registry_numbers(self, conn: Any, import_id: int) -> np.ndarray[Any, np.dtype[np.uint64]]:
        result = await conn.stream(
            select(DncRegistryNumber.number).where(DncRegistryNumber.import_id == import_id)
        )
        parts: list[np.ndarray[Any, np.dtype[np.uint64]]] = []
        async for chunk in result.partitions(100_000):
            parts.append(np.fromiter((row[0] for row in chunk), dtype=np.uint64, count=len(chunk)))
        return np.concatenate(parts) if parts else np.empty(0, dtype=np.uint64)

    async def _index_add(self, number: int, scope: str, source: str, expires_at: datetime | None) -> None:
        if self.redis_index is not None:
            await self.redis_index.add(number, scope, source, expires_at)
        else:
            self.local.add(
                number, scope, DncHit(GLOBAL if scope == GLOBAL else "campaign", source, expires_at)
            )

    async def _index_remove(self, number: int, scope: str) -> None:
        if self.redis_index is not None:
            await self.redis_index.remove(number, scope)
        else:
            self.local.remove(number, scope)

    async def _refresh(self, full: bool) -> None:
        started = datetime.now(UTC)
        async with self._reader.connect() as conn:
            rows = await conn.execute(
                select(
                    DncEntry.id,
                    DncEntry.number,
                    DncEntry.campaign_id,
                    DncEntry.source,
                    DncEntry.expires_at,
                    DncEntry.removed_at,
                )
                .where(DncEntry.id > self._last_entry_id)
                .order_by(DncEntry.id)
            )
            for entry_id, number, campaign_id, source, expires_at, removed_at in rows:
                if removed_at is None:
                    await self._index_add(int(number[1:]), campaign_id or GLOBAL, source, expires_at)
                # Only once it is in the index: an entry Redis refused is copied again on the next pass.
                self._last_entry_id = max(self._last_entry_id, int(entry_id))
            if not full:
                removed = await conn.execute(
                    select(DncEntry.number, DncEntry.campaign_id).where(
                        DncEntry.removed_at >= self._last_removal_check
                    )
                )
                for number, campaign_id in removed:
                    still = await conn.execute(
                        select(func.count())
                        .select_from(DncEntry)
                        .where(
                            DncEntry.number == number,
                            DncEntry.campaign_id.is_(None)
                            if campaign_id is None
                            else DncEntry.campaign_id == campaign_id,
                            DncEntry.removed_at.is_(None),
                        )
                    )
                    if not still.scalar_one():
                        await self._index_remove(int(number[1:]), campaign_id or GLOBAL)
            active = await self._active_imports(conn)
            if self.redis_index is not None:
                generations = await self.redis_index.generations()
                for registry, import_id in active.items():
                    if generations.get(registry) != import_id:
                        numbers = await self._registry_numbers(conn, import_id)
                        await self.redis_index.load_registry(registry, import_id, numbers)
            else:
                for registry, import_id in active.items():
                    if self._loaded_imports.get(registry) != import_id:
                        self.local.set_registry(registry, await self._registry_numbers(conn, import_id))
                        self._loaded_imports[registry] = import_id
        self._last_removal_check = started
