"""The bootstrap's adapters on a real database (SQLite and PostgreSQL) and the real gate."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from dialer.domain.campaign import CampaignSettings, CampaignStatus, LeadStatus, PacingMode
from dialer.runtime.bootstrap import build_runtime, pacer_of
from dialer.runtime.demo import DEMO_PROFILE
from dialer.runtime.ports import AttemptResult, GateVerdict
from dialer.settings import Settings
from dialer.store.repositories import NewLead
from tests.runtime.fakes import FakePbx


async def _campaign(db, name="boot"):
    record = await db.campaigns.create(
        name,
        CampaignSettings(
            dial_string="PJSIP/{digits}@trunk",
            caller_id="+33100000000",
            pacing_mode=PacingMode.PREDICTIVE,
            jurisdiction="CUSTOM-DEMO",
        ),
    )
    return await db.campaigns.set_status(record.id, CampaignStatus.RUNNING)


async def _leads(db, campaign_id, numbers):
    list_id = await db.leads.create_list(campaign_id, "l", "test", "FR")
    await db.leads.add(
        campaign_id,
        list_id,
        [NewLead(phone=n, timezones=("Europe/Paris",)) for n in numbers],
        now=datetime.now(UTC) - timedelta(minutes=1),
    )


async def _runtime(database_url, tmp_path):
    profiles = tmp_path / "profiles.toml"
    profiles.write_text(DEMO_PROFILE)
    return await build_runtime(
        Settings(database_url=database_url, node_id="n1"), pbx=FakePbx(), profile_files=(profiles,)
    )


async def test_abandonment_history_of_the_window_survives_a_restart(db, database_url, tmp_path):
    campaign = await _campaign(db)
    await _leads(db, campaign.id, [f"+3361234{i:04d}" for i in range(4)])
    runtime = await _runtime(database_url, tmp_path)
    try:
        now = datetime.now(UTC)
        claimed = await runtime.engine.record.claim_leads(str(campaign.id), 4, now)
        for i, lead in enumerate(claimed):
            attempt = await runtime.engine.record.open_attempt(lead, now)
            await runtime.engine.record.attempt_event(attempt, "answered", now)
            result = AttemptResult(
                "abandoned" if i == 0 else "machine" if i == 3 else "answered",
                now,
                abandoned=i == 0,
                person_answered=i != 3,
            )
            assert await runtime.engine.record.close_attempt(attempt, result)
            assert not await runtime.engine.record.close_attempt(attempt, result)  # idempotent
        pacer = await pacer_of(runtime.db, runtime.gate, campaign, runtime.limits, now + timedelta(seconds=1))
        answered, abandoned = pacer.tracker.counts(time.time())
        assert abandoned == 1 and answered == 3
    finally:
        await runtime.close()


async def test_lead_blocked_for_good_leaves_the_list_and_a_window_block_is_postponed(
    db, database_url, tmp_path
):
    campaign = await _campaign(db)
    await _leads(db, campaign.id, ["+33612340001", "+33612340002"])
    runtime = await _runtime(database_url, tmp_path)
    try:
        now = datetime.now(UTC)
        first, second = await runtime.engine.record.claim_leads(str(campaign.id), 2, now)
        await runtime.engine.record.release_lead(first, GateVerdict(False, "dnc", "on the list"), now)
        later = now + timedelta(hours=3)
        await runtime.engine.record.release_lead(
            second, GateVerdict(False, "calling_window", "closed", later), now
        )
        a = await runtime.db.leads.get(int(first.lead_id))
        b = await runtime.db.leads.get(int(second.lead_id))
        assert a.status is LeadStatus.DO_NOT_CALL
        assert b.status is LeadStatus.NEW and b.next_attempt_at >= later - timedelta(seconds=1)
        assert await runtime.engine.record.claim_leads(str(campaign.id), 2, now) == []
    finally:
        await runtime.close()
