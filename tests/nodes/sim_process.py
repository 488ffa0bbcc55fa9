"""The FreeSWITCH simulator in a process of its own, serving several dialer nodes over the Event Socket.

    python tests/nodes/sim_process.py --log originates.jsonl

prints one JSON line ``{"port": N}`` once it listens, writes one JSON line per
originate it receives to ``--log`` (time, origination uuid, dial string: the
attempt id and the number dialed, for counting dials per lead), and serves
until SIGTERM.  Customers are busy after 1 to 3 s; agents' softphones (four
digits) answer at once.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from telephony.sim.freeswitch import FreeSwitchSimulator
from telephony.sim.model import CalleeKind, CalleePlan, WithAgentPhones

PASSWORD = "nodes"


@dataclass
class BusyCustomers:
    seed: int = 1

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def plan(self, number: str) -> CalleePlan:
        return CalleePlan(CalleeKind.BUSY, self._rng.uniform(1.0, 3.0))


class LoggingSimulator(FreeSwitchSimulator):
    """Writes each originate as it arrives (the file outlives a test's asserts on the process)."""

    def __init__(self, log: TextIO, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.log = log

    def _record_originate(self, arg: str) -> None:
        super()._record_originate(arg)
        dial = arg.split("}", 1)[-1].strip().split(" ", 1)[0]
        line = {"at": time.time(), "uuid": self.originates_received[-1], "dial": dial}
        self.log.write(json.dumps(line) + "\n")
        self.log.flush()


async def serve(log_path: Path, seed: int) -> None:
    with log_path.open("a", encoding="utf-8") as log:
        sim = LoggingSimulator(log, model=WithAgentPhones(BusyCustomers(seed)), password=PASSWORD)
        await sim.start()
        print(json.dumps({"port": sim.port}), flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        await stop.wait()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(sim.stop(), 5.0)


def main() -> None:
    parser = argparse.ArgumentParser(description="the FreeSWITCH simulator as a server for several nodes")
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    asyncio.run(serve(args.log, args.seed))


if __name__ == "__main__":
    main()
