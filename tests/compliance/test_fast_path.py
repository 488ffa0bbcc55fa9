"""The decision's hot path: one Redis command per decision, and reloads that never make a call wait
unless the data they refresh is overdue (and then block the call if they fail)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable
from datetime import timedelta
from pathlib import Path
from typing import ClassVar

import pytest
from redis.asyncio import Redis
from redis.asyncio.connection import Connection
from redis.typing import EncodableT

from dialer.compliance.dnc import Freshness
from dialer.compliance.gate import ComplianceConfig, ComplianceGate, build_gate
from dialer.domain.compliance import RULE_DNC, RULE_LOCKOUT

from .conftest import CONSENT, local, request
from .test_gate import make_engine, screen_all

NUMBER = "+33612345678"
NOW = local("Europe/Paris", 2026, 11, 18, 11, 0)


class CountingConnection(Connection):
    """Counts the commands packed and the writes sent (a pipeline sends all its commands in one)."""

    commands: ClassVar[list[bytes]] = []
    writes: ClassVar[int] = 0

    def pack_command(self, *args: EncodableT) -> list[bytes]:
        name = args[0]
        CountingConnection.commands.append(name if isinstance(name, bytes) else str(name).encode())
        return super().pack_command(*args)

    async def send_packed_command(
        self, command: bytes | str | Iterable[bytes], check_health: bool = True
    ) -> None:
        CountingConnection.writes += 1
        await super().send_packed_command(command, check_health)


@pytest.fixture
async def counted_gate(
    database_url: str, redis_url: str, redis_namespace: str, tmp_path: Path
) -> AsyncIterator[ComplianceGate]:
    setup = await make_engine(database_url)
    await setup.dispose()
    redis = Redis.from_url(redis_url, connection_class=CountingConnection)
    # Reloads from the database far apart, so that only the decision's own traffic is counted.
    config = ComplianceConfig(
        database_url,
        redis_namespace=redis_namespace,
        dnc_refresh_seconds=3600,
        registry_status_cache_seconds=3600,
    )
    gate = await build_gate(config, redis=redis)
    await screen_all(gate, tmp_path, NOW.date())
    yield gate
    await gate.close()
    await redis.aclose()


async def test_a_redis_decision_reads_dnc_and_history_in_one_command(counted_gate: ComplianceGate) -> None:
    gate = counted_gate
    await gate.dnc.add(NUMBER, "camp-1", "agent")
    await gate.record_outcome("+33698765432", "lead-2", "camp-1", "refusal", NOW - timedelta(days=1))
    await gate.check(request("+33611111111", "FR", consent=CONSENT), NOW)  # loads the script once
    CountingConnection.commands.clear()
    CountingConnection.writes = 0

    listed = await gate.check(request(NUMBER, "FR", consent=CONSENT), NOW)
    refused = await gate.check(request("+33698765432", "FR", consent=CONSENT, lead_id="lead-2"), NOW)
    clean = await gate.check(request("+33622222222", "FR", consent=CONSENT, lead_id="lead-3"), NOW)

    assert (listed.rule, refused.rule, clean.allowed) == (RULE_DNC, RULE_LOCKOUT, True)
    assert refused.retry_after == NOW - timedelta(days=1) + timedelta(days=60)
    assert CountingConnection.commands == [b"EVALSHA"] * 3
    assert CountingConnection.writes == 3


async def test_attempt_found_under_the_number_and_the_lead_counts_once(counted_gate: ComplianceGate) -> None:
    gate = counted_gate
    # FR allows 4 attempts in 30 days: 3 attempts read twice (number and lead) would make 6.
    for days in (3, 2, 1):
        await gate.record_attempt(NUMBER, "lead-1", "camp-1", NOW - timedelta(days=days))
    assert (await gate.check(request(NUMBER, "FR", consent=CONSENT), NOW)).allowed
    await gate.record_attempt(NUMBER, "lead-1", "camp-1", NOW - timedelta(hours=25))
    decision = await gate.check(request(NUMBER, "FR", consent=CONSENT), NOW)
    assert (decision.rule, decision.retry_after) == (
        "contact_pressure",
        NOW - timedelta(days=3) + timedelta(days=30),
    )


async def test_overdue_cache_waits_for_the_reload_and_gets_its_error() -> None:
    async def load() -> None:
        raise OSError("database unreachable")

    fresh = Freshness(load, "test data")
    with pytest.raises(OSError, match="database unreachable"):
        await fresh.within(1.0)
    with pytest.raises(OSError):  # and again on the next call: nothing pretends to be fresh
        await fresh.within(1.0)


async def test_reload_starts_in_the_background_before_the_cache_is_overdue() -> None:
    release = asyncio.Event()
    loads = 0

    async def load() -> None:
        nonlocal loads
        loads += 1
        await release.wait()

    fresh = Freshness(load, "test data")
    fresh.mark_loaded(time.monotonic() - 80)  # 80 s old, allowed 100: due, not overdue
    await fresh.within(100)  # returns at once although the load is still waiting
    await fresh.within(100)  # one reload at a time
    await asyncio.sleep(0)
    assert loads == 1
    release.set()
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert time.monotonic() - fresh.loaded_at < 5
    await fresh.close()


async def test_failed_background_reload_blocks_once_the_cache_is_overdue() -> None:
    async def load() -> None:
        raise ConnectionError("database went away")

    fresh = Freshness(load, "test data")
    fresh.mark_loaded(time.monotonic() - 80)
    await fresh.within(100)  # due: the reload fails in the background, this caller is not held
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert time.monotonic() - fresh.loaded_at >= 80  # the failure did not count as a load
    with pytest.raises(ConnectionError):
        await fresh.within(60)  # overdue: the caller waits for a reload and gets its error


async def test_reload_begun_before_an_invalidation_does_not_count() -> None:
    release = asyncio.Event()

    async def load() -> None:
        await release.wait()

    fresh = Freshness(load, "test data")
    fresh.mark_loaded(time.monotonic() - 80)
    await fresh.within(100)
    await asyncio.sleep(0)
    fresh.invalidate()  # e.g. this process imported a registry while the reload was reading
    release.set()
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert fresh.loaded_at == float("-inf")
    await fresh.close()


async def test_overdue_caller_does_not_settle_for_a_load_begun_too_long_before_it() -> None:
    gate_open = asyncio.Event()
    loads = 0

    async def load() -> None:
        nonlocal loads
        loads += 1
        if loads == 1:
            await gate_open.wait()

    fresh = Freshness(load, "test data")
    fresh.mark_loaded(time.monotonic() - 80)
    await fresh.within(100)  # due: load 1 starts in the background and stalls
    await asyncio.sleep(0)
    waiting = asyncio.create_task(fresh.within(0))  # 0: only a load begun after this call will do
    await asyncio.sleep(0)
    gate_open.set()
    await waiting
    assert loads == 2
