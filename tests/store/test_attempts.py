"""Attempts: written before the Originate, closed once, the lead moved on in the same transaction."""

from __future__ import annotations

from datetime import timedelta

import pytest

from dialer.domain.campaign import CallResult, LeadStatus, RetryRule
from dialer.store.db import Database
from dialer.store.repositories import AttemptEvent, CampaignRecord, LeadUnavailable
from tests.store.conftest import T0, settings
from tests.store.helpers import add_leads, fr_numbers


async def _dial(db: Database, campaign: CampaignRecord, node: str = "node-a") -> tuple[int, str]:
    [lead] = await db.hopper.claim_leads(campaign.id, 1, T0, node)
    attempt_id = await db.attempts.open_attempt(lead.lead_id, campaign.id, lead.number, node, T0)
    return lead.lead_id, attempt_id


async def test_open_attempt_is_on_record_and_puts_lead_in_flight(
    db: Database, campaign: CampaignRecord
) -> None:
    await add_leads(db, campaign.id, fr_numbers(1), T0)
    lead_id, attempt_id = await _dial(db, campaign)
    attempt = await db.attempts.get(attempt_id)
    assert attempt.status == "open" and attempt.lead_id == lead_id and attempt.created_at == T0
    lead = await db.leads.get(lead_id)
    assert lead.status is LeadStatus.IN_FLIGHT
    assert lead.attempt_count == 1 and lead.current_attempt_id == attempt_id and lead.claimed_by is None
    with pytest.raises(LeadUnavailable, match="in_flight"):
        await db.attempts.open_attempt(lead_id, campaign.id, lead.phone, "node-a", T0)
    assert await db.hopper.claim_leads(campaign.id, 5, T0 + timedelta(days=1), "node-b") == []


async def test_lead_claimed_by_another_node_cannot_be_dialed(db: Database, campaign: CampaignRecord) -> None:
    await add_leads(db, campaign.id, fr_numbers(1), T0)
    [lead] = await db.hopper.claim_leads(campaign.id, 1, T0, "node-a")
    with pytest.raises(LeadUnavailable, match="claimed by node 'node-a'"):
        await db.attempts.open_attempt(lead.lead_id, campaign.id, lead.number, "node-b", T0)


async def test_the_originate_time_is_written_with_the_outcome(db: Database, campaign: CampaignRecord) -> None:
    await add_leads(db, campaign.id, fr_numbers(1), T0)
    _, attempt_id = await _dial(db, campaign)
    sent = T0 + timedelta(seconds=1)
    await db.attempts.close_attempt(
        attempt_id, "no_answer", 19, None, T0 + timedelta(seconds=30), originated_at=sent
    )
    assert (await db.attempts.get(attempt_id)).originated_at == sent


async def test_close_attempt_applies_retry_rule_once(db: Database, campaign: CampaignRecord) -> None:
    await add_leads(db, campaign.id, fr_numbers(1), T0)
    lead_id, attempt_id = await _dial(db, campaign)
    end = T0 + timedelta(seconds=30)
    assert await db.attempts.close_attempt(attempt_id, "busy", 17, None, end) is True
    assert await db.attempts.close_attempt(attempt_id, "no_answer", 19, None, end) is False
    attempt = await db.attempts.get(attempt_id)
    assert (attempt.outcome, attempt.cause, attempt.result, attempt.ended_at) == ("busy", 17, "busy", end)
    lead = await db.leads.get(lead_id)
    busy = settings().retry_rules[CallResult.BUSY]
    assert lead.status is LeadStatus.RETRY
    assert lead.next_attempt_at == end + timedelta(seconds=busy.delay_s)
    assert lead.attempt_count == 1 and lead.current_attempt_id is None and lead.last_result == "busy"


async def test_retry_rule_exhausts_the_lead(db: Database) -> None:
    rules = {CallResult.NO_ANSWER: RetryRule(delay_s=60, max_attempts=2)}
    record = await db.campaigns.create("tight", settings(retry_rules=rules), now=T0)
    from dialer.domain.campaign import CampaignStatus

    campaign = await db.campaigns.set_status(record.id, CampaignStatus.RUNNING, now=T0)
    [lead_id] = await add_leads(db, campaign.id, fr_numbers(1), T0)
    now = T0
    statuses = []
    for _ in range(2):
        [lead] = await db.hopper.claim_leads(campaign.id, 1, now, "n")
        attempt_id = await db.attempts.open_attempt(lead.lead_id, campaign.id, lead.number, "n", now)
        await db.attempts.close_attempt(attempt_id, "no_answer", 19, None, now)
        statuses.append((await db.leads.get(lead_id)).status)
        now += timedelta(seconds=61)
    assert statuses == [LeadStatus.RETRY, LeadStatus.EXHAUSTED]
    assert await db.hopper.claim_leads(campaign.id, 1, now + timedelta(days=3), "n") == []


async def test_invalid_number_is_never_retried(db: Database, campaign: CampaignRecord) -> None:
    [lead_id] = await add_leads(db, campaign.id, fr_numbers(1), T0)
    _, attempt_id = await _dial(db, campaign)
    await db.attempts.close_attempt(attempt_id, "invalid_number", 1, None, T0)
    assert (await db.leads.get(lead_id)).status is LeadStatus.INVALID


async def test_events_fill_times_once(db: Database, campaign: CampaignRecord) -> None:
    await add_leads(db, campaign.id, fr_numbers(1), T0)
    _, attempt_id = await _dial(db, campaign)
    t1, t2 = T0 + timedelta(seconds=2), T0 + timedelta(seconds=9)
    assert await db.attempts.record_event(attempt_id, AttemptEvent.RINGING, t1)
    assert await db.attempts.record_event(attempt_id, AttemptEvent.ANSWERED, t2, pbx_uniqueid="1700000000.42")
    assert not await db.attempts.record_event(attempt_id, AttemptEvent.RINGING, t2)  # replayed event
    with pytest.raises(ValueError, match="unknown attempt event"):
        await db.attempts.record_event(attempt_id, "hung", t2)
    attempt = await db.attempts.get(attempt_id)
    assert (attempt.ringing_at, attempt.answered_at, attempt.pbx_uniqueid) == (t1, t2, "1700000000.42")


