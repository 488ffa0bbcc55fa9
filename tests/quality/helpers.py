"""Calls in the record for the quality tests: a lead, an attempt that reached an agent, a disposition."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from dialer.domain.campaign import CampaignSettings, CampaignStatus
from dialer.store.db import Database
from dialer.store.models import User
from tests.store.helpers import add_leads

_numbers = iter(range(10**6))


async def campaign(db: Database, name: str, now: datetime) -> int:
    record = await db.campaigns.create(
        name, CampaignSettings(dial_string="PJSIP/{digits}@trunk", caller_id="+33100000000"), now=now
    )
    await db.campaigns.set_status(record.id, CampaignStatus.RUNNING, now=now)
    return record.id


async def call(
    db: Database,
    campaign_id: int,
    agent: str,
    at: datetime,
    code: str = "not_interested",
    *,
    talk_s: float = 60.0,
    lead_fields: dict[str, Any] | None = None,
    **disposition: Any,
) -> str:
    """A call answered at ``at``, talked ``talk_s`` with ``agent``, qualified ``code`` 30 s later."""
    number = f"+3361{next(_numbers):07d}"
    (lead_id,) = await add_leads(db, campaign_id, [number], at - timedelta(days=1), **(lead_fields or {}))
    attempt_id = await db.attempts.open_attempt(
        lead_id, campaign_id, number, "node-1", at - timedelta(seconds=10)
    )
    await db.attempts.record_event(attempt_id, "connected", at, agent_id=agent)
    ended = at + timedelta(seconds=talk_s)
    await db.attempts.close_attempt(attempt_id, "connected", 16, None, ended, answered=True, agent_id=agent)
    await db.dispositions.record_disposition(
        attempt_id, code, agent, now=ended + timedelta(seconds=30), **disposition
    )
    return attempt_id


async def add_users(db: Database, *user_ids: str) -> None:
    """Users the team tests put in teams (a team names existing users only)."""
    async with db.session() as s, s.begin():
        for user_id in user_ids:
            s.add(User(id=user_id, name=user_id, role="agent", active=True))
