"""Which calls to evaluate: a random sample per agent per ISO week, or the calls matching a filter.

The sample is seeded by the seed, the week and the agent: the same request
picks the same calls (a supervisor who reloads the page sees the same list),
and a new week or another seed picks others.  Only calls that reached an agent
are candidates; calls already evaluated are marked.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import select

from dialer.quality.tables import Evaluation
from dialer.quality.teams import visible_agents
from dialer.store.db import Database
from dialer.store.models import Attempt, Campaign, DispositionRecord


@dataclass(frozen=True, slots=True)
class Candidate:
    attempt_id: str
    agent_id: str
    campaign_id: int
    campaign: str
    at: datetime
    talk_seconds: float | None
    code: str | None
    evaluated: bool
    recording: str | None


def iso_week(text: str) -> tuple[datetime, datetime]:
    """'2026-W49' -> [Monday 00:00 UTC, next Monday)."""
    try:
        year, week = text.upper().split("-W")
        monday = date.fromisocalendar(int(year), int(week), 1)
    except ValueError:
        raise ValueError(f"week {text!r}: write it as YYYY-Www, e.g. 2026-W49") from None
    start = datetime.combine(monday, time(), UTC)
    return start, start + timedelta(days=7)


def week_of(when: datetime) -> str:
    year, week, _ = when.isocalendar()
    return f"{year}-W{week:02d}"


async def calls(
    db: Database,
    user_id: str,
    role: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    agent_id: str | None = None,
    campaign_id: int | None = None,
    code: str | None = None,
    min_talk_s: float | None = None,
    limit: int = 500,
) -> list[Candidate]:
    """Calls that reached an agent this user may see, newest first, by filter."""
    q = (
        select(Attempt, Campaign.name, DispositionRecord.code)
        .join(Campaign, Campaign.id == Attempt.campaign_id)
        .outerjoin(DispositionRecord, DispositionRecord.attempt_id == Attempt.id)
        .where(Attempt.agent_id.is_not(None), Attempt.connected_at.is_not(None))
        .order_by(Attempt.connected_at.desc())
        .limit(limit)
    )
    if since is not None:
        q = q.where(Attempt.connected_at >= since)
    if until is not None:
        q = q.where(Attempt.connected_at < until)
    if agent_id is not None:
        q = q.where(Attempt.agent_id == agent_id)
    if campaign_id is not None:
        q = q.where(Attempt.campaign_id == campaign_id)
    if code is not None:
        q = q.where(DispositionRecord.code == code)
    if min_talk_s is not None:
        q = q.where(Attempt.talk_seconds >= min_talk_s)
    async with db.read_session() as s:
        visible = await visible_agents(s, user_id, role)
        if visible is not None:
            q = q.where(Attempt.agent_id.in_(sorted(visible)))
        rows = list(await s.execute(q))
        ids = [a.id for a, _, _ in rows]
        evaluated = (
            set(
                (
                    await s.execute(select(Evaluation.attempt_id).where(Evaluation.attempt_id.in_(ids)))
                ).scalars()
            )
            if ids
            else set()
        )
    out = []
    for attempt, name, disposition in rows:
        recording = getattr(attempt, "recording", None) or attempt.recording_file
        out.append(
            Candidate(
                attempt.id,
                attempt.agent_id or "",
                attempt.campaign_id,
                name,
                attempt.connected_at or attempt.created_at,
                attempt.talk_seconds,
                disposition,
                attempt.id in evaluated,
                str(recording) if recording else None,
            )
        )
    return out


async def weekly_sample(
    db: Database,
    user_id: str,
    role: str,
    week: str,
    per_agent: int,
    *,
    seed: int = 0,
    campaign_id: int | None = None,
) -> list[Candidate]:
    """``per_agent`` calls drawn at random for each agent in the ISO week, the same for the same seed."""
    if not 1 <= per_agent <= 100:
        raise ValueError(f"per agent {per_agent}: ask for 1 to 100 calls")
    start, end = iso_week(week)
    found = await calls(db, user_id, role, since=start, until=end, campaign_id=campaign_id, limit=100_000)
    by_agent: dict[str, list[Candidate]] = defaultdict(list)
    for c in found:
        by_agent[c.agent_id].append(c)
    picked: list[Candidate] = []
    for agent in sorted(by_agent):
        pool = sorted(by_agent[agent], key=lambda c: c.attempt_id)
        rng = random.Random(f"{seed}:{week}:{agent}")
        picked.extend(sorted(rng.sample(pool, min(per_agent, len(pool))), key=lambda c: c.at))
    return picked
