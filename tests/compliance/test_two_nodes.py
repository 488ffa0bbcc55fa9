"""Several nodes on one Redis and one database: a refusal or a DNC on node A stops node B at once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from redis.asyncio import Redis

from dialer.compliance.gate import ComplianceConfig, ComplianceGate, build_gate
from dialer.domain.compliance import RULE_DNC, RULE_LOCKOUT, RULE_STORE

from .conftest import CONSENT, local, request
from .test_gate import make_engine, screen_all

NUMBER = "+33612345678"
NOW = local("Europe/Paris", 2026, 11, 18, 11, 0)


@pytest.fixture
async def nodes(
    database_url: str, redis_url: str, redis_namespace: str, tmp_path: Path
) -> AsyncIterator[tuple[ComplianceGate, ComplianceGate, Redis]]:
    """Two gates, each with its own engine and Redis client, as two processes would have."""
    setup = await make_engine(database_url)
    await setup.dispose()
    config = ComplianceConfig(database_url, redis_url=redis_url, redis_namespace=redis_namespace)
    a = await build_gate(config)
    b = await build_gate(config)
    await screen_all(a, tmp_path, NOW.date())
    probe = Redis.from_url(redis_url)
    yield a, b, probe
    await a.close()
    await b.close()
    keys = [k async for k in probe.scan_iter(match=f"{redis_namespace}*")]
    if keys:
        await probe.delete(*keys)
    await probe.aclose()


async def test_refusal_on_node_a_blocks_the_call_node_b_was_about_to_place(
    nodes: tuple[ComplianceGate, ComplianceGate, Redis],
) -> None:
    a, b, _ = nodes
    lead_on_b = request(NUMBER, "FR", consent=CONSENT, lead_id="lead-b", campaign_id="camp-b")
    assert (await b.check(lead_on_b, NOW)).allowed
    await a.record_outcome(NUMBER, "lead-a", "camp-a", "refusal", NOW)
    decision = await b.check(lead_on_b, NOW + timedelta(seconds=1))
    assert (decision.allowed, decision.rule) == (False, RULE_LOCKOUT)
    assert decision.retry_after == NOW + timedelta(days=60)


async def test_do_not_call_on_node_a_blocks_node_b_at_once(
    nodes: tuple[ComplianceGate, ComplianceGate, Redis],
) -> None:
    a, b, _ = nodes
    await a.dnc.add(NUMBER, "global", "agent disposition")
    decision = await b.check(request(NUMBER, "FR", consent=CONSENT), NOW)
    assert (decision.allowed, decision.rule) == (False, RULE_DNC)


async def test_registry_imported_by_one_node_is_seen_by_the_other(
    nodes: tuple[ComplianceGate, ComplianceGate, Redis], tmp_path: Path
) -> None:
    a, b, _ = nodes
    path = tmp_path / "bloctel-new.txt"
    path.write_text("0612345678\n", encoding="utf-8")
    await a.dnc.import_registry(path, "bloctel", NOW.date())
    assert (await b.check(request(NUMBER, "FR", consent=CONSENT), NOW)).rule == RULE_DNC


async def test_redis_that_lost_the_dnc_index_blocks_until_resynced(
    nodes: tuple[ComplianceGate, ComplianceGate, Redis], redis_namespace: str
) -> None:
    a, b, probe = nodes
    await a.dnc.add(NUMBER, "global", "agent")
    keys = [k async for k in probe.scan_iter(match=f"{redis_namespace}*")]
    await probe.delete(*keys)  # what a Redis restart without persistence does
    assert (await b.check(request("+33611111111", "FR", consent=CONSENT), NOW)).rule == RULE_STORE
    await b.dnc.sync_redis()
    assert (await a.check(request(NUMBER, "FR", consent=CONSENT), NOW)).rule == RULE_DNC
    assert (await a.check(request("+33611111111", "FR", consent=CONSENT), NOW)).allowed


async def test_history_falls_back_to_the_database_when_redis_lost_it(
    nodes: tuple[ComplianceGate, ComplianceGate, Redis], redis_namespace: str
) -> None:
    a, b, probe = nodes
    await a.record_outcome(NUMBER, "lead-a", "camp-a", "refusal", NOW)
    await probe.delete(
        f"{redis_namespace}ch:ready", *[k async for k in probe.scan_iter(match=f"{redis_namespace}ch:*")]
    )
    decision = await b.check(request(NUMBER, "FR", consent=CONSENT), NOW + timedelta(hours=1))
    assert decision.rule == RULE_LOCKOUT
