"""A migrated database with one campaign for the lead import tests."""

from __future__ import annotations

import pytest

from dialer.domain.campaign import CampaignSettings
from dialer.store.db import Database
from dialer.store.repositories import CampaignRecord


@pytest.fixture
async def campaign(db: Database) -> CampaignRecord:
    settings = CampaignSettings(dial_string="PJSIP/{number}@trunk", caller_id="+33123456789")
    return await db.campaigns.create("import-test", settings)
