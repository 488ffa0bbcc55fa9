"""Teams and who may see whose quality figures.

An agent sees only their own evaluations and scorecard.  An admin sees everyone.
A supervisor sees everyone, unless teams are configured and they belong to one:
then they see the members of their team only.  Membership is the ``user_teams``
table (one team per user), the same rule as dialer.service.visibility, here inside
a use case's own session.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.recordings.tables import UserTeam
from dialer.service import NotFound
from dialer.store.models import User


async def team_of(s: AsyncSession, user_id: str) -> str | None:
    row = await s.get(UserTeam, user_id)
    return None if row is None else row.team


async def members(s: AsyncSession, team: str) -> set[str]:
    return set((await s.execute(select(UserTeam.user_id).where(UserTeam.team == team))).scalars())


async def teams(s: AsyncSession) -> dict[str, str]:
    """user -> team, for every user in a team."""
    return {u: t for u, t in await s.execute(select(UserTeam.user_id, UserTeam.team))}


async def set_team(s: AsyncSession, user_id: str, team: str | None) -> None:
    """Put ``user_id`` in ``team`` (None: in no team); NotFound when there is no such user."""
    if await s.get(User, user_id) is None:
        raise NotFound(f"there is no user {user_id!r}: add them first (`dialer user add {user_id}`)")
    await s.execute(delete(UserTeam).where(UserTeam.user_id == user_id))
    if team:
        s.add(UserTeam(user_id=user_id, team=team))


async def visible_agents(s: AsyncSession, user_id: str, role: str) -> set[str] | None:
    """The agents whose quality figures ``user_id`` may see; None for everyone."""
    if role == "admin":
        return None
    if role != "supervisor":
        return {user_id}
    team = await team_of(s, user_id)
    return None if team is None else await members(s, team)


def allowed(visible: set[str] | None, agent_ids: Iterable[str | None]) -> bool:
    return visible is None or all(a in visible for a in agent_ids if a is not None)
