"""Whose calls a signed-in user may see: the one rule the recordings, monitoring and quality pages share.

* an admin sees every agent;
* a supervisor with a team (``user_teams``) sees the agents of that team only;
  a supervisor with no team sees every agent;
* an agent sees only their own calls.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from dialer.recordings.tables import UserTeam
from dialer.service.accounts import Principal
from dialer.store.db import Database
from dialer.store.repositories import Role


@dataclass(frozen=True, slots=True)
class Scope:
    """The agents a user may see: ``agents`` None means all of them."""

    agents: frozenset[str] | None

    def allows(self, agent_id: str | None) -> bool:
        if self.agents is None:
            return True
        return agent_id is not None and agent_id in self.agents


async def team_of(db: Database, user_id: str) -> str | None:
    async with db.session() as s:
        query = select(UserTeam.team).where(UserTeam.user_id == user_id)
        return (await s.execute(query)).scalar_one_or_none()


async def set_team(db: Database, user_id: str, team: str | None) -> None:
    """Put ``user_id`` in ``team`` (None: in no team)."""
    async with db.session() as s, s.begin():
        row = await s.get(UserTeam, user_id)
        if team is None:
            if row is not None:
                await s.delete(row)
        elif row is None:
            s.add(UserTeam(user_id=user_id, team=team))
        else:
            row.team = team


async def scope_of(db: Database, who: Principal) -> Scope:
    if who.role is Role.ADMIN:
        return Scope(None)
    if who.role is Role.AGENT:
        return Scope(frozenset({who.user_id}))
    team = await team_of(db, who.user_id)
    if team is None:
        return Scope(None)
    async with db.session() as s:
        members = (await s.execute(select(UserTeam.user_id).where(UserTeam.team == team))).scalars().all()
    return Scope(frozenset(members))


async def can_see(db: Database, who: Principal, agent_id: str | None) -> bool:
    """Whether ``who`` may see the calls (recordings, live call) of agent ``agent_id``."""
    return (await scope_of(db, who)).allows(agent_id)
