"""The campaign lease: one node paces a campaign at a time, and proves it with a fencing token.

A lease is a Redis key per campaign, ``SET NX PX`` by the node that takes it,
with a token from ``INCR`` on the campaign's counter: each new holder gets a
larger token.  The holder renews it every third of the lease time (a Lua
script that checks it is still the owner); a node that dies stops renewing,
and another takes the campaign once the key expires.

The holder believes it holds the lease only until its own deadline, counted
on its monotonic clock from *before* the request that took or renewed it, so
it always gives up before Redis lets anyone else in.  A node paused
(SIGSTOP, a long GC, a frozen VM) past its deadline finds, on waking, that it
holds nothing: the engine asks ``token()`` before each originate.  The
narrow window between that check and the write to the PBX is closed in the
record: each attempt carries the token and the database refuses a token
older than the newest it has seen (``dialer.store.fences``).

``MemoryLeaseStore`` is the same contract in memory, on a given clock, for
tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

DEFAULT_LEASE_S = 10.0

# KEYS[1] the lease, KEYS[2] the campaign's token counter; ARGV: node, ttl (ms), floor token.
_ACQUIRE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local token = redis.call('INCR', KEYS[2])
local floor = tonumber(ARGV[3])
if token < floor then
  token = floor
  redis.call('SET', KEYS[2], token)
end
redis.call('SET', KEYS[1], ARGV[1] .. '/' .. token, 'NX', 'PX', ARGV[2])
return token
"""
# KEYS[1] the lease; ARGV: the owner's value, ttl (ms).
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def lease_value(node_id: str, token: int) -> str:
    """What the lease key holds: its owner and token (``node-a/7``)."""
    return f"{node_id}/{token}"


class LeaseStore(Protocol):
    """Where leases live (Redis in production)."""

    async def acquire(self, campaign_id: str, node_id: str, ttl_ms: int, floor: int) -> int | None:
        """Take the lease if nobody holds it; return its token (at least ``floor``), or None."""

    async def renew(self, campaign_id: str, value: str, ttl_ms: int) -> bool:
        """Extend the lease if ``value`` still owns it."""

    async def release(self, campaign_id: str, value: str) -> bool:
        """Give the lease up if ``value`` still owns it."""

    async def holder(self, campaign_id: str) -> str | None:
        """The current lease value (``node/token``), or None."""

    async def close(self) -> None: ...


class RedisLeaseStore:
    """Leases as Redis keys ``<ns>lease:<campaign>`` with their counters ``<ns>lease:<campaign>:token``."""

    def __init__(self, redis: Redis, namespace: str = "dialer:") -> None:
        self.redis = redis
        self.ns = namespace
        self._acquire = redis.register_script(_ACQUIRE)
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)

    def key(self, campaign_id: str) -> str:
        return f"{self.ns}lease:{campaign_id}"

    async def acquire(self, campaign_id: str, node_id: str, ttl_ms: int, floor: int) -> int | None:
        key = self.key(campaign_id)
        token = await self._acquire(keys=[key, f"{key}:token"], args=[node_id, ttl_ms, floor])
        return None if token is None else int(token)

    async def renew(self, campaign_id: str, value: str, ttl_ms: int) -> bool:
        return bool(await self._renew(keys=[self.key(campaign_id)], args=[value, ttl_ms]))

    async def release(self, campaign_id: str, value: str) -> bool:
        return bool(await self._release(keys=[self.key(campaign_id)], args=[value]))

    async def holder(self, campaign_id: str) -> str | None:
        value = await self.redis.get(self.key(campaign_id))
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else str(value)

    async def close(self) -> None:
        await self.redis.aclose()


