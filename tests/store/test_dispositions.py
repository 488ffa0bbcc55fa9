"""Dispositions: one per attempt, the lead's next state with it, comments visible to later agents."""

from __future__ import annotations

from datetime import timedelta

import pytest

from dialer.domain.campaign import CampaignStatus, LeadStatus
from dialer.domain.dispositions import DispositionError
from dialer.store.db import Database
from dialer.store.repositories import CampaignRecord
from tests.store.conftest import T0, settings
from tests.store.helpers import add_leads, fr_numbers


async def _connected_call(db: Database, campaign: CampaignRecord, agent: str, at=T0) -> str:  # type: ignore[no-untyped-def]
    [lead] = await db.hopper.claim_leads(campaign.id, 1, at, "n")
    attempt_id = await db.attempts.open_attempt(lead.lead_id, campaign.id, lead.number, "n", at)
    await db.attempts.close_attempt(
        attempt_id, "connected", 16, "person", at + timedelta(minutes=2), agent_id=agent
    )
    return attempt_id


async def test_second_disposition_changes_nothing(db: Database, campaign: CampaignRecord) -> None:
    [lead_id] = await add_leads(db, campaign.id, fr_numbers(1), T0)
    attempt_id = await _connected_call(db, campaign, "ag1")
    first = await db.dispositions.record_disposition(attempt_id, "sale", "ag1", now=T0 + timedelta(minutes=3))
    second = await db.dispositions.record_disposition(
        attempt_id, "do_not_call", "ag1", now=T0 + timedelta(hours=1)
    )
    assert first.changed and not second.changed
    assert second.disposition_id == first.disposition_id and second.code == "sale"
    assert (await db.leads.get(lead_id)).status is LeadStatus.DONE


async def test_do_not_call_tells_the_caller_to_block_the_number(
    db: Database, campaign: CampaignRecord
) -> None:
    [lead_id] = await add_leads(db, campaign.id, fr_numbers(1), T0)
    attempt_id = await _connected_call(db, campaign, "ag1")
    result = await db.dispositions.record_disposition(
        attempt_id, "do_not_call", "ag1", now=T0 + timedelta(hours=1)
    )
    assert result.add_to_do_not_call and result.lead_status is LeadStatus.DO_NOT_CALL


async def test_callback_needs_a_future_date(db: Database, campaign: CampaignRecord) -> None:
    # Without a date the callback is due within the campaign's default delay (tests/followup).
    await add_leads(db, campaign.id, fr_numbers(1), T0)
    attempt_id = await _connected_call(db, campaign, "ag1")
    now = T0 + timedelta(minutes=3)
    with pytest.raises(DispositionError, match="in the past"):
        await db.dispositions.record_disposition(
            attempt_id, "callback_requested", "ag1", now=now, callback_at=T0
        )
    result = await db.dispositions.record_disposition(
        attempt_id, "callback_requested", "ag1", now=now, callback_at=now + timedelta(days=1)
    )
    assert result.lead_status is LeadStatus.CALLBACK and result.callback_id is not None


async def test_appointment_is_booked_with_the_disposition(db: Database, campaign: CampaignRecord) -> None:
    await add_leads(db, campaign.id, fr_numbers(1), T0)
    attempt_id = await _connected_call(db, campaign, "ag1")
    result = await db.dispositions.record_disposition(
        attempt_id,
        "appointment_set",
        "ag1",
        now=T0 + timedelta(minutes=3),
        appointment_at=T0 + timedelta(days=2),
        salesperson="sales-3",
    )
    assert result.appointment_id is not None and result.lead_status is LeadStatus.DONE


async def test_disposition_not_enabled_for_campaign_is_refused(db: Database) -> None:
    record = await db.campaigns.create(
        "short",
        settings(dispositions=("sale", "not_interested"), default_disposition="not_interested"),
        now=T0,
    )
    campaign = await db.campaigns.set_status(record.id, CampaignStatus.RUNNING, now=T0)
    await add_leads(db, campaign.id, fr_numbers(1), T0)
    attempt_id = await _connected_call(db, campaign, "ag1")
    with pytest.raises(DispositionError, match="choose one of: sale, not_interested"):
        await db.dispositions.record_disposition(attempt_id, "busy", "ag1", now=T0 + timedelta(minutes=3))


