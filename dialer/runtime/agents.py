"""The agent registry: who is logged in, who is free, and the atomic reservation of a free agent.

An answered person must reach an agent within two seconds.  ``reserve``
hands out the agent that has waited longest (fairness), and
``wait_and_reserve`` waits for one to free up until a deadline.  All state
changes go through the agent state machine (``dialer.domain.agent``); a
refused transition is logged and counted, never swallowed.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from dialer.domain.agent import Agent, AgentInput, AgentState, InvalidAgentTransition

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AgentView:
    agent_id: str
    state: AgentState
    since: float
    campaigns: frozenset[str]


class AgentRegistry:
    """In-process agent state for one node.  ``clock`` gives monotonic seconds."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._agents: dict[str, Agent] = {}
        self._campaigns: dict[str, frozenset[str]] = {}
        self._legs: dict[str, str] = {}  # agent -> the phone leg it logged in with, when known
        # Replaced on every change: waiters hold the current one, a change sets it.
        self._changed = asyncio.Event()
        self.refused: Counter[str] = Counter()  # refused transitions by input, for metrics
        # Called as listener(agent_id, before, after, before_since, now) on every change.
        self.listeners: list[Callable[[str, AgentState, AgentState, float, float], None]] = []

    # -- state changes -------------------------------------------------------

    def _apply(self, agent_id: str, event: AgentInput) -> bool:
        agent = self._agents.get(agent_id)
        if agent is None:
            self.refused[event.value] += 1
            log.warning("agent %s: %s refused: the agent is not logged in", agent_id, event.value)
            return False
        before, before_since, now = agent.state, agent.since, self._clock()
        try:
            changed = agent.apply(event, now)
        except InvalidAgentTransition as exc:
            self.refused[event.value] += 1
            log.warning("%s", exc)
            return False
        if changed:
            for listener in self.listeners:
                listener(agent_id, before, agent.state, before_since, now)
            self._notify()
        return changed

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def login(self, agent_id: str, campaigns: Iterable[str], leg_id: str | None = None) -> None:
        agent = self._agents.get(agent_id)
        if agent is None:
            agent = self._agents[agent_id] = Agent(agent_id, since=self._clock())
        self._campaigns[agent_id] = frozenset(campaigns)
        if leg_id is not None:
            self._legs[agent_id] = leg_id
        self._apply(agent_id, AgentInput.LOGIN)

    def logout(self, agent_id: str) -> bool:
        changed = self._apply(agent_id, AgentInput.LOGOUT)
        self._forget_if_out(agent_id)
        return changed

    def attach_leg(self, agent_id: str, leg_id: str) -> None:
        """The agent's phone leg, learnt after the login (the agent dialed in later)."""
        if agent_id in self._agents:
            self._legs[agent_id] = leg_id

    def _forget_if_out(self, agent_id: str) -> None:
        agent = self._agents.get(agent_id)
        if agent is not None and agent.state is AgentState.LOGGED_OUT:
            del self._agents[agent_id]
            self._campaigns.pop(agent_id, None)
            self._legs.pop(agent_id, None)

    def leg_lost(self, agent_id: str, leg_id: str) -> bool:
        """The agent's phone leg hung up: out of dialing now (after the wrap-up if on a call).

        True when the leg was this agent's.  A leg that is not the one the
        agent logged in with (an old, stale leg being cleared) changes nothing.
        """
        current = self._legs.get(agent_id)
        if agent_id not in self._agents or (current is not None and current != leg_id):
            return False
        self._apply(agent_id, AgentInput.LEG_LOST)
        self._forget_if_out(agent_id)
        return True

    def seat_fault(self, agent_id: str) -> bool:
        """The agent's bridge refused a customer: paused until the seat is checked."""
        return self._apply(agent_id, AgentInput.SEAT_FAULT)

    def ready(self, agent_id: str) -> bool:
        return self._apply(agent_id, AgentInput.READY)

    def pause(self, agent_id: str) -> bool:
        return self._apply(agent_id, AgentInput.PAUSE)

    def release(self, agent_id: str) -> bool:
        return self._apply(agent_id, AgentInput.RELEASE)

    def connected(self, agent_id: str) -> bool:
        return self._apply(agent_id, AgentInput.CONNECT)

    def call_ended(self, agent_id: str) -> bool:
        return self._apply(agent_id, AgentInput.CALL_ENDED)

    def disposed(self, agent_id: str) -> bool:
        changed = self._apply(agent_id, AgentInput.DISPOSE)
        self._forget_if_out(agent_id)
        return changed

    # -- reservation ----------------------------------------------------------

    def reserve(self, campaign_id: str) -> str | None:
        """Reserve the longest-waiting READY agent of the campaign, or None.

        Atomic within the event loop: there is no await between the choice
        and the state change.
        """
        best: Agent | None = None
        for agent in self._agents.values():
            if (
                agent.state is AgentState.READY
                and campaign_id in self._campaigns.get(agent.agent_id, ())
                and (best is None or agent.since < best.since)
            ):
                best = agent
        if best is None:
            return None
        self._apply(best.agent_id, AgentInput.RESERVE)
        return best.agent_id

    def reserve_agent(self, agent_id: str, campaign_id: str) -> bool:
        """Reserve this one agent if READY for the campaign (a callback booked for them)."""
        agent = self._agents.get(agent_id)
        if (
            agent is None
            or agent.state is not AgentState.READY
            or campaign_id not in self._campaigns.get(agent_id, ())
        ):
            return False
        return self._apply(agent_id, AgentInput.RESERVE)

    async def wait_and_reserve(self, campaign_id: str, timeout_s: float) -> str | None:
        """Reserve an agent, waiting up to ``timeout_s`` for one to become READY."""
        agent_id = self.reserve(campaign_id)
        if agent_id is not None or timeout_s <= 0:
            return agent_id
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                return self.reserve(campaign_id)
            agent_id = self.reserve(campaign_id)
            if agent_id is not None:
                return agent_id

    # -- views for the pacer and the API -----------------------------------------

    def view(self, campaign_id: str | None = None) -> list[AgentView]:
        return [
            AgentView(a.agent_id, a.state, a.since, self._campaigns.get(a.agent_id, frozenset()))
            for a in self._agents.values()
            if campaign_id is None or campaign_id in self._campaigns.get(a.agent_id, ())
        ]

    def campaigns_of(self, agent_id: str) -> frozenset[str]:
        return self._campaigns.get(agent_id, frozenset())

    def state_of(self, agent_id: str) -> AgentState | None:
        agent = self._agents.get(agent_id)
        return None if agent is None else agent.state
