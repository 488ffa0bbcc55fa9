"""A migrated database and a running campaign for the store tests."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dialer.domain.campaign import CampaignSettings, CampaignStatus
from dialer.store.db import Database
from dialer.store.repositories import CampaignRecord

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def settings(**changes: object) -> CampaignSettings:
    base = CampaignSettings(dial_string="PJSIP/{number}@trunk", caller_id="+33123456789")
    return base.with_changes(**changes) if changes else base.validate()


@pytest.fixture
async def campaign(db: Database) -> CampaignRecord:
    record = await db.campaigns.create("spring", settings(), now=T0)
    return await db.campaigns.set_status(record.id, CampaignStatus.RUNNING, now=T0)