async def test_connected_call_waits_for_disposition_then_moves_on(
    db: Database, campaign: CampaignRecord
) -> None:
    [lead_id] = await add_leads(db, campaign.id, fr_numbers(1), T0)
    _, attempt_id = await _dial(db, campaign)
    await db.attempts.record_event(attempt_id, AttemptEvent.ANSWERED, T0 + timedelta(seconds=5))
    await db.attempts.record_event(
        attempt_id, AttemptEvent.CONNECTED, T0 + timedelta(seconds=6), agent_id="ag1"
    )
    end = T0 + timedelta(seconds=126)
    await db.attempts.close_attempt(attempt_id, "connected", 16, "person", end)
    lead = await db.leads.get(lead_id)
    assert lead.status is LeadStatus.WRAP_UP and lead.current_attempt_id == attempt_id
    assert (await db.attempts.get(attempt_id)).talk_seconds == 120.0
    assert await db.dispositions.pending_wrap_ups(end + timedelta(seconds=1)) == [attempt_id]
    result = await db.dispositions.record_disposition(
        attempt_id, "sale", "ag1", now=end + timedelta(seconds=20)
    )
    assert result.changed and result.lead_status is LeadStatus.DONE
    assert await db.dispositions.pending_wrap_ups(end + timedelta(hours=1)) == []


async def test_disposition_before_hangup_is_applied_when_call_closes(
    db: Database, campaign: CampaignRecord
) -> None:
    [lead_id] = await add_leads(db, campaign.id, fr_numbers(1), T0)
    _, attempt_id = await _dial(db, campaign)
    await db.attempts.record_event(
        attempt_id, AttemptEvent.CONNECTED, T0 + timedelta(seconds=6), agent_id="ag1"
    )
    result = await db.dispositions.record_disposition(
        attempt_id, "not_interested", "ag1", now=T0 + timedelta(seconds=30)
    )
    assert result.lead_status is LeadStatus.IN_FLIGHT  # the call is still up: the lead stays in flight
    await db.attempts.close_attempt(attempt_id, "connected", 16, None, T0 + timedelta(seconds=40))
    assert (await db.leads.get(lead_id)).status is LeadStatus.DONE


async def test_crash_between_open_and_close_loses_nothing(database_url: str) -> None:
    first = Database(database_url)
    await first.connect()
    await first.migrate()
    record = await first.campaigns.create("crash", settings(), now=T0)
    from dialer.domain.campaign import CampaignStatus

    await first.campaigns.set_status(record.id, CampaignStatus.RUNNING, now=T0)
    [lead_id] = await add_leads(first, record.id, fr_numbers(1), T0)
    [lead] = await first.hopper.claim_leads(record.id, 1, T0, "node-a")
    attempt_id = await first.attempts.open_attempt(lead.lead_id, record.id, lead.number, "node-a", T0)
    await first.close()  # the process dies here, with the Originate sent

    second = Database(database_url)
    await second.connect()
    try:
        [orphan] = await second.attempts.open_attempts(node_id="node-a")
        assert orphan.attempt_id == attempt_id and orphan.lead_id == lead_id
        assert await second.attempts.open_attempts(node_id="node-b") == []
        end = T0 + timedelta(minutes=1)
        assert await second.attempts.close_attempt(attempt_id, "lost", None, None, end)
        assert not await second.attempts.close_attempt(attempt_id, "lost", None, None, end)
        lead_after = await second.leads.get(lead_id)
        assert lead_after.attempt_count == 1 and lead_after.status is LeadStatus.RETRY
        assert await second.attempts.open_attempts() == []
    finally:
        await second.close()


async def test_abandon_history_lists_answered_calls(db: Database, campaign: CampaignRecord) -> None:
    await add_leads(db, campaign.id, fr_numbers(4), T0)
    claims = await db.hopper.claim_leads(campaign.id, 4, T0, "n")
    cases = [
        ("abandoned", "person"),
        ("machine", "machine"),
        ("no_answer", None),
        ("dropped", "person"),
    ]
    for i, (lead, (outcome, amd)) in enumerate(zip(claims, cases, strict=True)):
        attempt_id = await db.attempts.open_attempt(lead.lead_id, campaign.id, lead.number, "n", T0)
        end = T0 + timedelta(minutes=i + 1)
        await db.attempts.close_attempt(attempt_id, outcome, 16, amd, end)
    history = await db.attempts.abandon_history(campaign.id, T0)
    assert [(h.person_answered, h.abandoned) for h in history] == [
        (True, True),
        (False, False),
        (True, False),
    ]
    assert await db.attempts.abandon_history(campaign.id, T0 + timedelta(minutes=2)) == history[1:]


async def test_concurrent_duplicate_closes_count_once(db: Database, campaign: CampaignRecord) -> None:
    import asyncio

    [lead_id] = await add_leads(db, campaign.id, fr_numbers(1), T0)
    _, attempt_id = await _dial(db, campaign)
    end = T0 + timedelta(seconds=20)
    results = await asyncio.gather(
        *(db.attempts.close_attempt(attempt_id, "no_answer", 19, None, end) for _ in range(6))
    )
    assert sorted(results) == [False] * 5 + [True]
    lead = await db.leads.get(lead_id)
    assert lead.attempt_count == 1 and lead.status is LeadStatus.RETRY
