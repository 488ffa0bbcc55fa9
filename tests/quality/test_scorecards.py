"""Scorecards: figures per agent, team and campaign, time in state from the state log, score trend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dialer.quality import evaluations as ev
from dialer.quality.sampling import calls, iso_week, weekly_sample
from dialer.quality.scorecards import scorecards
from dialer.quality.statelog import StateLog
from dialer.quality.teams import set_team
from dialer.runtime.agents import AgentRegistry
from dialer.store.db import Database
from tests.quality.helpers import add_users, call, campaign
from tests.store.helpers import add_leads

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)  # a Tuesday, ISO week 2026-W49
ALL_YES = {i: "yes" for i in ("brand_and_town", "agent_introduced", "customer_by_name", "budget_asked")}
PERSON = {**ALL_YES, "usage_asked": "yes", "test_drive_offered": "yes"}


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


async def test_time_in_state_and_abandons_while_ready_come_from_the_state_log(db: Database) -> None:
    cid = await campaign(db, "spring", T0)
    clock = Clock()
    agents = AgentRegistry(clock)
    log = StateLog(db, agents, to_wall=lambda t: T0 + timedelta(seconds=t))
    agents.login("agent1", [str(cid)])  # paused from t=0
    clock.t = 100.0
    agents.ready("agent1")  # paused 100 s
    clock.t = 400.0
    agents.pause("agent1")  # ready 300 s
    clock.t = 460.0
    agents.logout("agent1")  # paused 60 s
    await log.flush()
    # A person answered at t=200 and no agent took the call: agent1 was ready.
    (lead_id,) = await add_leads(db, cid, ["+33612000001"], T0)
    attempt = await db.attempts.open_attempt(
        lead_id, cid, "+33612000001", "node-1", T0 + timedelta(seconds=190)
    )
    await db.attempts.close_attempt(
        attempt, "abandoned", 16, None, T0 + timedelta(seconds=200), answered=True
    )
    await call(db, cid, "agent1", T0 + timedelta(seconds=500), "sale", identity={"first_name": "Ann"})
    await call(db, cid, "agent1", T0 + timedelta(seconds=700), "not_interested", talk_s=30.0)

    (card,) = await scorecards(db, since=T0, until=T0 + timedelta(days=1))
    assert card.key == "agent1"
    assert (card.ready_seconds, card.pause_seconds) == (300.0, 160.0)
    assert card.abandoned_while_ready == 1
    assert (card.calls, card.contacts, card.sales, card.conversions) == (2, 2, 1, 1)
    assert card.talk_seconds == 90.0 and card.wrap_seconds == 60.0
    assert card.disposition_completeness == 1.0 and card.record_completeness == 0.5
    # Only the part of an interval inside the period counts.
    (early,) = await scorecards(db, since=T0, until=T0 + timedelta(seconds=200))
    assert (early.ready_seconds, early.pause_seconds) == (100.0, 100.0)


async def test_average_score_its_trend_and_grouping_by_team_and_campaign(db: Database) -> None:
    spring = await campaign(db, "spring", T0)
    autumn = await campaign(db, "autumn", T0)
    week_before = T0 - timedelta(days=7)
    old = await call(db, spring, "agent1", week_before)
    now_a = await call(db, spring, "agent1", T0)
    now_b = await call(db, autumn, "agent2", T0)
    low = {**PERSON, "budget_asked": "no", "usage_asked": "no"}
    await ev.evaluate(db, "sup", "supervisor", old, "phone_contact", ev.answers_from(low), T0)
    await ev.evaluate(db, "sup", "supervisor", now_a, "phone_contact", ev.answers_from(PERSON), T0)
    await ev.evaluate(db, "sup", "supervisor", now_b, "phone_contact", ev.answers_from(low), T0)
    await add_users(db, "agent1", "agent2", "supn")
    async with db.session() as s, s.begin():
        await set_team(s, "agent1", "north")
        await set_team(s, "agent2", "north")
        await set_team(s, "supn", "north")

    week = iso_week("2026-W49")
    by_agent = {c.key: c for c in await scorecards(db, since=week[0], until=week[1])}
    a1 = by_agent["agent1"]
    assert a1.evaluations == 1 and a1.avg_score is not None and a1.score_trend is not None
    assert a1.score_trend > 0  # better than the week before
    assert by_agent["agent2"].score_trend is None  # nothing the week before
    open_ended = await scorecards(db, since=T0 - timedelta(days=3), now=T0 + timedelta(days=1))
    (open_ended,) = [c for c in open_ended if c.key == "agent1"]
    assert open_ended.score_trend == a1.score_trend  # up to now: the week before is in the period before
    (team,) = await scorecards(db, by="team", since=week[0], until=week[1])
    assert team.key == "north" and team.calls == 2 and team.evaluations == 2
    campaigns = {c.key: c.calls for c in await scorecards(db, by="campaign", since=week[0], until=week[1])}
    assert campaigns == {"autumn": 1, "spring": 1}
    # An agent's own card only.
    assert [c.key for c in await scorecards(db, user_id="agent2", role="agent")] == ["agent2"]


async def test_the_weekly_sample_is_seeded_per_agent_and_week(db: Database) -> None:
    cid = await campaign(db, "spring", T0)
    for n in range(6):
        await call(db, cid, "agent1", T0 + timedelta(minutes=n))
        await call(db, cid, "agent2", T0 + timedelta(minutes=n))
    await call(db, cid, "agent1", T0 + timedelta(days=7))  # next week: not a candidate
    first = await weekly_sample(db, "sup", "supervisor", "2026-W49", 3, seed=1)
    again = await weekly_sample(db, "sup", "supervisor", "2026-W49", 3, seed=1)
    other = await weekly_sample(db, "sup", "supervisor", "2026-W49", 3, seed=2)
    assert [c.attempt_id for c in first] == [c.attempt_id for c in again]
    assert sorted(c.agent_id for c in first) == ["agent1"] * 3 + ["agent2"] * 3
    assert {c.attempt_id for c in first} != {c.attempt_id for c in other}
    assert all(c.at < T0 + timedelta(days=6) for c in first)
    mine = await calls(db, "agent1", "agent")
    assert {c.agent_id for c in mine} == {"agent1"}


async def test_the_state_log_keeps_its_rows_when_the_database_is_away(db: Database) -> None:
    clock = Clock()
    agents = AgentRegistry(clock)
    closed = Database(db.url)  # never connected: every write fails
    log = StateLog(closed, agents, to_wall=lambda t: T0 + timedelta(seconds=t))
    agents.login("agent1", ["1"])
    clock.t = 10.0
    agents.ready("agent1")  # the registry goes on: nothing is raised to it
    await log.flush()
    log._db = db  # the database is back
    await log.flush()
    (card,) = await scorecards(db)
    assert card.pause_seconds == 10.0
