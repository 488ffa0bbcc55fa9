"""The campaign lease: one holder at a time, tokens that grow, a paused holder that knows it lost it."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from redis.asyncio import Redis

from dialer.runtime.lease import CampaignLeases, MemoryLeaseStore, RedisLeaseStore


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def nodes(lease_s: float = 10.0) -> tuple[Clock, MemoryLeaseStore, CampaignLeases, CampaignLeases]:
    clock = Clock()
    store = MemoryLeaseStore(clock)
    return (
        clock,
        store,
        CampaignLeases(store, "node-a", lease_s, clock=clock),
        CampaignLeases(store, "node-b", lease_s, clock=clock),
    )


async def test_one_node_holds_a_campaign_and_the_other_waits():
    clock, store, a, b = nodes()
    await a.refresh(["7"])
    await b.refresh(["7"])
    assert a.token("7") == 1
    assert b.token("7") is None
    assert await store.holder("7") == "node-a/1"


async def test_renewed_every_third_of_the_lease_it_is_kept_as_long_as_the_holder_lives():
    clock, store, a, b = nodes(lease_s=9.0)
    assert a.renew_every_s == 3.0
    await a.refresh(["7"])
    for _ in range(10):
        clock.now += a.renew_every_s
        await a.refresh(["7"])
        await b.refresh(["7"])
    assert a.token("7") == 1 and b.token("7") is None


async def test_a_dead_holder_loses_the_campaign_after_the_lease_time_and_the_next_token_is_larger():
    clock, store, a, b = nodes(lease_s=10.0)
    await a.refresh(["7"])
    clock.now += 9.9  # a died: no renewal
    await b.refresh(["7"])
    assert b.token("7") is None  # not before the lease time
    clock.now += 0.2
    await b.refresh(["7"])
    assert b.token("7") == 2
    assert await store.holder("7") == "node-b/2"


async def test_a_paused_holder_stops_dialing_at_its_deadline_before_any_renewal_round():
    lost: list[str] = []
    clock = Clock()
    store = MemoryLeaseStore(clock)
    a = CampaignLeases(store, "node-a", 10.0, clock=clock, on_lost=lost.append)
    await a.refresh(["7"])
    clock.now += 10.0  # SIGSTOP past the lease, then SIGCONT: the first thing asked is token()
    assert a.token("7") is None
    assert lost == ["7"]
    assert a.last_token("7") == 1  # results of its calls are still written under it (and fenced)


async def test_a_holder_whose_lease_was_taken_loses_it_at_the_next_renewal():
    clock, store, a, b = nodes(lease_s=10.0)
    await a.refresh(["7"])
    clock.now += 10.5
    await b.refresh(["7"])  # b takes it while a was away
    clock.now -= 1.0  # a's own clock says it still has time (clock drift): Redis says otherwise
    await a.refresh(["7"])
    assert a.token("7") is None and b.token("7") == 2


async def test_the_holder_believes_it_only_until_the_lease_counted_from_before_its_request():
    clock = Clock()

    class SlowStore(MemoryLeaseStore):
        async def acquire(self, campaign_id: str, node_id: str, ttl_ms: int, floor: int) -> int | None:
            token = await super().acquire(campaign_id, node_id, ttl_ms, floor)
            clock.now += 4.0  # the reply took 4 s
            return token

    a = CampaignLeases(SlowStore(clock), "node-a", 10.0, clock=clock)
    await a.refresh(["7"])
    clock.now += 5.9
    assert a.token("7") == 1
    clock.now += 0.1
    assert a.token("7") is None


async def test_a_campaign_no_longer_wanted_is_given_back_at_once():
    clock, store, a, b = nodes()
    await a.refresh(["7", "8"])
    await a.refresh(["8"])  # campaign 7 paused
    await b.refresh(["7"])
    assert b.token("7") == 2 and a.token("8") == 1


async def test_the_token_starts_above_the_records_fence_when_redis_lost_its_counter():
    clock = Clock()
    store = MemoryLeaseStore(clock)

    async def fence(campaign_id: str) -> int:
        return 41

    a = CampaignLeases(store, "node-a", 10.0, clock=clock, floor=fence)
    await a.refresh(["7"])
    assert a.token("7") == 42


async def test_the_takeover_runs_before_the_lease_counts_as_held_and_a_failed_one_gives_it_back():
    clock = Clock()
    store = MemoryLeaseStore(clock)
    seen: list[tuple[str, int, int | None]] = []

    async def takeover(campaign_id: str, token: int) -> None:
        seen.append((campaign_id, token, a.token(campaign_id)))

    a = CampaignLeases(store, "node-a", 10.0, clock=clock, on_acquired=takeover)
    await a.refresh(["7"])
    assert seen == [("7", 1, None)] and a.token("7") == 1

    async def broken(campaign_id: str, token: int) -> None:
        raise RuntimeError("database down")

    b = CampaignLeases(store, "node-b", 10.0, clock=clock, on_acquired=broken)
    clock.now += 11
    await b.refresh(["7"])
    assert b.token("7") is None
    assert await store.holder("7") is None  # given back: the next round (or node) tries again


# -- on Redis ------------------------------------------------------------------------


@pytest.fixture
async def redis_store(redis_url: str, redis_namespace: str):
    store = RedisLeaseStore(Redis.from_url(redis_url), redis_namespace)
    try:
        yield store
    finally:
        keys = [k async for k in store.redis.scan_iter(f"{redis_namespace}*")]
        if keys:
            await store.redis.delete(*keys)
        await store.close()


async def test_redis_lease_is_taken_once_renewed_and_released_only_by_its_owner(redis_store):
    campaign = uuid.uuid4().hex[:6]
    assert await redis_store.acquire(campaign, "node-a", 5000, 1) == 1
    assert await redis_store.acquire(campaign, "node-b", 5000, 1) is None
    assert await redis_store.holder(campaign) == "node-a/1"
    assert not await redis_store.renew(campaign, "node-b/1", 5000)
    assert not await redis_store.release(campaign, "node-b/1")
    assert await redis_store.renew(campaign, "node-a/1", 5000)
    assert await redis_store.release(campaign, "node-a/1")
    assert await redis_store.acquire(campaign, "node-b", 5000, 1) == 2  # INCR: the next holder's is larger
    assert await redis_store.acquire(campaign, "node-a", 5000, 1) is None


async def test_redis_lease_expires_by_itself_and_honours_the_floor(redis_store):
    campaign = uuid.uuid4().hex[:6]
    assert await redis_store.acquire(campaign, "node-a", 150, 1) == 1
    await asyncio.sleep(0.3)
    assert await redis_store.holder(campaign) is None
    assert await redis_store.acquire(campaign, "node-b", 150, 10) == 10
    await asyncio.sleep(0.3)
    assert await redis_store.acquire(campaign, "node-a", 150, 1) == 11


async def test_two_nodes_on_redis_hand_a_campaign_over_when_the_holder_stops_renewing(redis_store):
    a = CampaignLeases(redis_store, "node-a", 0.3)
    b = CampaignLeases(redis_store, "node-b", 0.3)
    await a.refresh(["c"])
    await b.refresh(["c"])
    assert a.token("c") == 1 and b.token("c") is None
    await asyncio.sleep(0.35)  # a stops renewing (paused): it knows, and Redis lets b in
    assert a.token("c") is None
    await b.refresh(["c"])
    assert b.token("c") == 2
    await a.refresh(["c"])
    assert a.token("c") is None
    stop = asyncio.Event()
    task = asyncio.get_running_loop().create_task(b.run(lambda: ["c"], stop))
    await asyncio.sleep(0.8)  # renewed every 0.1 s, well past the lease
    assert b.token("c") == 2
    stop.set()
    await task
    assert await redis_store.holder("c") is None  # given back when the node stops
