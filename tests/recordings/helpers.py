"""Recorded calls in a fresh database: users, a campaign, attempts with their WAV files."""

from __future__ import annotations

import wave
from datetime import datetime, timedelta
from pathlib import Path

from dialer.service.accounts import Accounts, Principal
from dialer.store.db import Database
from dialer.store.repositories import CampaignRecord, Role
from tests.store.helpers import add_leads, fr_numbers

PRINCIPAL_EXPIRY = datetime(2100, 1, 1)


def write_wav(path: Path, seconds: float) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\x00\x00" * round(seconds * 8000))


def principal(user_id: str, role: Role) -> Principal:
    return Principal(user_id, user_id, role, "digest", PRINCIPAL_EXPIRY)


async def add_users(db: Database, *users: tuple[str, Role]) -> None:
    accounts = Accounts(db)
    for user_id, role in users:
        await accounts.add_user(user_id, user_id, role, None, actor="test")


async def recorded_calls(
    db: Database,
    campaign: CampaignRecord,
    directory: Path,
    calls: list[tuple[str, datetime, float]],
) -> list[str]:
    """One connected, closed attempt per (agent, end time, seconds), recorded to <attempt>.wav."""
    start = min(end for _, end, _ in calls) - timedelta(hours=1)
    await add_leads(db, campaign.id, fr_numbers(len(calls)), start)
    leads = await db.hopper.claim_leads(campaign.id, len(calls), start, "node-a")
    ids = []
    for lead, (agent, end, seconds) in zip(leads, calls, strict=True):
        attempt = await db.attempts.open_attempt(lead.lead_id, campaign.id, lead.number, "node-a", start)
        connected = end - timedelta(seconds=seconds)
        await db.attempts.record_event(attempt, "answered", connected, agent_id=agent)
        await db.attempts.record_event(attempt, "connected", connected, recording_file=f"{attempt}.wav")
        await db.attempts.close_attempt(attempt, "connected", 16, None, end, answered=True, agent_id=agent)
        write_wav(directory / f"{attempt}.wav", seconds)
        ids.append(attempt)
    return ids
