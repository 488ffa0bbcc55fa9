"""A dialer node for the crash test: ``dialer run``'s ``serve`` with simulated agents.

Run as ``python -m tests.runtime.crash_node CONFIG AGENTS CAMPAIGN_ID``; the test
kills it with SIGKILL at random moments and starts it again.
"""

from __future__ import annotations

import asyncio
import logging
import random
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dialer.cli.run import serve
from dialer.domain.agent import AgentState
from dialer.runtime.bootstrap import Runtime
from dialer.runtime.demo_agents import DISPOSITIONS
from dialer.runtime.ports import DispositionDetails
from dialer.settings import load

log = logging.getLogger(__name__)


class AgentBots:
    """Simulated agents: each qualifies its call 1 to 4 seconds into wrap-up."""

    def __init__(self, runtime: Runtime, rng: random.Random) -> None:
        self.runtime = runtime
        self.rng = rng
        self.last_attempt: dict[str, str] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        runtime.agents.listeners.append(self._changed)
        runtime.engine.connected_listeners.append(self._connected)

    def _connected(self, attempt_id: str, agent_id: str) -> None:
        self.last_attempt[agent_id] = attempt_id

    def _changed(
        self, agent_id: str, before: AgentState, after: AgentState, since: float, now: float
    ) -> None:
        if after is AgentState.WRAP_UP:
            attempt = self.last_attempt.get(agent_id)
            if attempt is not None:
                task = asyncio.get_running_loop().create_task(self._qualify(agent_id, attempt))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)

    async def _qualify(self, agent_id: str, attempt_id: str) -> None:
        await asyncio.sleep(self.rng.uniform(1.0, 4.0))
        codes, weights = zip(*DISPOSITIONS, strict=True)
        code = self.rng.choices(codes, weights)[0]
        now = datetime.now(UTC)
        details = DispositionDetails(
            callback_at=now + timedelta(days=1) if code == "callback_requested" else None,
            appointment_at=now + timedelta(days=2) if code == "appointment_set" else None,
            comments="asked for the written offer" if code == "sale" else None,
        )
        if self.runtime.agents.state_of(agent_id) is AgentState.WRAP_UP:
            try:
                await self.runtime.engine.dispose(agent_id, attempt_id, code, details)
            except Exception:
                log.exception("agent %s: disposition %s of attempt %s failed", agent_id, code, attempt_id)


async def log_in_simulated_agents(
    runtime: Runtime, pbx_kind: str, count: int, campaign_id: str, rng: random.Random
) -> AgentBots:
    """Call ``count`` simulated softphones into their bridges and make them ready for the campaign."""
    bots = AgentBots(runtime, rng)
    for i in range(count):
        agent_id = f"{1001 + i}"
        endpoint = f"PJSIP/{agent_id}@agents" if pbx_kind == "asterisk" else f"sofia/agents/{agent_id}@agents"
        await runtime.pbx.login_agent(agent_id, endpoint)
        runtime.agents.login(agent_id, [campaign_id])
        runtime.agents.ready(agent_id)
    return bots


async def main(config: Path, agents: int, campaign_id: str) -> int:
    settings = load(config)

    async def started(runtime: Runtime) -> None:
        await log_in_simulated_agents(runtime, "asterisk", agents, campaign_id, random.Random())

    return await serve(settings, started)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    sys.exit(asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3])))
