"""A dialer node for the crash test: ``dialer run``'s ``serve`` with simulated agents.

Run as ``python -m tests.runtime.crash_node CONFIG AGENTS CAMPAIGN_ID``; the test
kills it with SIGKILL at random moments and starts it again.
"""

from __future__ import annotations

import asyncio
import logging
import random
import sys
from pathlib import Path

from dialer.cli.run import serve
from dialer.runtime.bootstrap import Runtime
from dialer.runtime.demo import log_in_simulated_agents
from dialer.settings import load


async def main(config: Path, agents: int, campaign_id: str) -> int:
    settings = load(config)

    async def started(runtime: Runtime) -> None:
        await log_in_simulated_agents(runtime, "asterisk", agents, campaign_id, random.Random())

    return await serve(settings, started)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    sys.exit(asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3])))
