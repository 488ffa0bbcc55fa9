"""A PBX simulator in a process of its own, for the benchmarks that measure the dialer's own cost.

    proc = await SimProcess.start("asterisk", fastagi_port=4573, model="scale", seed=1)
    ... proc.ami_port ...           # point an AsteriskPbx at it
    proc.cpu_seconds()              # the simulator's CPU time so far (from /proc)
    await proc.stop()

The child prints one JSON line with its listening port once it is up, then serves
until it receives SIGTERM.  Run alone: ``python bench/simproc.py --fastagi-port N``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from telephony.sim.asterisk import AsteriskSimulator
from telephony.sim.model import CalleeKind, CalleePlan, WithAgentPhones

SECRET = "bench"
_SELF = str(Path(__file__).resolve())
_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class ShiftCallee:
    """Callees of an outbound campaign: most ring out unanswered, some are busy, some people answer."""

    seed: int = 1
    person: float = 0.10
    busy: float = 0.05
    machine: float = 0.0
    ring: tuple[float, float] = (2.0, 4.0)
    talk: tuple[float, float] = (10.0, 20.0)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def plan(self, number: str) -> CalleePlan:
        draw = self._rng.random()
        if draw < self.person:
            return CalleePlan(CalleeKind.PERSON, self._rng.uniform(*self.ring), self._rng.uniform(*self.talk))
        if draw < self.person + self.busy:
            return CalleePlan(CalleeKind.BUSY, self._rng.uniform(0.5, 2.0))
        if draw < self.person + self.busy + self.machine:
            return CalleePlan(CalleeKind.MACHINE, self._rng.uniform(*self.ring), 8.0)
        return CalleePlan(CalleeKind.NO_ANSWER, 3600.0)  # rings until the originate's timeout


class SimProcess:
    """The parent's handle on a simulator child."""

    def __init__(self, proc: asyncio.subprocess.Process, ami_port: int) -> None:
        self.proc = proc
        self.ami_port = ami_port

    @classmethod
    async def start(
        cls,
        fastagi_port: int,
        *,
        seed: int = 1,
        time_scale: float = 1.0,
        person: float = 0.10,
        busy: float = 0.05,
        machine: float = 0.0,
        talk: tuple[float, float] = (10.0, 20.0),
    ) -> SimProcess:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            _SELF,
            "--fastagi-port",
            str(fastagi_port),
            "--seed",
            str(seed),
            "--time-scale",
            str(time_scale),
            "--person",
            str(person),
            "--busy",
            str(busy),
            "--machine",
            str(machine),
            "--talk",
            f"{talk[0]}:{talk[1]}",
            stdout=asyncio.subprocess.PIPE,
        )
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 30.0)
        if not line:
            raise RuntimeError("the simulator process exited before listening")
        return cls(proc, int(json.loads(line)["ami_port"]))

    def cpu_seconds(self) -> float:
        """User + system CPU of the child so far."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / _TICKS

    def rss_bytes(self) -> int:
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            pass
        return 0

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 10.0)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


async def _serve(args: argparse.Namespace) -> None:
    low, _, high = args.talk.partition(":")
    model = WithAgentPhones(
        ShiftCallee(
            seed=args.seed,
            person=args.person,
            busy=args.busy,
            machine=args.machine,
            talk=(float(low), float(high or low)),
        )
    )
    sim = AsteriskSimulator(
        model, shape="sip", time_scale=args.time_scale, secret=SECRET, fastagi_port=args.fastagi_port
    )
    await sim.start()
    print(json.dumps({"ami_port": sim.port}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    await stop.wait()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(sim.stop(), 5.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fastagi-port", type=int, required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--time-scale", type=float, default=1.0)
    ap.add_argument("--person", type=float, default=0.10)
    ap.add_argument("--busy", type=float, default=0.05)
    ap.add_argument("--machine", type=float, default=0.0)
    ap.add_argument("--talk", default="10:20", help="talk time range in PBX seconds, LOW:HIGH")
    asyncio.run(_serve(ap.parse_args()))


if __name__ == "__main__":
    main()
