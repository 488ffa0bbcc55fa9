"""The gate against real stores: SQLite/PostgreSQL always, Redis for the shared index; it fails closed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from dialer.compliance.audit import query_audit
from dialer.compliance.dnc import DncStore
from dialer.compliance.gate import ComplianceConfig, ComplianceGate, build_gate
from dialer.compliance.tables import COMPLIANCE_TABLES
from dialer.domain.compliance import (
    RULE_DNC,
    RULE_ERROR,
    RULE_LOCKOUT,
    RULE_MIN_GAP,
    RULE_PROFILE,
    RULE_REGISTRY,
    RULE_STORE,
    CampaignRules,
    ContactEvent,
)
from dialer.store.base import Base

from .conftest import CONSENT, local, request

PARIS = "Europe/Paris"
NUMBER = "+33612345678"
NOW = local(PARIS, 2026, 11, 18, 11, 0)  # a Wednesday


async def make_engine(url: str) -> AsyncEngine:
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(lambda sync: Base.metadata.create_all(sync, tables=COMPLIANCE_TABLES))
    return engine


async def screen_all(gate: ComplianceGate, tmp_path: Path, on: date, listed: Sequence[str] = ()) -> None:
    """Import every registry (the given numbers into the one of their country) screened on ``on``."""
    for name in gate.profiles.registries:
        path = tmp_path / f"{name}.txt"
        path.write_text("".join(f"{n}\n" for n in listed if name == "bloctel"), encoding="utf-8")
        await gate.dnc.import_registry(path, name, on)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = await make_engine(database_url)
    yield eng
    await eng.dispose()


@pytest.fixture
async def gate(engine: AsyncEngine, database_url: str, tmp_path: Path) -> AsyncIterator[ComplianceGate]:
    g = await build_gate(ComplianceConfig(database_url, dnc_refresh_seconds=0.0), engine=engine)
    await screen_all(g, tmp_path, NOW.date())
    yield g
    await g.close()


def fr(**kw: object):  # type: ignore[no-untyped-def]
    return request(NUMBER, "FR", consent=CONSENT, **kw)


def counter(decision: str, rule: str) -> float:
    return (
        REGISTRY.get_sample_value("dialer_compliance_decisions_total", {"decision": decision, "rule": rule})
        or 0
    )


async def test_allowed_call_is_audited_with_a_masked_number(
    gate: ComplianceGate, engine: AsyncEngine
) -> None:
    before = counter("allow", "allowed")
    decision = await gate.check(fr(), NOW)
    assert decision.allowed
    assert counter("allow", "allowed") == before + 1
    await gate.audit.close()
    rows = await query_audit(engine, number_key=gate.keyer(NUMBER))
    assert [(r.decision, r.rule, r.lead_id, r.campaign_id) for r in rows] == [
        ("allow", "allowed", "lead-1", "camp-1")
    ]
    assert rows[0].number_masked == "+33******678"
    assert rows[0].at == NOW


async def test_agent_do_not_call_blocks_the_number_at_once(gate: ComplianceGate) -> None:
    await gate.dnc.add(NUMBER, "global", "agent 17 disposition")
    decision = await gate.check(fr(), NOW)
    assert (decision.allowed, decision.rule) == (False, RULE_DNC)
    assert "agent 17" in decision.reason


async def test_campaign_scoped_do_not_call_blocks_only_that_campaign(gate: ComplianceGate) -> None:
    await gate.dnc.add(NUMBER, "camp-1", "agent")
    assert (await gate.check(fr(), NOW)).rule == RULE_DNC
    assert (await gate.check(fr(campaign_id="camp-2"), NOW)).allowed


async def test_expired_dnc_entry_no_longer_blocks(gate: ComplianceGate) -> None:
    await gate.dnc.add(NUMBER, "global", "temporary", expires_at=NOW - timedelta(minutes=1))
    assert (await gate.check(fr(), NOW)).allowed
    await gate.dnc.add("+33612345679", "global", "temporary", expires_at=NOW + timedelta(days=1))
    decision = await gate.check(request("+33612345679", "FR", consent=CONSENT), NOW)
    assert (decision.rule, decision.retry_after) == (RULE_DNC, NOW + timedelta(days=1))
    await gate.dnc.add("+33612345679", "spring", "for good")
    decision = await gate.check(request("+33612345679", "FR", consent=CONSENT, campaign_id="spring"), NOW)
    assert (decision.rule, decision.retry_after) == (RULE_DNC, None)


async def test_removed_entry_stops_blocking(gate: ComplianceGate) -> None:
    await gate.dnc.add(NUMBER, "global", "agent")
    assert await gate.dnc.remove(NUMBER, "global", "supervisor") == 1
    assert (await gate.check(fr(), NOW)).allowed


async def test_registry_import_blocks_listed_numbers_and_reports_bad_lines(
    gate: ComplianceGate, tmp_path: Path
) -> None:
    path = tmp_path / "bloctel.txt"
    path.write_text("0612345678\n+33 6 11 22 33 44\nnot a number\n\n12\n", encoding="utf-8")
    report = await gate.dnc.import_registry(path, "bloctel", NOW.date())
    assert report.numbers == 2
    assert [line for line, _ in report.rejected] == [3, 5]
    assert (await gate.check(fr(), NOW)).rule == RULE_DNC
    assert (await gate.check(request("+33611223344", "FR", consent=CONSENT), NOW)).rule == RULE_DNC
    # A new screening replaces the old list: a number that left the registry may be called again.
    path.write_text("0611223344\n", encoding="utf-8")
    await gate.dnc.import_registry(path, "bloctel", NOW.date())
    assert (await gate.check(fr(), NOW)).allowed
    assert [h.scope for h in await gate.dnc.check("+33611223344")] == ["bloctel"]


async def test_stale_registry_fails_closed_with_reimport_reason(gate: ComplianceGate, tmp_path: Path) -> None:
    path = tmp_path / "b.txt"
    path.write_text("", encoding="utf-8")
    await gate.dnc.import_registry(path, "bloctel", NOW.date() - timedelta(days=31))
    gate.dnc.status_cache_seconds = 0
    decision = await gate.check(fr(), NOW)
    assert (decision.rule, decision.reason) == (RULE_REGISTRY, "registry stale, re-import (bloctel)")


async def test_campaign_validation_names_the_loosened_figure(gate: ComplianceGate) -> None:
    from dialer.domain.compliance import ProfileError, ProfileOverrides

    with pytest.raises(ProfileError, match="max_attempts 9 exceeds profile FR's 4"):
        gate.validate(CampaignRules("FR", ProfileOverrides(max_attempts=9)))
    decision = await gate.check(fr(rules=CampaignRules("FR", ProfileOverrides(max_attempts=9))), NOW)
    assert (decision.allowed, decision.rule) == (False, RULE_PROFILE)


async def test_unknown_profile_blocks(gate: ComplianceGate) -> None:
    decision = await gate.check(request(NUMBER, "XX", rules=CampaignRules("XX")), NOW)
    assert (decision.allowed, decision.rule) == (False, RULE_PROFILE)


async def test_refusal_locks_out_and_attempt_spaces_the_next_call(gate: ComplianceGate) -> None:
    await gate.record_attempt(NUMBER, "lead-1", "camp-1", NOW - timedelta(hours=2))
    assert (await gate.check(fr(), NOW)).rule == RULE_MIN_GAP
    await gate.record_outcome(NUMBER, "lead-1", "camp-1", "refusal", NOW - timedelta(hours=2))
    decision = await gate.check(fr(campaign_id="another-campaign", lead_id="lead-9"), NOW)
    assert (decision.rule, decision.retry_after) == (
        RULE_LOCKOUT,
        NOW - timedelta(hours=2) + timedelta(days=60),
    )


async def test_exception_in_a_rule_blocks_the_call(gate: ComplianceGate) -> None:
    class Broken:
        async def record(self, *args: object) -> None:
            raise AssertionError

        async def events(self, number_key: str, lead_id: str, since: datetime) -> Sequence[ContactEvent]:
            raise ZeroDivisionError("boom")

    gate.history = Broken()
    decision = await gate.check(fr(), NOW)
    assert (decision.allowed, decision.rule) == (False, RULE_ERROR)
    assert "ZeroDivisionError" in decision.reason


async def test_unreachable_redis_blocks_the_call(engine: AsyncEngine, database_url: str) -> None:
    dead = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    gate = await build_gate(ComplianceConfig(database_url), engine=engine, redis=None)
    gate.dnc.redis_index = __import__("dialer.compliance.dnc", fromlist=["RedisIndex"]).RedisIndex(dead, "x:")
    decision = await gate.check(fr(), NOW)
    assert (decision.allowed, decision.rule) == (False, RULE_STORE)
    await gate.close()
    await dead.aclose()


async def test_cli_addition_reaches_a_running_node_without_redis(
    gate: ComplianceGate, engine: AsyncEngine
) -> None:
    other_process = DncStore(engine, dict(gate.profiles.registries))
    await other_process.add(NUMBER, "global", "cli")
    assert (await gate.check(fr(), NOW)).rule == RULE_DNC
    await other_process.remove(NUMBER, "global", "cli")
    assert (await gate.check(fr(), NOW)).allowed


async def test_audit_that_cannot_be_written_blocks_calls(gate: ComplianceGate) -> None:
    gate.audit.max_pending = 0  # type: ignore[attr-defined]
    decision = await gate.check(fr(), NOW)
    assert (decision.allowed, decision.rule) == (False, RULE_STORE)


async def test_audit_is_searchable_by_campaign_and_time(gate: ComplianceGate, engine: AsyncEngine) -> None:
    await gate.check(fr(), NOW - timedelta(days=1))
    await gate.check(fr(campaign_id="camp-2"), NOW)
    await gate.audit.close()
    assert len(await query_audit(engine, campaign_id="camp-2")) == 1
    assert len(await query_audit(engine, number_key=gate.keyer(NUMBER), since=NOW - timedelta(hours=1))) == 1
    assert datetime(2026, 1, 1, tzinfo=UTC) < NOW


async def test_every_decision_of_a_burst_reaches_the_audit(gate: ComplianceGate, engine: AsyncEngine) -> None:
    for i in range(250):
        await gate.check(fr(lead_id=f"lead-{i}", campaign_id="burst"), NOW + timedelta(seconds=i))
    await gate.audit.close()
    rows = await query_audit(engine, campaign_id="burst", limit=1000)
    assert len(rows) == 250
    assert {r.lead_id for r in rows} == {f"lead-{i}" for i in range(250)}
    assert rows[0].at == NOW + timedelta(seconds=249)
