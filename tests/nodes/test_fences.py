"""The fence in the record: an attempt written under an older lease token is refused, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from dialer.domain.campaign import CampaignSettings, CampaignStatus
from dialer.domain.fencing import AttemptFenced, fence_allows
from dialer.store.db import Database
from dialer.store.fences import highest_token
from dialer.store.models import Attempt, Lead
from tests.store.helpers import add_leads, fr_numbers

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


async def _campaign(db: Database, leads: int = 3) -> tuple[int, list[int]]:
    record = await db.campaigns.create(
        "fenced", CampaignSettings(dial_string="PJSIP/{number}@trunk", caller_id="+33123456789"), now=T0
    )
    await db.campaigns.set_status(record.id, CampaignStatus.RUNNING, now=T0)
    ids = await add_leads(db, record.id, fr_numbers(leads), T0 - timedelta(minutes=1))
    return record.id, ids


def test_the_fence_rule():
    assert fence_allows(1, None)
    assert fence_allows(3, 3)  # the holder writes again
    assert fence_allows(4, 3)  # a new holder
    assert not fence_allows(2, 3)  # the old one, late


async def test_an_attempt_under_an_older_token_is_refused_and_nothing_is_written(db: Database):
    campaign, (first, second, third) = await _campaign(db)
    number = fr_numbers(3)
    a1 = await db.attempts.open_attempt(first, campaign, number[0], "node-a", T0, fencing_token=1)
    b = await db.attempts.open_attempt(second, campaign, number[1], "node-b", T0, fencing_token=2)
    assert await highest_token(db, campaign) == 2
    with pytest.raises(AttemptFenced, match="token 1 is older than token 2"):
        await db.attempts.open_attempt(third, campaign, number[2], "node-a", T0, fencing_token=1)
    async with db.read_session() as s:
        rows = {r.id: r.fencing_token for r in (await s.execute(select(Attempt))).scalars()}
        lead = await s.get(Lead, third)
    assert rows == {a1: 1, b: 2}  # every attempt row carries its token
    assert lead is not None and lead.status == "new" and lead.attempt_count == 0  # untouched
    assert await highest_token(db, campaign) == 2


async def test_a_result_written_under_an_older_token_is_refused_and_the_attempt_stays_open(db: Database):
    campaign, (first, second, _) = await _campaign(db)
    number = fr_numbers(2)
    old = await db.attempts.open_attempt(first, campaign, number[0], "node-a", T0, fencing_token=1)
    await db.attempts.open_attempt(second, campaign, number[1], "node-b", T0, fencing_token=2)
    with pytest.raises(AttemptFenced):
        await db.attempts.close_attempt(old, "busy", 17, None, T0, fencing_token=1)
    assert (await db.attempts.get(old)).status == "open"
    # The new holder settles it (the takeover closes what the old holder left open).
    assert await db.attempts.close_attempt(old, "lost", None, None, T0, fencing_token=2)
    assert (await db.attempts.get(old)).result == "lost"


async def test_the_holder_keeps_writing_under_its_token_until_a_newer_one_is_seen(db: Database):
    campaign, (first, second, _) = await _campaign(db)
    number = fr_numbers(2)
    a1 = await db.attempts.open_attempt(first, campaign, number[0], "node-a", T0, fencing_token=5)
    assert await db.attempts.close_attempt(a1, "busy", 17, None, T0, fencing_token=5)
    a2 = await db.attempts.open_attempt(second, campaign, number[1], "node-a", T0, fencing_token=5)
    assert await db.attempts.close_attempt(a2, "no_answer", 19, None, T0, fencing_token=5)
    assert await highest_token(db, campaign) == 5


async def test_fences_are_per_campaign_and_writes_without_a_token_are_not_fenced(db: Database):
    one, (lead_one, other_one, _) = await _campaign(db)
    two_record = await db.campaigns.create(
        "other", CampaignSettings(dial_string="PJSIP/{number}@trunk", caller_id="+33123456789"), now=T0
    )
    await db.campaigns.set_status(two_record.id, CampaignStatus.RUNNING, now=T0)
    [lead_two] = await add_leads(db, two_record.id, ["+33140000001"], T0 - timedelta(minutes=1))
    await db.attempts.open_attempt(lead_one, one, fr_numbers(1)[0], "node-a", T0, fencing_token=9)
    await db.attempts.open_attempt(lead_two, two_record.id, "+33140000001", "node-b", T0, fencing_token=1)
    single = await db.attempts.open_attempt(other_one, one, fr_numbers(2)[1], "solo", T0)  # no Redis
    assert await highest_token(db, one) == 9 and await highest_token(db, two_record.id) == 1
    async with db.read_session() as s:
        count = (await s.execute(select(func.count()).select_from(Attempt))).scalar_one()
        assert (await s.get(Attempt, single)).fencing_token is None  # type: ignore[union-attr]
    assert count == 3