async def test_busy_disposition_retries_per_rule(db: Database, campaign: CampaignRecord) -> None:
    [lead_id] = await add_leads(db, campaign.id, fr_numbers(1), T0)
    attempt_id = await _connected_call(db, campaign, "ag1")
    now = T0 + timedelta(minutes=3)
    result = await db.dispositions.record_disposition(attempt_id, "busy", "ag1", now=now)
    lead = await db.leads.get(lead_id)
    assert (
        result.lead_status is LeadStatus.RETRY
        and lead.next_attempt_at is not None
        and lead.next_attempt_at > now
    )


async def test_comments_are_visible_to_later_agents_across_campaigns(
    db: Database, campaign: CampaignRecord
) -> None:
    number = fr_numbers(1)[0]
    await add_leads(db, campaign.id, [number], T0)
    other = await db.campaigns.create("autumn", settings(), now=T0)
    await db.campaigns.set_status(other.id, CampaignStatus.RUNNING, now=T0)
    await add_leads(db, other.id, [number], T0)

    first = await _connected_call(db, campaign, "ag1")
    await db.dispositions.record_disposition(
        first,
        "not_interested",
        "ag1",
        now=T0 + timedelta(minutes=3),
        comments="Prefers e-mail contact.",
        objections=["price"],
        identity={"first_name": "Léa", "last_name": "Martin"},
    )
    later = T0 + timedelta(days=5)
    second = await _connected_call(db, other, "ag2", at=later)
    await db.dispositions.record_disposition(second, "sale", "ag2", now=later + timedelta(minutes=3))

    history = await db.customers.history(number)
    assert [(h.campaign, h.agent_id, h.code) for h in history] == [
        ("autumn", "ag2", "sale"),
        ("spring", "ag1", "not_interested"),
    ]
    [comment] = await db.customers.comments(number)
    assert comment.comments == "Prefers e-mail contact." and comment.objections == ("price",)
    customer = await db.customers.get(number)
    assert customer is not None and (customer.first_name, customer.last_name) == ("Léa", "Martin")
    assert await db.customers.history("+33199999999") == []


async def test_refusal_on_a_dropped_call_still_closes_the_lead(
    db: Database, campaign: CampaignRecord
) -> None:
    [lead_id] = await add_leads(db, campaign.id, fr_numbers(1), T0)
    [lead] = await db.hopper.claim_leads(campaign.id, 1, T0, "n")
    attempt_id = await db.attempts.open_attempt(lead.lead_id, campaign.id, lead.number, "n", T0)
    # Never recorded as connected: the retry rule puts the lead back in the list...
    await db.attempts.close_attempt(attempt_id, "dropped", 16, "person", T0 + timedelta(seconds=30))
    assert (await db.leads.get(lead_id)).status is LeadStatus.RETRY
    # ...but the agent heard a refusal: the disposition of the latest attempt decides.
    result = await db.dispositions.record_disposition(
        attempt_id, "do_not_call", "ag1", now=T0 + timedelta(minutes=1)
    )
    assert result.lead_status is LeadStatus.DO_NOT_CALL


async def test_late_disposition_of_an_older_attempt_leaves_the_lead(
    db: Database, campaign: CampaignRecord
) -> None:
    [lead_id] = await add_leads(db, campaign.id, fr_numbers(1), T0)
    [lead] = await db.hopper.claim_leads(campaign.id, 1, T0, "n")
    first = await db.attempts.open_attempt(lead.lead_id, campaign.id, lead.number, "n", T0)
    await db.attempts.close_attempt(first, "busy", 17, None, T0)
    later = T0 + timedelta(hours=2)
    [again] = await db.hopper.claim_leads(campaign.id, 1, later, "n")
    second = await db.attempts.open_attempt(again.lead_id, campaign.id, again.number, "n", later)
    result = await db.dispositions.record_disposition(first, "not_interested", "ag1", now=later)
    assert result.changed and result.lead_status is LeadStatus.IN_FLIGHT
    assert (await db.leads.get(lead_id)).current_attempt_id == second
