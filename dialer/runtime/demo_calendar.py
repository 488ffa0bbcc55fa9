"""The demo's field calendar: three salespeople around Paris, the travel matrix, postcodes on the leads.

The simulated agents then book a visit on the free slots for each customer
they qualify "appointment set" (``dialer.runtime.demo_agents``), as an agent
does on the screen.
"""

from __future__ import annotations

import random

from sqlalchemy import select, update

from dialer.calendar.travel import CalendarConfig
from dialer.service.calendar import CalendarService
from dialer.store.db import Database
from dialer.store.models import Lead

DEMO_CALENDAR = """
appointment_minutes = 60
slot_step_minutes = 30
horizon_days = 14
notice_minutes = 120

[travel]
buffer_minutes = 15
speed_kmh = 35
same_area_minutes = 20
areas = { "75" = [48.857, 2.352], "92" = [48.892, 2.207], "93" = [48.910, 2.480] }

[[travel.times]]
from = "75"
to = "92"
minutes = 40
"""
SALESPEOPLE = (
    ("claire", "Claire Dubois", "75008", "75"),
    ("marc", "Marc Leroy", "92100", "92,75"),
    ("nadia", "Nadia Benali", "93200", "93,75"),
)
POSTCODES = ("75002", "75011", "75015", "75018", "92100", "92200", "93100", "93200")


async def seed_field_calendar(db: Database, campaign_id: int, rng: random.Random) -> int:
    """Salespeople and the travel settings; a postcode on every lead of the campaign (returns their count)."""
    calendar = CalendarService(db)
    await calendar.set_config(CalendarConfig.from_toml(DEMO_CALENDAR), "demo")
    for sp_id, name, home, areas in SALESPEOPLE:
        await calendar.add_salesperson(
            sp_id,
            name=name,
            email=f"{sp_id}@demo.invalid",
            timezone="Europe/Paris",
            home_postcode=home,
            areas=areas,
            hours="mon-sat 08:00-19:00",
        )
    async with db.session() as s, s.begin():
        ids = list((await s.execute(select(Lead.id).where(Lead.campaign_id == campaign_id))).scalars())
        for lead_id in ids:
            await s.execute(update(Lead).where(Lead.id == lead_id).values(postcode=rng.choice(POSTCODES)))
    return len(ids)
