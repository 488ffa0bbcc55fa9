"""The agents' time in each state, kept in the record: one row per stretch in a state.

A listener on the agent registry notes each change (the state left, since when,
until now) and the rows are written in the background, so the registry's
reservation path never waits for the database.  The scorecards read pause and
ready time, and abandoned calls while an agent was ready, from these rows.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from dialer.domain.agent import AgentState
from dialer.quality.tables import AgentStateInterval
from dialer.runtime.agents import AgentRegistry
from dialer.store.db import Database

log = logging.getLogger(__name__)


def _epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


class StateLog:
    """Writes each agent's state intervals; ``to_wall`` turns the registry's clock into UTC times."""

    def __init__(
        self, db: Database, agents: AgentRegistry, to_wall: Callable[[float], datetime] = _epoch
    ) -> None:
        self._db = db
        self._agents = agents
        self._to_wall = to_wall
        self._pending: list[AgentStateInterval] = []
        self._task: asyncio.Task[None] | None = None
        agents.listeners.append(self._changed)

    def _changed(
        self, agent_id: str, before: AgentState, after: AgentState, before_since: float, now: float
    ) -> None:
        if before is AgentState.LOGGED_OUT:
            return
        self._pending.append(
            AgentStateInterval(
                agent_id=agent_id,
                state=before.value,
                campaigns=",".join(sorted(self._agents.campaigns_of(agent_id)))[:400],
                started_at=self._to_wall(before_since),
                ended_at=self._to_wall(now),
                seconds=max(0.0, now - before_since),
            )
        )
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop: the next flush() writes it
        if self._task is None or self._task.done():
            self._task = loop.create_task(self.flush(), name="agent-state-log")

    async def flush(self) -> None:
        """Write the intervals noted so far (a failure is logged; the rows are kept for the next try)."""
        while self._pending:
            rows, self._pending = self._pending, []
            try:
                async with self._db.session() as s, s.begin():
                    s.add_all(rows)
            except Exception as exc:  # the database is down or closed: keep them, never break the caller
                log.warning("agent state intervals not written (%s rows kept): %s", len(rows), exc)
                self._pending[:0] = [
                    AgentStateInterval(
                        agent_id=r.agent_id,
                        state=r.state,
                        campaigns=r.campaigns,
                        started_at=r.started_at,
                        ended_at=r.ended_at,
                        seconds=r.seconds,
                    )
                    for r in rows
                ]
                return
