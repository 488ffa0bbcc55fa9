"""Small builders shared by the store tests."""

from __future__ import annotations

from datetime import datetime

from dialer.store.db import Database
from dialer.store.repositories import NewLead


async def add_leads(
    db: Database, campaign_id: int, numbers: list[str], now: datetime, **fields: object
) -> list[int]:
    """Insert leads for ``numbers`` (E.164) and return their ids in the same order."""
    list_id = await db.leads.create_list(campaign_id, "test", "test.csv", "FR", now=now)
    await db.leads.add(
        campaign_id,
        list_id,
        [NewLead(phone=n, timezones=("Europe/Paris",), **fields) for n in numbers],  # type: ignore[arg-type]
        now=now,
    )
    by_phone = {lead.phone: lead.id async for lead in db.leads.iter_leads(campaign_id)}
    return [by_phone[n] for n in numbers]


def fr_numbers(count: int, start: int = 0) -> list[str]:
    return [f"+3313{i:07d}" for i in range(start, start + count)]
