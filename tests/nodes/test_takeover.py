"""Two nodes on one record and one Redis: only the lease holder dials; the next one settles the rest.

Real database (SQLite and PostgreSQL), real Redis, the bootstrap's record and
engine; the PBX, the gate and the pacer are the runtime tests' fakes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import generate_latest
from sqlalchemy import select

from dialer.domain.campaign import CampaignSettings, CampaignStatus
from dialer.runtime.bootstrap import Runtime, build_runtime
from dialer.runtime.demo import DEMO_PROFILE
from dialer.runtime.lease import HeldLease
from dialer.runtime.metrics import node_registry
from dialer.settings import Settings
from dialer.store.db import Database
from dialer.store.models import Attempt, Lead
from telephony.base import Failed, Outcome
from tests.runtime.fakes import FakeGate, FakePbx, FixedPacer
from tests.store.helpers import add_leads, fr_numbers

LEASE_S = 3.0  # long enough that a loaded machine does not lose it between a refresh and the next tick


async def _campaign(db: Database, leads: int) -> int:
    record = await db.campaigns.create(
        "shared",
        CampaignSettings(dial_string="PJSIP/{digits}@trunk", caller_id="+33100000000", max_attempts=1),
    )
    await db.campaigns.set_status(record.id, CampaignStatus.RUNNING)
    await add_leads(db, record.id, fr_numbers(leads), datetime.now(UTC) - timedelta(minutes=1))
    return record.id


@pytest.fixture
async def two_nodes(
    db: Database, database_url: str, redis_url: str, redis_namespace: str, tmp_path
) -> AsyncIterator[tuple[int, Runtime, Runtime]]:
    campaign = await _campaign(db, 6)
    profiles = tmp_path / "profiles.toml"
    profiles.write_text(DEMO_PROFILE)
    nodes = []
    for name in ("node-a", "node-b"):
        settings = Settings(
            database_url=database_url,
            node_id=name,
            redis_url=redis_url,
            redis_namespace=redis_namespace,
            lease_s=LEASE_S,
        )
        runtime = await build_runtime(settings, pbx=FakePbx(), profile_files=(profiles,))
        await runtime.load_campaigns(datetime.now(UTC))
        runtime.engine.gate = FakeGate()
        runtime.engine.campaigns[str(campaign)].pacer = FixedPacer(2)  # type: ignore[assignment]
        nodes.append(runtime)
    try:
        yield campaign, nodes[0], nodes[1]
    finally:
        for runtime in nodes:
            await runtime.close()


async def _attempts(db: Database) -> list[Attempt]:
    async with db.read_session() as s:
        return list((await s.execute(select(Attempt).order_by(Attempt.created_at))).scalars())


def _metrics(runtime: Runtime) -> str:
    return generate_latest(node_registry(runtime.engine, process_wide=False)).decode()


async def test_only_the_lease_holder_dials_and_every_attempt_carries_its_token(db, two_nodes):
    campaign, a, b = two_nodes
    assert a.leases is not None and b.leases is not None
    await a.leases.refresh([str(campaign)])
    await b.leases.refresh([str(campaign)])
    assert await a.engine.tick() == 2
    assert await b.engine.tick() == 0
    assert len(b.engine.pbx.originates) == 0  # type: ignore[attr-defined]
    rows = await _attempts(db)
    assert [(r.node_id, r.fencing_token) for r in rows] == [("node-a", 1), ("node-a", 1)]
    assert 'dialer_campaign_lease_held{campaign="shared"} 1.0' in _metrics(a)
    assert 'dialer_campaign_lease_held{campaign="shared"} 0.0' in _metrics(b)


async def test_a_lease_lost_between_the_attempt_row_and_the_originate_sends_nothing(db, two_nodes):
    campaign, a, _ = two_nodes
    assert a.leases is not None
    await a.leases.refresh([str(campaign)])

    class PausedAfterWriting(FakeGate):
        async def record_attempt(self, lead, at) -> None:  # type: ignore[no-untyped-def]
            await asyncio.sleep(LEASE_S + 0.05)  # the node is paused past its lease right here

    a.engine.gate = PausedAfterWriting()
    assert await a.engine.tick() == 0
    assert a.engine.pbx.originates == []  # type: ignore[attr-defined]
    rows = await _attempts(db)
    assert len(rows) == 2 and {r.result for r in rows} == {"cancelled"}


async def test_the_next_holder_closes_what_the_dead_one_left_and_the_late_one_is_refused(db, two_nodes):
    campaign, a, b = two_nodes
    assert a.leases is not None and b.leases is not None
    key = str(campaign)
    await a.leases.refresh([key])
    assert await a.engine.tick() == 2
    left = [r.id for r in await _attempts(db)]
    # node-a stops (killed or paused) with two calls in flight; one is still up on the PBX.
    b.engine.pbx.live = {left[0]}  # type: ignore[attr-defined]
    async with db.session() as s, s.begin():  # and a lead it had claimed but not dialed yet
        lead = (await s.execute(select(Lead).where(Lead.status == "new").limit(1))).scalar_one()
        lead.claimed_by = "node-a"
    await asyncio.sleep(LEASE_S + 0.05)
    await b.leases.refresh([key])
    assert b.leases.token(key) == 2
    rows = {r.id: r for r in await _attempts(db)}
    assert {rows[i].result for i in left} == {"lost"}  # every attempt keeps one result
    async with db.read_session() as s:
        claimed = (await s.execute(select(Lead.claimed_by).where(Lead.claimed_by.is_not(None)))).all()
    assert claimed == []

    # node-a wakes up: its calls' results are refused, and it dials nothing for the campaign.
    busy = Failed(left[1], 0.0, outcome=Outcome.BUSY, cause=17, detail="")
    await a.engine.handle(busy)
    assert (await db.attempts.get(left[1])).result == "lost"
    assert await a.engine.tick() == 0
    # Even had it believed it still held the lease (paused between its check and its write),
    # the record refuses the attempt: nothing reaches the PBX.
    a.leases.held[key] = HeldLease(1, "node-a/1", float("inf"))
    assert await a.engine.tick() == 0  # one line free (its other call is still up as it sees it)
    assert len(a.engine.pbx.originates) == 2  # type: ignore[attr-defined]
    assert a.leases.fenced[key] == 2  # the busy result and the attempt
    assert 'dialer_fenced_writes_total{campaign="shared"} 2.0' in _metrics(a)
    assert len(await _attempts(db)) == 2
    # node-b dials the rest, each lead once.
    await b.leases.refresh([key])  # renewed (its lease loop does it every third of the lease)
    assert await b.engine.tick() == 2
    rows_now = await _attempts(db)
    assert len({r.lead_id for r in rows_now}) == len(rows_now) == 4


async def test_a_node_asks_the_lease_only_of_campaigns_its_agents_or_its_calls_need(two_nodes):
    from dialer.runtime.takeover import campaigns_to_hold

    campaign, a, _ = two_nodes
    key = str(campaign)
    assert campaigns_to_hold(a.engine) == []  # nobody signed in here: left to a node with agents
    a.agents.login("a1", [key])
    assert campaigns_to_hold(a.engine) == [key]
    a.engine.pause_campaign(key)
    assert campaigns_to_hold(a.engine) == []
    assert a.leases is not None
    a.engine.campaigns[key].paused = False
    await a.leases.refresh(campaigns_to_hold(a.engine))
    assert await a.engine.tick() == 2
    a.agents.logout("a1")
    a.engine.pause_campaign(key)
    assert campaigns_to_hold(a.engine) == [key]  # its calls still in progress finish under the lease
