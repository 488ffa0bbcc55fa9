"""A record with a campaign, leads with postcodes, connected calls, salespeople and the travel matrix."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from dialer.calendar.travel import CalendarConfig
from dialer.domain.campaign import CampaignSettings
from dialer.service.calendar import CalendarService
from dialer.store.db import Database
from dialer.store.models import Attempt, Lead
from tests.store.helpers import add_leads

# A Friday morning; the calendar's week starts on Monday 2026-12-07.
NOW = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)
MONDAY = datetime(2026, 12, 7, tzinfo=UTC)

TRAVEL_TOML = """
appointment_minutes = 60
slot_step_minutes = 30
horizon_days = 14
notice_minutes = 120

[travel]
buffer_minutes = 15
speed_kmh = 40
same_area_minutes = 20
areas = { "75" = [48.857, 2.352], "92" = [48.892, 2.207], "93" = [48.910, 2.480] }

[[travel.times]]
from = "75"
to = "92"
minutes = 40
"""


@dataclass
class Record:
    db: Database
    calendar: CalendarService
    campaign_id: int
    clock: list[datetime]

    async def call(
        self,
        agent_id: str = "agent1",
        postcode: str | None = "75011",
        number: str | None = None,
        **lead: object,
    ) -> str:
        """A connected call of ``agent_id`` to a new lead at ``postcode``; returns the attempt id."""
        number = number or f"+3361{uuid.uuid4().int % 10**7:07d}"  # a mobile by default: SMS reaches it
        (lead_id,) = await add_leads(self.db, self.campaign_id, [number], NOW)
        attempt_id = str(uuid.uuid4())
        async with self.db.session() as s, s.begin():
            row = await s.get(Lead, lead_id)
            assert row is not None
            row.postcode = postcode
            for key, value in lead.items():
                setattr(row, key, value)
            s.add(
                Attempt(
                    id=attempt_id,
                    campaign_id=self.campaign_id,
                    lead_id=lead_id,
                    number=number,
                    node_id="node-1",
                    status="closed",
                    created_at=NOW,
                    connected_at=NOW,
                    ended_at=NOW + timedelta(minutes=3),
                    agent_id=agent_id,
                )
            )
        return attempt_id


async def make_record(db: Database) -> Record:
    campaign = await db.campaigns.create(
        "field", CampaignSettings(dial_string="PJSIP/{digits}@trunk", caller_id="+33100000000"), now=NOW
    )
    clock = [NOW]
    calendar = CalendarService(db, wall=lambda: clock[0])
    await calendar.set_config(CalendarConfig.from_toml(TRAVEL_TOML), "test")
    await calendar.add_salesperson(
        "alice",
        name="Alice Martin",
        email="alice@example.com",
        timezone="Europe/Paris",
        home_postcode="75001",
        areas="75,92",
        hours="mon-fri 08:00-18:00",
    )
    await calendar.add_salesperson(
        "bob",
        name="Bob Petit",
        email="bob@example.com",
        timezone="Europe/Paris",
        home_postcode="93100",
        areas="93",
        hours="mon-fri 09:00-17:00",
    )
    return Record(db, calendar, campaign.id, clock)


@pytest.fixture
async def record(db: Database) -> Record:
    return await make_record(db)


def paris(day: int, hour: int, minute: int = 0) -> datetime:
    """A time in December 2026 in Paris (UTC+1), as UTC."""
    return datetime(2026, 12, day, hour - 1, minute, tzinfo=UTC)
