"""Campaign records and report figures, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from dialer.domain.campaign import CampaignStatus, PacingMode, StatusChangeError
from dialer.store.db import Database
from dialer.store.models import AuditEntry
from dialer.store.repositories import CampaignRecord, Conflict, NotFound
from tests.store.conftest import T0, settings
from tests.store.helpers import add_leads, fr_numbers


async def test_campaign_create_get_list_and_status(db: Database) -> None:
    created = await db.campaigns.create(
        "spring", settings(pacing_mode=PacingMode.RATIO, dial_ratio=2.0), now=T0
    )
    assert created.status is CampaignStatus.DRAFT and created.settings.dial_ratio == 2.0
    assert await db.campaigns.get(created.id) == created
    assert await db.campaigns.by_name("spring") == created
    assert await db.campaigns.by_name("autumn") is None
    with pytest.raises(Conflict, match="already exists"):
        await db.campaigns.create("spring", settings())
    with pytest.raises(NotFound, match="dialer campaign list"):
        await db.campaigns.get(999)

    running = await db.campaigns.set_status(created.id, CampaignStatus.RUNNING, actor="sup1", now=T0)
    assert running.status is CampaignStatus.RUNNING
    assert (
        await db.campaigns.set_status(created.id, CampaignStatus.RUNNING)
    ).status is CampaignStatus.RUNNING
    with pytest.raises(StatusChangeError):
        await db.campaigns.set_status(created.id, CampaignStatus.DRAFT)
    assert [c.name for c in await db.campaigns.list(CampaignStatus.RUNNING)] == ["spring"]
    assert await db.campaigns.list(CampaignStatus.PAUSED) == []

    updated = await db.campaigns.update_settings(created.id, settings(ring_timeout_s=30), actor="sup1")
    assert updated.settings.ring_timeout_s == 30

    async with db.read_session() as s:
        actions = [
            (a.actor, a.action)
            for a in (await s.execute(select(AuditEntry).order_by(AuditEntry.id))).scalars()
        ]
    assert actions == [
        ("system", "campaign.create"),
        ("sup1", "campaign.status"),
        ("sup1", "campaign.settings"),
    ]


async def test_report_counts_outcomes_abandons_talk_and_conversions(
    db: Database, campaign: CampaignRecord
) -> None:
    await add_leads(db, campaign.id, fr_numbers(5), T0)
    claims = await db.hopper.claim_leads(campaign.id, 5, T0, "n")
    ids = [await db.attempts.open_attempt(c.lead_id, campaign.id, c.number, "n", T0) for c in claims]
    end = T0 + timedelta(minutes=2)
    await db.attempts.close_attempt(ids[0], "busy", 17, None, end)
    await db.attempts.close_attempt(ids[1], "machine", 16, "machine", end)
    await db.attempts.close_attempt(ids[2], "abandoned", 16, "person", end)
    for attempt_id, agent, code in ((ids[3], "ag1", "sale"), (ids[4], "ag2", "not_interested")):
        await db.attempts.record_event(attempt_id, "connected", T0 + timedelta(seconds=20), agent_id=agent)
        await db.attempts.close_attempt(attempt_id, "connected", 16, "person", end)
        await db.dispositions.record_disposition(attempt_id, code, agent, now=end + timedelta(seconds=30))

    [report] = await db.reports.campaign_report()
    assert (report.attempts, report.answered, report.person_answered, report.machines) == (5, 4, 3, 1)
    assert (report.contacts, report.abandoned, report.conversions, report.dispositions) == (2, 1, 1, 2)
    assert report.abandon_rate == pytest.approx(1 / 3)
    assert report.talk_seconds == pytest.approx(200.0) and report.avg_wrap_seconds == pytest.approx(30.0)
    assert report.outcomes == {"answered": 4, "busy": 1}

    agents = {a.agent_id: a for a in await db.reports.agent_report()}
    assert set(agents) == {"ag1", "ag2"}
    assert (agents["ag1"].calls, agents["ag1"].conversions, agents["ag1"].codes) == (1, 1, {"sale": 1})
    assert agents["ag2"].talk_seconds == pytest.approx(100.0)

    assert await db.reports.campaign_report(since=T0 + timedelta(hours=1)) == []
    assert await db.reports.campaign_report(campaign_id=campaign.id + 1) == []


async def test_users_have_roles_and_changes_are_audited(db: Database) -> None:
    from dialer.store.repositories import Role

    agent = await db.users.create("ag1", "Léa Martin", Role.AGENT, actor="admin1", now=T0)
    assert (agent.role, agent.active) == (Role.AGENT, True)
    with pytest.raises(Conflict, match="already exists"):
        await db.users.create("ag1", "Other", Role.AGENT)
    await db.users.create("sup1", "Hugo", Role.SUPERVISOR)
    assert [u.id for u in await db.users.list(Role.AGENT)] == ["ag1"]
    updated = await db.users.update("ag1", active=False, token_hash="x$y", actor="admin1")
    assert updated.active is False and updated.token_hash == "x$y"
    assert await db.users.get("nobody") is None
    with pytest.raises(NotFound):
        await db.users.update("nobody", active=True)
    async with db.read_session() as s:
        rows = (await s.execute(select(AuditEntry).where(AuditEntry.entity == "user"))).scalars().all()
    assert [(r.action, r.detail) for r in rows][-1] == ("user.update", {"active": False, "token": "replaced"})
