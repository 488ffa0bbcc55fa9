"""A callback the customer asked for still passes the compliance gate when it is dialed."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from redis.asyncio import Redis

from dialer.compliance.gate import ComplianceConfig, ComplianceGate, build_gate
from dialer.followup.board import FollowupBoard
from dialer.followup.levels import Kind, Level
from dialer.runtime.agents import AgentRegistry
from dialer.runtime.bootstrap import GatePort, SqlRecord, plan_of, rules_of
from dialer.runtime.engine import Engine
from dialer.store.db import Database
from dialer.store.leads_repo import LeadAdmin
from dialer.store.repositories import CampaignRecord
from tests.runtime.fakes import FakePbx, FixedPacer
from tests.store.helpers import add_leads

PARIS = ZoneInfo("Europe/Paris")
BOOKED = datetime(2026, 12, 1, 11, 0, tzinfo=PARIS).astimezone(UTC)  # a Tuesday, in the calling window
NUMBER = "+33612345678"


@pytest.fixture
async def gate(
    db: Database, redis_url: str, redis_namespace: str, tmp_path: Path
) -> AsyncIterator[ComplianceGate]:
    gate = await build_gate(
        ComplianceConfig(database_url=db.url, redis_url=redis_url, redis_namespace=redis_namespace),
        engine=db.engine,
    )
    registry = tmp_path / "bloctel.txt"
    registry.write_text("")
    await gate.dnc.import_registry(registry, "bloctel", BOOKED.date())
    try:
        yield gate
    finally:
        redis = Redis.from_url(redis_url)
        keys = [k async for k in redis.scan_iter(match=f"{redis_namespace}*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()
        await gate.close()


async def _book_callback(db: Database, campaign: CampaignRecord, at: datetime) -> int:
    """A call with the customer at BOOKED, qualified "callback requested" for ``at``."""
    await add_leads(db, campaign.id, [NUMBER], BOOKED, consent=True)
    [lead] = await db.hopper.claim_leads(campaign.id, 1, BOOKED, "node-1")
    attempt_id = await db.attempts.open_attempt(lead.lead_id, campaign.id, lead.number, "node-1", BOOKED)
    await db.attempts.close_attempt(attempt_id, "connected", 16, "person", BOOKED, agent_id="ag1")
    result = await db.dispositions.record_disposition(
        attempt_id, "callback_requested", "ag1", now=BOOKED, callback_at=at
    )
    assert result.callback_id is not None
    return result.callback_id


def _engine(
    db: Database, gate: ComplianceGate, campaign: CampaignRecord, now: datetime
) -> tuple[Engine, FakePbx]:
    agents = AgentRegistry(time.time)
    port = GatePort(gate)
    port.rules[str(campaign.id)] = rules_of(campaign.settings)
    pbx = FakePbx()
    engine = Engine(pbx, SqlRecord(db, "node-1", agents), port, agents, wall=lambda: now)
    engine.add_campaign(plan_of(campaign), FixedPacer(1))
    agents.login("ag1", [str(campaign.id)])
    agents.ready("ag1")
    return engine, pbx


async def test_a_callback_due_at_23h_local_is_not_dialed_until_the_window_opens(
    db: Database, campaign: CampaignRecord, gate: ComplianceGate
) -> None:
    late = datetime(2026, 12, 1, 23, 0, tzinfo=PARIS).astimezone(UTC)
    callback_id = await _book_callback(db, campaign, late)
    engine, pbx = _engine(db, gate, campaign, late + timedelta(seconds=5))
    assert await engine.tick() == 0
    assert pbx.originates == [] and engine.blocked["calling_window"] == 1
    # Postponed to the window's opening, not offered again at every tick meanwhile.
    assert await db.hopper.claim_leads(campaign.id, 5, late + timedelta(minutes=5), "node-1") == []
    [row] = await LeadAdmin(db).callbacks(campaign_id=campaign.id)
    assert row.id == callback_id and row.status == "pending"
    # The deadline passes while the law forbids the call: the supervisor sees it overdue.
    [task] = await FollowupBoard(db).overdue_callbacks(late + timedelta(minutes=20))
    assert task.callback_id == callback_id and task.level is Level.OVERDUE
    morning = datetime(2026, 12, 2, 10, 0, 30, tzinfo=PARIS).astimezone(UTC)
    [claimed] = await db.hopper.claim_leads(campaign.id, 5, morning, "node-1")
    assert claimed.callback is not None and claimed.callback.callback_id == callback_id


async def test_a_callback_on_a_number_put_on_the_do_not_call_list_is_refused_visibly(
    db: Database, campaign: CampaignRecord, gate: ComplianceGate
) -> None:
    due = BOOKED + timedelta(hours=1)
    callback_id = await _book_callback(db, campaign, due)
    await gate.dnc.add(NUMBER, source="customer letter", now=BOOKED + timedelta(minutes=10))
    engine, pbx = _engine(db, gate, campaign, due + timedelta(seconds=5))
    assert await engine.tick() == 0
    assert pbx.originates == [] and engine.blocked["dnc"] == 1
    [row] = await LeadAdmin(db).callbacks(campaign_id=campaign.id, statuses=("pending", "dialed", "refused"))
    assert row.id == callback_id and row.status == "refused"
    [task] = await FollowupBoard(db).tasks(due + timedelta(hours=2), kinds=[Kind.CALLBACK], include_done=True)
    assert task.level is Level.REFUSED and task.detail is not None and "dnc" in task.detail
    summary = await FollowupBoard(db).summary(due + timedelta(hours=2))
    assert summary.callbacks_overdue == 0 and summary.kinds[Kind.CALLBACK].refused == 1
