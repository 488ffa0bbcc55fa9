"""Report queries: what campaigns and agents did over a period.

Figures are computed by the database (GROUP BY), so a report over millions of
attempts does not load them.  The abandonment rate is abandoned calls over
calls answered by a person (answering machines excluded), as the regulators
define it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Select, case, func, select
from sqlalchemy.sql.elements import ColumnElement

from dialer.domain.campaign import PERSON_RESULTS
from dialer.store.models import Attempt, Campaign, DispositionRecord

if TYPE_CHECKING:
    from dialer.store.db import Database


@dataclass(frozen=True, slots=True)
class CampaignReport:
    campaign_id: int
    campaign: str
    attempts: int
    answered: int
    person_answered: int
    machines: int
    contacts: int  # calls that reached an agent
    abandoned: int
    talk_seconds: float
    dispositions: int
    wrap_seconds: float
    conversions: int
    outcomes: dict[str, int] = field(default_factory=dict)

    @property
    def abandon_rate(self) -> float:
        return self.abandoned / self.person_answered if self.person_answered else 0.0

    @property
    def avg_talk_seconds(self) -> float:
        return self.talk_seconds / self.contacts if self.contacts else 0.0

    @property
    def avg_wrap_seconds(self) -> float:
        return self.wrap_seconds / self.dispositions if self.dispositions else 0.0

    @property
    def conversion_rate(self) -> float:
        return self.conversions / self.contacts if self.contacts else 0.0


@dataclass(frozen=True, slots=True)
class AgentReport:
    agent_id: str
    calls: int  # calls that reached this agent
    talk_seconds: float
    dispositions: int
    wrap_seconds: float
    conversions: int
    codes: dict[str, int] = field(default_factory=dict)

    @property
    def avg_talk_seconds(self) -> float:
        return self.talk_seconds / self.calls if self.calls else 0.0

    @property
    def avg_wrap_seconds(self) -> float:
        return self.wrap_seconds / self.dispositions if self.dispositions else 0.0


_Q = TypeVar("_Q", bound=Select[*tuple[Any, ...]])


def _count_if(condition: ColumnElement[bool]) -> ColumnElement[Any]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _period(
    query: _Q,
    column: Any,
    since: datetime | None,
    until: datetime | None,
    campaign_id: int | None,
    campaign_column: Any,
) -> _Q:
    if since is not None:
        query = query.where(column >= since)
    if until is not None:
        query = query.where(column < until)
    if campaign_id is not None:
        query = query.where(campaign_column == campaign_id)
    return query


class ReportRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def campaign_report(
        self, since: datetime | None = None, until: datetime | None = None, campaign_id: int | None = None
    ) -> list[CampaignReport]:
        """One line per campaign with attempts in ``[since, until)`` (by attempt creation time)."""
        answered = Attempt.outcome == "answered"
        # From the call's one result (a call abandoned before detection decided stays a person).
        person = Attempt.result.in_([r.value for r in PERSON_RESULTS])
        attempts_q = _period(
            select(
                Attempt.campaign_id,
                func.count(),
                _count_if(answered),
                _count_if(person),
                _count_if(Attempt.result == "machine"),
                _count_if(Attempt.result == "connected"),
                _count_if(Attempt.abandoned.is_(True)),
                func.coalesce(func.sum(Attempt.talk_seconds), 0.0),
            ).group_by(Attempt.campaign_id),
            Attempt.created_at,
            since,
            until,
            campaign_id,
            Attempt.campaign_id,
        )
        outcomes_q = _period(
            select(Attempt.campaign_id, Attempt.outcome, func.count()).group_by(
                Attempt.campaign_id, Attempt.outcome
            ),
            Attempt.created_at,
            since,
            until,
            campaign_id,
            Attempt.campaign_id,
        )
        dispositions_q = _period(
            select(
                DispositionRecord.campaign_id,
                func.count(),
                func.coalesce(func.sum(DispositionRecord.wrap_seconds), 0.0),
                _count_if(DispositionRecord.conversion.is_(True)),
            ).group_by(DispositionRecord.campaign_id),
            DispositionRecord.created_at,
            since,
            until,
            campaign_id,
            DispositionRecord.campaign_id,
        )
        async with self._db.read_session() as s:
            names = {cid: name for cid, name in (await s.execute(select(Campaign.id, Campaign.name)))}
            attempts = {row[0]: row[1:] for row in (await s.execute(attempts_q))}
            outcomes: dict[int, dict[str, int]] = defaultdict(dict)
            for cid, outcome, n in await s.execute(outcomes_q):
                outcomes[cid][outcome or "open"] = int(n)  # no outcome yet: the call is in progress
            dispositions = {row[0]: row[1:] for row in (await s.execute(dispositions_q))}
        reports = []
        for cid in sorted(set(attempts) | set(dispositions)):
            a = attempts.get(cid, (0, 0, 0, 0, 0, 0, 0.0))
            d = dispositions.get(cid, (0, 0.0, 0))
            reports.append(
                CampaignReport(
                    campaign_id=cid,
                    campaign=names.get(cid, str(cid)),
                    attempts=int(a[0]),
                    answered=int(a[1]),
                    person_answered=int(a[2]),
                    machines=int(a[3]),
                    contacts=int(a[4]),
                    abandoned=int(a[5]),
                    talk_seconds=float(a[6]),
                    dispositions=int(d[0]),
                    wrap_seconds=float(d[1]),
                    conversions=int(d[2]),
                    outcomes=dict(sorted(outcomes.get(cid, {}).items())),
                )
            )
        return reports

    async def agent_report(
        self, since: datetime | None = None, until: datetime | None = None, campaign_id: int | None = None
    ) -> list[AgentReport]:
        """One line per agent: calls taken, talk and wrap-up time, dispositions by code, conversions."""
        calls_q = _period(
            select(
                Attempt.agent_id,
                _count_if(Attempt.result == "connected"),
                func.coalesce(func.sum(Attempt.talk_seconds), 0.0),
            )
            .where(Attempt.agent_id.is_not(None))
            .group_by(Attempt.agent_id),
            Attempt.created_at,
            since,
            until,
            campaign_id,
            Attempt.campaign_id,
        )
        codes_q = _period(
            select(
                DispositionRecord.agent_id,
                DispositionRecord.code,
                func.count(),
                func.coalesce(func.sum(DispositionRecord.wrap_seconds), 0.0),
                _count_if(DispositionRecord.conversion.is_(True)),
            )
            .where(DispositionRecord.agent_id.is_not(None))
            .group_by(DispositionRecord.agent_id, DispositionRecord.code),
            DispositionRecord.created_at,
            since,
            until,
            campaign_id,
            DispositionRecord.campaign_id,
        )
        async with self._db.read_session() as s:
            calls = {row[0]: row[1:] for row in (await s.execute(calls_q))}
            codes: dict[str, dict[str, int]] = defaultdict(dict)
            wrap: dict[str, float] = defaultdict(float)
            conversions: dict[str, int] = defaultdict(int)
            for agent, code, n, wrap_s, conv in await s.execute(codes_q):
                codes[agent][code] = int(n)
                wrap[agent] += float(wrap_s)
                conversions[agent] += int(conv)
        reports = []
        for agent in sorted(set(calls) | set(codes)):
            n_calls, talk = calls.get(agent, (0, 0.0))
            reports.append(
                AgentReport(
                    agent_id=agent,
                    calls=int(n_calls),
                    talk_seconds=float(talk),
                    dispositions=sum(codes[agent].values()),
                    wrap_seconds=wrap[agent],
                    conversions=conversions[agent],
                    codes=dict(sorted(codes[agent].items())),
                )
            )
        return reports
