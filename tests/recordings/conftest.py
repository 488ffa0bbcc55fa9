from __future__ import annotations

import pytest

from dialer.domain.campaign import CampaignStatus, RecordingPolicy
from dialer.store.db import Database
from dialer.store.repositories import CampaignRecord
from tests.store.conftest import T0, settings


@pytest.fixture
async def campaign(db: Database) -> CampaignRecord:
    record = await db.campaigns.create(
        "recorded", settings(recording=RecordingPolicy.ALL, recording_retention_days=30), now=T0
    )
    return await db.campaigns.set_status(record.id, CampaignStatus.RUNNING, now=T0)
