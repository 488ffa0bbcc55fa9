"""Lead selection: callbacks first, campaign ordering, and never the same lead to two callers."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from dialer.domain.campaign import CampaignStatus, LeadOrdering, LeadStatus
from dialer.store.db import Database
from dialer.store.repositories import CampaignRecord
from tests.store.conftest import T0, settings
from tests.store.helpers import add_leads, fr_numbers


async def _book_callback(
    db: Database, campaign: CampaignRecord, agent: str, due_in: timedelta, agent_only: bool
) -> int:
    [lead] = await db.hopper.claim_leads(campaign.id, 1, T0, "n")
    attempt_id = await db.attempts.open_attempt(lead.lead_id, campaign.id, lead.number, "n", T0)
    await db.attempts.close_attempt(attempt_id, "connected", 16, "person", T0, agent_id=agent)
    await db.dispositions.record_disposition(
        attempt_id,
        "callback_requested",
        agent,
        now=T0,
        callback_at=T0 + due_in,
        callback_agent_only=agent_only,
    )
    return lead.lead_id


async def test_due_callbacks_come_before_fresh_leads(db: Database, campaign: CampaignRecord) -> None:
    await add_leads(db, campaign.id, fr_numbers(1), T0)
    callback_lead = await _book_callback(db, campaign, "ag1", timedelta(hours=1), agent_only=False)
    await add_leads(db, campaign.id, fr_numbers(3, start=100), T0)
    assert await db.hopper.claim_leads(campaign.id, 5, T0 + timedelta(minutes=30), "n") != []
    await db.hopper.release_claims("n")
    claimed = await db.hopper.claim_leads(campaign.id, 2, T0 + timedelta(hours=2), "n")
    assert claimed[0].lead_id == callback_lead and claimed[0].status is LeadStatus.CALLBACK
    assert claimed[0].callback is not None and claimed[0].callback.agent_id is None
    assert claimed[1].status is LeadStatus.NEW


async def test_agent_only_callback_waits_for_its_agent(db: Database, campaign: CampaignRecord) -> None:
    await add_leads(db, campaign.id, fr_numbers(1), T0)
    callback_lead = await _book_callback(db, campaign, "ag7", timedelta(hours=1), agent_only=True)
    later = T0 + timedelta(hours=1, minutes=5)  # due, and within the grace for its agent (10 min)
    assert await db.hopper.claim_leads(campaign.id, 5, later, "n", ready_agents={"ag1", "ag2"}) == []
    [claimed] = await db.hopper.claim_leads(campaign.id, 5, later, "n", ready_agents={"ag7"})
    assert claimed.lead_id == callback_lead
    assert claimed.callback is not None and claimed.callback.agent_id == "ag7"
    attempt_id = await db.attempts.open_attempt(claimed.lead_id, campaign.id, claimed.number, "n", later)
    assert attempt_id
    await db.attempts.close_attempt(attempt_id, "no_answer", 19, None, later)
    # The booked callback was used by this attempt: it is not offered again.
    assert await db.hopper.claim_leads(campaign.id, 5, later, "n", ready_agents={"ag7"}) == []


async def test_ordering_by_priority(db: Database) -> None:
    record = await db.campaigns.create("prio", settings(ordering=LeadOrdering.PRIORITY), now=T0)
    await db.campaigns.set_status(record.id, CampaignStatus.RUNNING, now=T0)
    low = await add_leads(db, record.id, fr_numbers(2), T0, priority=1)
    high = await add_leads(db, record.id, fr_numbers(2, start=50), T0, priority=9)
    claimed = await db.hopper.claim_leads(record.id, 4, T0, "n")
    assert [c.lead_id for c in claimed] == high + low


async def test_future_retries_and_other_states_are_not_claimed(
    db: Database, campaign: CampaignRecord
) -> None:
    await add_leads(db, campaign.id, fr_numbers(1), T0)
    [lead] = await db.hopper.claim_leads(campaign.id, 1, T0, "n")
    attempt_id = await db.attempts.open_attempt(lead.lead_id, campaign.id, lead.number, "n", T0)
    await db.attempts.close_attempt(attempt_id, "busy", 17, None, T0)
    assert await db.hopper.claim_leads(campaign.id, 1, T0 + timedelta(minutes=1), "n") == []
    [again] = await db.hopper.claim_leads(campaign.id, 1, T0 + timedelta(hours=1), "n")
    assert again.lead_id == lead.lead_id and again.attempt_count == 1 and again.status is LeadStatus.RETRY


async def test_paused_campaign_gives_no_leads(db: Database, campaign: CampaignRecord) -> None:
    await add_leads(db, campaign.id, fr_numbers(3), T0)
    await db.campaigns.set_status(campaign.id, CampaignStatus.PAUSED, now=T0)
    assert await db.hopper.claim_leads(campaign.id, 3, T0, "n") == []
    assert await db.hopper.count_due(campaign.id, T0) == 3


async def test_release_postpones_or_retires_a_claimed_lead(db: Database, campaign: CampaignRecord) -> None:
    await add_leads(db, campaign.id, fr_numbers(2), T0)
    first, second = await db.hopper.claim_leads(campaign.id, 2, T0, "n")
    assert not await db.hopper.release(first.lead_id, "other-node", due_at=T0 + timedelta(hours=1))
    assert await db.hopper.release(
        first.lead_id, "n", due_at=T0 + timedelta(hours=1), reason="outside window"
    )
    assert await db.hopper.release(
        second.lead_id, "n", status=LeadStatus.BLOCKED, reason="on do-not-call list"
    )
    assert await db.hopper.claim_leads(campaign.id, 2, T0 + timedelta(minutes=59), "n") == []
    [back] = await db.hopper.claim_leads(campaign.id, 2, T0 + timedelta(hours=1), "n")
    assert back.lead_id == first.lead_id
    assert (await db.leads.get(second.lead_id)).status is LeadStatus.BLOCKED


async def test_two_pickers_never_get_the_same_lead(database_url: str) -> None:
    """Two dialer nodes (two engines, many concurrent claims) share one database."""
    node_a, node_b = Database(database_url), Database(database_url)
    await node_a.connect()
    await node_a.migrate()
    await node_b.connect()
    try:
        record = await node_a.campaigns.create("race", settings(), now=T0)
        await node_a.campaigns.set_status(record.id, CampaignStatus.RUNNING, now=T0)
        total = 300
        await add_leads(node_a, record.id, fr_numbers(total), T0)

        async def picker(db: Database, node: str) -> list[int]:
            got: list[int] = []
            while True:
                batch = await db.hopper.claim_leads(record.id, 7, T0, node)
                if not batch:
                    return got
                got.extend(c.lead_id for c in batch)

        results = await asyncio.gather(
            *(picker(db, f"{name}-{i}") for i in range(6) for name, db in (("a", node_a), ("b", node_b)))
        )
        everything = [lead for picked in results for lead in picked]
        assert len(everything) == total
        assert len(set(everything)) == total
        assert sum(1 for picked in results if picked) > 1  # the work was really shared
    finally:
        await node_a.close()
        await node_b.close()