class MemoryLeaseStore:
    """The Redis contract in memory, keys expiring on ``clock`` (seconds): for tests."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.keys: dict[str, tuple[str, float]] = {}  # campaign -> (value, expires at)
        self.counters: Counter[str] = Counter()

    def _live(self, campaign_id: str) -> str | None:
        found = self.keys.get(campaign_id)
        if found is None or found[1] <= self.clock():
            self.keys.pop(campaign_id, None)
            return None
        return found[0]

    async def acquire(self, campaign_id: str, node_id: str, ttl_ms: int, floor: int) -> int | None:
        if self._live(campaign_id) is not None:
            return None
        self.counters[campaign_id] = max(self.counters[campaign_id] + 1, floor)
        token = self.counters[campaign_id]
        self.keys[campaign_id] = (lease_value(node_id, token), self.clock() + ttl_ms / 1000)
        return token

    async def renew(self, campaign_id: str, value: str, ttl_ms: int) -> bool:
        if self._live(campaign_id) != value:
            return False
        self.keys[campaign_id] = (value, self.clock() + ttl_ms / 1000)
        return True

    async def release(self, campaign_id: str, value: str) -> bool:
        if self._live(campaign_id) != value:
            return False
        del self.keys[campaign_id]
        return True

    async def holder(self, campaign_id: str) -> str | None:
        return self._live(campaign_id)

    async def close(self) -> None:
        self.keys.clear()


@dataclass
class HeldLease:
    token: int
    value: str
    valid_until: float  # on the node's monotonic clock


class CampaignLeases:
    """The leases this node holds, taken, renewed and given up by ``refresh`` (``run`` loops it).

    ``on_acquired(campaign_id, token)`` runs when a lease is taken, before the
    engine may dial for the campaign (the takeover: reconcile the calls the last
    holder left); ``on_lost(campaign_id)`` when one is lost.
    """

    def __init__(
        self,
        store: LeaseStore,
        node_id: str,
        lease_s: float = DEFAULT_LEASE_S,
        *,
        clock: Callable[[], float] = time.monotonic,
        floor: Callable[[str], Awaitable[int]] | None = None,
        on_acquired: Callable[[str, int], Awaitable[None]] | None = None,
        on_lost: Callable[[str], None] | None = None,
    ) -> None:
        if lease_s <= 0:
            raise ValueError(f"lease_s must be > 0, got {lease_s}")
        self.store = store
        self.node_id = node_id
        self.lease_s = lease_s
        self.clock = clock
        self.floor = floor
        self.on_acquired = on_acquired
        self.on_lost = on_lost
        self.held: dict[str, HeldLease] = {}
        self.last_tokens: dict[str, int] = {}  # the latest token held per campaign, even if lost since
        self.fenced: Counter[str] = Counter()  # writes the record refused, by campaign id
        self.acquired: Counter[str] = Counter()  # leases taken, by campaign id
        self.others: dict[str, str | None] = {}  # the holder last seen of campaigns another node paces

    @property
    def renew_every_s(self) -> float:
        return self.lease_s / 3

    @property
    def _ttl_ms(self) -> int:
        return max(1, round(self.lease_s * 1000))

    def token(self, campaign_id: str) -> int | None:
        """The token to dial under, or None when this node does not hold the lease now."""
        held = self.held.get(campaign_id)
        if held is None:
            return None
        if self.clock() >= held.valid_until:
            self._lost(campaign_id, "not renewed in time (the node was paused or Redis did not answer)")
            return None
        return held.token

    def last_token(self, campaign_id: str) -> int | None:
        """The latest token this node held for the campaign: results of its calls are written under it."""
        return self.last_tokens.get(campaign_id)

    def holds(self) -> list[str]:
        return [c for c in list(self.held) if self.token(c) is not None]

    def _lost(self, campaign_id: str, why: str) -> None:
        held = self.held.pop(campaign_id, None)
        if held is None:
            return
        log.warning(
            "campaign %s: lease lost (token %d): %s; no more dialing for it on node %s",
            campaign_id,
            held.token,
            why,
            self.node_id,
        )
        if self.on_lost is not None:
            self.on_lost(campaign_id)

    async def refresh(self, wanted: Iterable[str]) -> None:
        """One round: renew the leases held, take the wanted ones nobody holds, give up the others."""
        wanted = set(wanted)
        for campaign_id in list(self.held):
            if campaign_id not in wanted:
                await self.release(campaign_id)
            elif self.token(campaign_id) is not None:
                await self._renew(campaign_id)
        for campaign_id in sorted(wanted - set(self.held)):
            await self._acquire(campaign_id)

    async def _renew(self, campaign_id: str) -> None:
        held = self.held[campaign_id]
        sent = self.clock()
        try:
            renewed = await self.store.renew(campaign_id, held.value, self._ttl_ms)
        except (RedisError, OSError) as exc:  # kept until its deadline; the next round tries again
            log.warning("campaign %s: lease not renewed (%s: %s)", campaign_id, type(exc).__name__, exc)
            return
        if renewed:
            held.valid_until = max(held.valid_until, sent + self.lease_s)
        else:
            self._lost(campaign_id, "another node holds it now")

    async def _acquire(self, campaign_id: str) -> None:
        sent = self.clock()
        try:
            floor = await self.floor(campaign_id) + 1 if self.floor is not None else 1
            token = await self.store.acquire(campaign_id, self.node_id, self._ttl_ms, floor)
        except (RedisError, OSError) as exc:
            log.warning("campaign %s: lease not taken (%s: %s)", campaign_id, type(exc).__name__, exc)
            return
        if token is None:
            await self._note_holder(campaign_id)
            return
        value = lease_value(self.node_id, token)
        if self.on_acquired is not None:
            try:
                await self.on_acquired(campaign_id, token)
            except Exception:
                log.exception("campaign %s: taking over failed; lease given back", campaign_id)
                with contextlib.suppress(RedisError, OSError):
                    await self.store.release(campaign_id, value)
                return
        if self.clock() >= sent + self.lease_s:  # the takeover outlasted the lease: take it again later
            log.warning("campaign %s: the takeover took longer than the lease; trying again", campaign_id)
            return
        self.held[campaign_id] = HeldLease(token, value, sent + self.lease_s)
        self.last_tokens[campaign_id] = token
        self.acquired[campaign_id] += 1
        log.info("campaign %s: lease taken by node %s (token %d)", campaign_id, self.node_id, token)

    async def _note_holder(self, campaign_id: str) -> None:
        """Say once which node paces a campaign this node waits for (its agents get calls there)."""
        try:
            holder = await self.store.holder(campaign_id)
        except (RedisError, OSError):
            return
        if holder is not None and holder != self.others.get(campaign_id):
            log.info(
                "campaign %s is paced by %s; node %s waits (agents signed in here get its calls only "
                "once this node takes it)",
                campaign_id,
                holder,
                self.node_id,
            )
        self.others[campaign_id] = holder

    async def release(self, campaign_id: str) -> None:
        held = self.held.pop(campaign_id, None)
        if held is None:
            return
        try:
            await self.store.release(campaign_id, held.value)
        except (RedisError, OSError) as exc:
            log.warning("campaign %s: lease not given back (%s); it expires by itself", campaign_id, exc)
        log.info("campaign %s: lease given back (token %d)", campaign_id, held.token)

    async def release_all(self) -> None:
        for campaign_id in list(self.held):
            await self.release(campaign_id)

    async def close(self) -> None:
        """Give every lease back (the other nodes take over at once) and close the store."""
        await self.release_all()
        with contextlib.suppress(RedisError, OSError):
            await self.store.close()

    async def run(self, wanted: Callable[[], Iterable[str]], stop: asyncio.Event) -> None:
        """Refresh every third of the lease time until ``stop``; then give every lease back.

        The daemon sets ``stop`` after the engine's drain: the calls in progress finish under the lease.
        """
        while not stop.is_set():
            try:
                await self.refresh(wanted())
            except Exception:
                log.exception("lease round failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.renew_every_s)
        await self.release_all()
