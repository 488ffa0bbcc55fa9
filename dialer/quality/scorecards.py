"""Scorecards: per agent, team or campaign over a period.

Calls (that reached an agent), contacts, conversions (sales, appointments),
talk, wrap-up, ready and pause time, abandoned calls while the agent was ready
(a person answered, no agent took them although this one was free: should be
0), how complete dispositions and records are, the average evaluation score
and its trend against the period before, and complaints.

Talk and wrap-up time come from the attempts and dispositions; ready and pause
time from the agent state intervals (:mod:`dialer.quality.statelog`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, TextIO, TypeVar

from sqlalchemy import Select, select

from dialer.quality.tables import AgentStateInterval, Complaint, Evaluation
from dialer.quality.teams import teams, visible_agents
from dialer.store.db import Database
from dialer.store.models import Attempt, Campaign, DispositionRecord

By = Literal["agent", "team", "campaign"]
NO_TEAM = "(no team)"
_Q = TypeVar("_Q", bound=Select[*tuple[Any, ...]])


@dataclass
class Scorecard:
    key: str  # the agent id, team name or campaign name
    calls: int = 0
    contacts: int = 0
    conversions: int = 0
    sales: int = 0
    appointments: int = 0
    dispositions: int = 0
    records_complete: int = 0  # contact dispositions with the customer's name confirmed
    talk_seconds: float = 0.0
    wrap_seconds: float = 0.0
    ready_seconds: float = 0.0
    pause_seconds: float = 0.0
    abandoned_while_ready: int = 0
    complaints: int = 0
    scores: list[float] = field(default_factory=list)
    previous_scores: list[float] = field(default_factory=list)

    @property
    def evaluations(self) -> int:
        return len(self.scores)

    @property
    def avg_score(self) -> float | None:
        return round(sum(self.scores) / len(self.scores), 1) if self.scores else None

    @property
    def score_trend(self) -> float | None:
        """This period's average minus the previous period's; None without both."""
        if not self.scores or not self.previous_scores:
            return None
        before = sum(self.previous_scores) / len(self.previous_scores)
        return round(sum(self.scores) / len(self.scores) - before, 1)

    @property
    def disposition_completeness(self) -> float:
        return min(1.0, self.dispositions / self.calls) if self.calls else 1.0

    @property
    def record_completeness(self) -> float:
        return self.records_complete / self.contacts if self.contacts else 1.0

    def add(self, other: Scorecard) -> None:
        for name in (
            "calls",
            "contacts",
            "conversions",
            "sales",
            "appointments",
            "dispositions",
            "records_complete",
            "talk_seconds",
            "wrap_seconds",
            "ready_seconds",
            "pause_seconds",
            "abandoned_while_ready",
            "complaints",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.scores.extend(other.scores)
        self.previous_scores.extend(other.previous_scores)

    def to_dict(self) -> dict[str, object]:
        return {
            "key": self.key,
            "calls": self.calls,
            "contacts": self.contacts,
            "conversions": self.conversions,
            "sales": self.sales,
            "appointments": self.appointments,
            "talk_seconds": round(self.talk_seconds, 1),
            "wrap_seconds": round(self.wrap_seconds, 1),
            "ready_seconds": round(self.ready_seconds, 1),
            "pause_seconds": round(self.pause_seconds, 1),
            "abandoned_while_ready": self.abandoned_while_ready,
            "disposition_completeness": round(self.disposition_completeness, 3),
            "record_completeness": round(self.record_completeness, 3),
            "evaluations": self.evaluations,
            "avg_score": self.avg_score,
            "score_trend": self.score_trend,
            "complaints": self.complaints,
        }


def _in(when: datetime | None, since: datetime | None, until: datetime | None) -> bool:
    return when is not None and (since is None or when >= since) and (until is None or when < until)


def _name_confirmed(identity: dict[str, object] | None) -> bool:
    return bool(identity and (identity.get("first_name") or identity.get("last_name")))


async def scorecards(
    db: Database,
    *,
    by: By = "agent",
    since: datetime | None = None,
    until: datetime | None = None,
    campaign_id: int | None = None,
    user_id: str | None = None,
    role: str = "admin",
    now: datetime | None = None,
) -> list[Scorecard]:
    """Scorecards grouped ``by`` agent, team or campaign, limited to what ``user_id`` may see."""
    async with db.read_session() as s:
        visible = await visible_agents(s, user_id, role) if user_id is not None else None
        team_of = await teams(s)
        names = {cid: name for cid, name in await s.execute(select(Campaign.id, Campaign.name))}

        def where_period(q: _Q, column: Any) -> _Q:
            if since is not None:
                q = q.where(column >= since)
            if until is not None:
                q = q.where(column < until)
            return q

        attempts_q = where_period(
            select(Attempt.agent_id, Attempt.campaign_id, Attempt.result, Attempt.talk_seconds).where(
                Attempt.agent_id.is_not(None)
            ),
            Attempt.created_at,
        )
        dispositions_q = where_period(
            select(
                DispositionRecord.agent_id,
                DispositionRecord.campaign_id,
                DispositionRecord.code,
                DispositionRecord.contact,
                DispositionRecord.conversion,
                DispositionRecord.identity,
                DispositionRecord.appointment_at,
                DispositionRecord.wrap_seconds,
            ).where(DispositionRecord.agent_id.is_not(None)),
            DispositionRecord.created_at,
        )
        intervals_q = select(
            AgentStateInterval.agent_id,
            AgentStateInterval.state,
            AgentStateInterval.campaigns,
            AgentStateInterval.started_at,
            AgentStateInterval.ended_at,
            AgentStateInterval.seconds,
        )
        if until is not None:
            intervals_q = intervals_q.where(AgentStateInterval.started_at < until)
        if since is not None:
            intervals_q = intervals_q.where(AgentStateInterval.ended_at > since)
        abandoned_q = where_period(
            select(Attempt.campaign_id, Attempt.ended_at).where(
                Attempt.abandoned.is_(True), Attempt.ended_at.is_not(None)
            ),
            Attempt.ended_at,
        )
        # The trend compares with the period of the same length just before (open-ended: up to now).
        end = until or now or datetime.now(UTC)
        previous_since = since - (end - since) if since is not None else None
        evaluations_q = select(
            Evaluation.agent_id,
            Evaluation.campaign_id,
            Evaluation.score,
            Evaluation.call_at,
            Evaluation.created_at,
        ).where(Evaluation.score.is_not(None))
        complaints_q = where_period(select(Complaint.agent_id, Complaint.campaign_id), Complaint.created_at)
        attempts: list[Any] = list(await s.execute(attempts_q))
        dispositions: list[Any] = list(await s.execute(dispositions_q))
        intervals: list[Any] = list(await s.execute(intervals_q))
        abandoned: list[Any] = list(await s.execute(abandoned_q))
        evaluations: list[Any] = list(await s.execute(evaluations_q))
        complaints: list[Any] = list(await s.execute(complaints_q))

    # One card per (agent, campaign) first, then grouped as asked.
    cards: dict[tuple[str, int | None], Scorecard] = {}

    def card(agent: str, cid: int | None) -> Scorecard:
        key = (agent, cid if by == "campaign" else None)
        if key not in cards:
            cards[key] = Scorecard(agent)
        return cards[key]

    def wanted(agent: str | None, cid: int | None) -> bool:
        if agent is None or (visible is not None and agent not in visible):
            return False
        return campaign_id is None or cid is None or cid == campaign_id

    for agent, cid, result, talk in attempts:
        if wanted(agent, cid):
            c = card(agent, cid)
            c.calls += result == "connected"
            c.talk_seconds += talk or 0.0
    for agent, cid, code, contact, conversion, identity, appointment_at, wrap in dispositions:
        if wanted(agent, cid):
            c = card(agent, cid)
            c.dispositions += 1
            c.contacts += bool(contact)
            c.conversions += bool(conversion)
            c.sales += code == "sale"
            c.appointments += appointment_at is not None or code == "appointment_set"
            c.records_complete += bool(contact) and _name_confirmed(identity)
            c.wrap_seconds += wrap or 0.0
    ready: dict[str, list[tuple[datetime, datetime, set[str]]]] = defaultdict(list)
    for agent, state, camps, started, ended, seconds in intervals:
        taken = {x for x in camps.split(",") if x}
        cids: Iterable[int | None] = [int(x) for x in taken if x.isdigit()] if by == "campaign" else [None]
        for cid in cids:
            if not wanted(agent, cid):
                continue
            # Only the part of the interval inside the period counts.
            lo = max(started, since) if since is not None else started
            hi = min(ended, until) if until is not None else ended
            part = max(0.0, (hi - lo).total_seconds()) if (since or until) else seconds
            c = card(agent, cid)
            if state == "paused":
                c.pause_seconds += part
            elif state == "ready":
                c.ready_seconds += part
        if state == "ready":
            ready[agent].append((started, ended, taken))
    for cid, ended in abandoned:
        for agent, spans in ready.items():
            if wanted(agent, cid) and any(a <= ended < b and str(cid) in t for a, b, t in spans):
                card(agent, cid).abandoned_while_ready += 1
    for agent, cid, value, call_at, created_at in evaluations:
        if not wanted(agent, cid):
            continue
        when = call_at or created_at
        if _in(when, since, until) or (since is None and until is None):
            card(agent, cid).scores.append(float(value or 0.0))
        elif previous_since is not None and _in(when, previous_since, since):
            card(agent, cid).previous_scores.append(float(value or 0.0))
    for agent, cid in complaints:
        if wanted(agent, cid):
            card(agent, cid).complaints += 1

    grouped: dict[str, Scorecard] = {}
    for (agent, cid), c in cards.items():
        if by == "agent":
            key = agent
        elif by == "team":
            key = team_of.get(agent, NO_TEAM)
        else:
            key = names.get(cid, str(cid)) if cid is not None else "?"
        if key not in grouped:
            grouped[key] = Scorecard(key)
        grouped[key].add(c)
    return [grouped[k] for k in sorted(grouped)]


SCORECARD_COLUMNS = (
    "agent",
    "calls",
    "contacts",
    "sales",
    "appointments",
    "talk_s",
    "wrap_s",
    "pause_s",
    "abandoned_while_ready",
    "dispositions_complete",
    "records_complete",
    "evaluations",
    "avg_score",
    "score_trend",
    "complaints",
)


def scorecard_rows(cards: Iterable[Scorecard]) -> list[tuple[str, ...]]:
    """Scorecards as text cells, in the order of ``SCORECARD_COLUMNS``."""
    return [
        (
            c.key,
            str(c.calls),
            str(c.contacts),
            str(c.sales),
            str(c.appointments),
            f"{c.talk_seconds:.0f}",
            f"{c.wrap_seconds:.0f}",
            f"{c.pause_seconds:.0f}",
            str(c.abandoned_while_ready),
            f"{c.disposition_completeness:.0%}",
            f"{c.record_completeness:.0%}",
            str(c.evaluations),
            "-" if c.avg_score is None else f"{c.avg_score:.1f}",
            "-" if c.score_trend is None else f"{c.score_trend:+.1f}",
            str(c.complaints),
        )
        for c in cards
    ]


async def print_scorecards(
    db: Database, out: TextIO, *, title: str = "Agent scorecards", time_note: str = "time in seconds"
) -> None:
    """Every agent's scorecard as a table (the demo's final report)."""
    cards = await scorecards(db)
    if not cards:
        return
    rows = [SCORECARD_COLUMNS, *scorecard_rows(cards)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    print(f"{title} ({time_note}; score out of 100)", file=out)
    for row in rows:
        print("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip(), file=out)
