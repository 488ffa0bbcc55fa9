"""An 8-hour shift of 50 agents at accelerated time: memory and open descriptors, start to end.

The node as it runs in production, in this process: the record on SQLite (a fresh file), the
compliance gate with its profile, the engine, the agent registry, the desk's use cases and the
outbox relay; the PBX is the Asterisk simulator in a process of its own (bench/simproc.py) over real
TCP (AMI + FastAGI), so its memory is not counted as the dialer's.  The simulator runs ``--time-scale``
PBX seconds per real second (x30: the 8-hour shift takes 16 minutes); the callees are an outbound mix
(30 % people talking 1 to 3 minutes, machines, busy lines, no answer); 50 agents log in through the
desk with their simulated phones, go ready and qualify each call a few PBX seconds into wrap-up.

Printed: resident memory (after a garbage collection) and open file descriptors at the start (agents
seated, before the first dial), after the warm-up (the first eighth of the shift), every two hours,
and at the end of the shift; PBX events handled, calls and dispositions, and the growth after the
warm-up.  The warm-up and end samples are taken at rest (dialing paused until every call has ended
and every disposition landed, then resumed; the pause does not count as shift time), so that calls
in progress (a FastAGI socket each, their buffers) do not pass for growth or for a leak.
Targets: under 10 % memory growth after warm-up, no descriptor leak (the end holds no more than
after warm-up), every call one outcome.

    .venv/bin/python bench/soak.py [--quick] [--hours H] [--agents N] [--time-scale X]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import gc
import logging
import os
import random
import socket
import sys
import tempfile
import time
import tracemalloc
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.simproc import SECRET, SimProcess
from dialer.domain.agent import AgentState
from dialer.domain.campaign import AmdPolicy, CampaignSettings, CampaignStatus, PacingMode
from dialer.leads.importer import import_leads
from dialer.runtime.bootstrap import build_runtime
from dialer.runtime.demo import DEMO_PROFILE, DEMO_SELLER
from dialer.sales.service import Sales, SaleTerms
from dialer.service.desk import Desk, DispositionInput
from dialer.settings import Settings
from dialer.store.db import Database
from telephony.asterisk.adapter import AsteriskPbx
from telephony.asterisk.settings import AsteriskSettings
from telephony.base import CallEvent, Pbx

GROWTH_LIMIT = 0.10
CODES = [("not_interested", 45), ("not_qualified", 30), ("sale", 10), ("wrong_number", 8), ("do_not_call", 7)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@dataclass(frozen=True)
class Sample:
    label: str
    shift_hours: float
    rss: int
    fds: int
    events: int
    calls: int

    def line(self) -> str:
        return (
            f"{self.label:<9} shift {self.shift_hours:4.1f} h  RSS {self.rss / 2**20:7.1f} MiB  "
            f"fds {self.fds:4d}  events {self.events:8d}  calls {self.calls:7d}"
        )


def measure(label: str, hours: float, events: int, calls: int) -> Sample:
    gc.collect()
    return Sample(label, hours, rss_bytes(), open_fds(), events, calls)


class CountingPbx:
    """The adapter as the engine sees it, counting the events handled."""

    def __init__(self, pbx: Pbx) -> None:
        self._pbx = pbx
        self.events_seen = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pbx, name)

    async def events(self) -> AsyncIterator[CallEvent]:
        async for event in self._pbx.events():
            self.events_seen += 1
            yield event


def _sale(code: str) -> SaleTerms | None:
    """The terms an agent enters with a sale (its confirmation PDF is made and queued)."""
    if code != "sale":
        return None
    return SaleTerms("Heat pump", 899_900, "EUR", "Within 30 days", "On delivery", email="c@example.net")


class Team:
    """The agents at their desks: ready, and qualifying each call ``think`` PBX seconds into wrap-up."""

    def __init__(self, desk: Desk, ids: list[str], rng: random.Random, time_scale: float) -> None:
        self.desk = desk
        self.ids = ids
        self.rng = rng
        self.time_scale = time_scale
        self.qualified = 0
        self.refused = 0
        self._last: dict[str, str] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def connected(self, attempt_id: str, agent_id: str) -> None:
        self._last[agent_id] = attempt_id

    def changed(self, agent: str, before: AgentState, after: AgentState, since: float, now: float) -> None:
        attempt = self._last.pop(agent, None)
        if after is AgentState.WRAP_UP and attempt is not None:
            task = asyncio.get_running_loop().create_task(self._qualify(agent, attempt))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _qualify(self, agent: str, attempt: str) -> None:
        await asyncio.sleep(self.rng.uniform(5.0, 20.0) / self.time_scale)
        codes, weights = zip(*CODES, strict=True)
        try:
            code = self.rng.choices(codes, weights)[0]
            await self.desk.dispose(agent, attempt, DispositionInput(code=code, sale=_sale(code)))
            self.qualified += 1
        except Exception:
            self.refused += 1  # the wrap-up limit qualified it first: the desk says so, nothing is lost

    def busy(self) -> bool:
        return bool(self._tasks)

    async def settle(self) -> None:
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=30.0)


def write_leads(path: Path, count: int) -> None:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out, delimiter=";")
        writer.writerow(["Telephone", "Prenom", "Nom"])
        for i in range(count):
            writer.writerow([f"+336{i:08d}", f"Client{i}", "Soak"])


async def run(args: argparse.Namespace) -> tuple[list[Sample], dict[str, Any]]:
    workdir = Path(tempfile.mkdtemp(prefix="dialer-soak-"))
    url = f"sqlite+aiosqlite:///{workdir / 'dialer.db'}"
    profiles = workdir / "profiles.toml"
    profiles.write_text(DEMO_PROFILE, encoding="utf-8")
    shift_s = args.hours * 3600.0 / args.time_scale  # real seconds
    # Leads for the whole shift: about 3.5 dials per agent cycle (ring + talk + wrap-up), with margin.
    cycle_s = (4.0 + 120.0 + 12.0) / args.time_scale
    leads = int(args.agents * shift_s / cycle_s * 4.0) + 1000
    async with Database(url) as db:
        await db.migrate()
        campaign = await db.campaigns.create(
            "soak",
            CampaignSettings(
                dial_string="PJSIP/{digits}@trunk",
                caller_id="+33100000000",
                pacing_mode=PacingMode.PREDICTIVE,
                dial_ratio=2.0,
                amd_policy=AmdPolicy.HANGUP,
                wrap_up_limit_s=60.0,
                jurisdiction="CUSTOM-DEMO",
            ),
        )
        write_leads(workdir / "leads.csv", leads)
        await import_leads(db, workdir / "leads.csv", campaign.id, "FR", {"phone": "Telephone"})
        await db.campaigns.set_status(campaign.id, CampaignStatus.RUNNING)
    agi = _free_port()
    sim = await SimProcess.start(
        agi,
        seed=args.seed,
        time_scale=args.time_scale,
        person=0.30,
        busy=0.12,
        machine=0.15,
        talk=(60.0, 180.0),
    )
    settings = AsteriskSettings(port=sim.ami_port, secret=SECRET, fastagi_port=agi, name="soak")
    pbx = CountingPbx(AsteriskPbx(settings))
    await pbx.start()
    runtime = await build_runtime(
        Settings(database_url=url, node_id="soak-node", tick_s=0.2),
        pbx=cast(Pbx, pbx),
        profile_files=(profiles,),
    )
    samples: list[Sample] = []
    info: dict[str, Any] = {"leads": leads, "workdir": str(workdir)}
    stop = asyncio.Event()
    relay_stop = asyncio.Event()
    try:
        # The national registry screened today (a few of the numbers on it), as an operator does.
        registry = workdir / "bloctel.txt"
        registry.write_text("".join(f"+336{i:08d}\n" for i in range(7, leads, 97)), "utf-8")
        await runtime.gate.dnc.import_registry(registry, "bloctel", datetime.now(UTC).date())
        await runtime.load_campaigns(datetime.now(UTC))
        engine = runtime.engine
        sales = Sales(runtime.db, DEMO_SELLER)  # a sale's confirmation is made as in production
        desk = Desk(runtime.db, engine, runtime.agents, relay=runtime.relay, clock=time.time, sales=sales)
        ids = [str(2001 + i) for i in range(args.agents)]
        team = Team(desk, ids, random.Random(args.seed), args.time_scale)
        engine.connected_listeners.append(team.connected)
        runtime.agents.listeners.append(team.changed)
        relay = asyncio.create_task(runtime.relay.run(relay_stop))
        running = asyncio.create_task(engine.run(stop, drain_timeout_s=60.0))
        for agent in ids:
            await desk.login(agent, [str(campaign.id)], f"PJSIP/{agent}@agents")
        await asyncio.sleep(1.0)
        for agent in ids:
            desk.ready(agent)

        def calls() -> int:
            return sum(engine.outcomes.values())

        run_of_campaign = engine.campaigns[str(campaign.id)]

        async def at_rest(label: str, hours: float) -> Sample:
            """Stop dialing, let every call end and every disposition land, measure, dial again."""
            run_of_campaign.paused = True
            limit = time.monotonic() + 120.0
            while (engine.calls or team.busy()) and time.monotonic() < limit:  # noqa: ASYNC110
                await asyncio.sleep(0.1)
            sample = measure(label, hours, pbx.events_seen, calls())
            if args.trace_memory:
                traces[label] = tracemalloc.take_snapshot()
            run_of_campaign.paused = False
            return sample

        traces: dict[str, tracemalloc.Snapshot] = {}
        if args.trace_memory:
            tracemalloc.start(8)
        samples.append(measure("start", 0.0, pbx.events_seen, calls()))
        print(samples[-1].line(), flush=True)
        started = time.monotonic()
        paused_s = 0.0  # time spent at rest is not shift time
        marks = [("warm-up", shift_s / 8.0)]
        marks += [(f"{h} h", h * 3600.0 / args.time_scale) for h in range(2, int(args.hours), 2)]
        marks.append(("end", shift_s))
        for label, at in marks:
            await asyncio.sleep(max(0.0, started + paused_s + at - time.monotonic()))
            if running.done():
                break
            hours = at * args.time_scale / 3600.0
            if label in ("warm-up", "end"):
                rest_began = time.monotonic()
                samples.append(await at_rest(label, hours))
                paused_s += time.monotonic() - rest_began
            else:
                samples.append(measure(label, hours, pbx.events_seen, calls()))
            print(samples[-1].line(), flush=True)
        if "warm-up" in traces and "end" in traces:
            print("allocations grown between warm-up and end (tracemalloc, top 12):")
            for stat in traces["end"].compare_to(traces["warm-up"], "traceback")[:12]:
                print(f"  {stat.size_diff / 2**10:+9.1f} KiB {stat.count_diff:+7d} blocks")
                for frame in stat.traceback.format()[-6:]:
                    print(f"      {frame}")
        info["state_sizes"] = {
            "engine_calls": len(engine.calls),
            "desk_calls": len(desk._calls),
            "agents": len(runtime.agents.view()),
        }
        stop.set()
        await running
        await team.settle()
        relay_stop.set()
        await relay
        info["outcomes"] = dict(engine.outcomes)
        info["errors"] = dict(engine.errors)
        info["blocked"] = dict(engine.blocked)
        info["refused_transitions"] = dict(runtime.agents.refused)
        info["qualified"] = team.qualified
        info["late_dispositions"] = team.refused
        async with runtime.db.read_session() as s:
            from sqlalchemy import func, select

            from dialer.store.models import Attempt

            rows = await s.execute(select(Attempt.status, func.count()).group_by(Attempt.status))
            info["attempt_rows"] = {status: n for status, n in rows.all()}
        info["events"] = pbx.events_seen
        info["sim_rss_mb"] = round(sim.rss_bytes() / 2**20)
    finally:
        stop.set()
        relay_stop.set()
        await runtime.close()
        with contextlib.suppress(Exception):
            await pbx.stop()
        await sim.stop()
    return samples, info


def report(samples: list[Sample], info: dict[str, Any], args: argparse.Namespace) -> bool:
    by = {s.label: s for s in samples}
    warm, end = by.get("warm-up"), by.get("end")
    if warm is None or end is None:
        print("the shift did not reach its end: the engine stopped early")
        print(f"RESULT bench=soak completed=0 errors={info.get('errors')}")
        return False
    growth = (end.rss - warm.rss) / warm.rss
    fd_growth = end.fds - warm.fds
    attempts = sum(info["attempt_rows"].values())
    one_each = (
        attempts > 0
        and info["attempt_rows"].get("open", 0) == 0
        and attempts == sum(info["outcomes"].values())
    )
    print(
        f"shift of {args.hours:g} h, {args.agents} agents, x{args.time_scale:g}: {end.calls} calls, "
        f"{info['qualified']} qualified by the agents ({info['late_dispositions']} after the wrap-up limit), "
        f"{info['events']} PBX events handled; outcomes {info['outcomes']}; refused by the gate "
        f"{info['blocked'] or 'none'}"
    )
    print(
        f"memory after warm-up {warm.rss / 2**20:.1f} MiB -> end {end.rss / 2**20:.1f} MiB "
        f"({growth:+.1%}); descriptors {warm.fds} -> {end.fds} ({fd_growth:+d}); "
        f"held at the end of the shift: {info['state_sizes']}; attempt rows {info['attempt_rows']}; "
        f"engine errors {info['errors'] or 'none'}; refused agent transitions "
        f"{info['refused_transitions'] or 'none'}; simulator RSS {info['sim_rss_mb']} MiB"
    )
    met = {"memory": growth < GROWTH_LIMIT, "descriptors": fd_growth <= 0, "one_outcome": one_each}
    print("targets: " + ", ".join(f"{k} {'met' if v else 'NOT met'}" for k, v in met.items()))
    start = samples[0]
    print(
        f"RESULT bench=soak hours={args.hours:g} agents={args.agents} time_scale={args.time_scale:g} "
        f"calls={end.calls} events={info['events']} rss_start_mb={start.rss / 2**20:.1f} "
        f"rss_warm_mb={warm.rss / 2**20:.1f} rss_end_mb={end.rss / 2**20:.1f} rss_growth={growth:.3f} "
        f"fds_start={start.fds} fds_warm={warm.fds} fds_end={end.fds} one_outcome={int(one_each)}"
    )
    return all(met.values())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a 1-hour shift (about 2 minutes at x30)")
    ap.add_argument("--hours", type=float, default=None, help="shift length in PBX hours (default 8)")
    ap.add_argument("--agents", type=int, default=50)
    ap.add_argument("--time-scale", type=float, default=30.0, help="PBX seconds per real second")
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument(
        "--trace-memory", action="store_true", help="tracemalloc: print what grew between warm-up and end"
    )
    args = ap.parse_args(argv)
    args.hours = args.hours or (1.0 if args.quick else 8.0)
    logging.basicConfig(level=logging.ERROR)
    print(
        f"soak: a {args.hours:g}-hour shift of {args.agents} agents at x{args.time_scale:g} "
        f"({args.hours * 3600 / args.time_scale / 60:.1f} minutes), SQLite record, simulator in its own "
        "process"
    )
    samples, info = asyncio.run(run(args))
    return 0 if report(samples, info, args) else 1


if __name__ == "__main__":
    raise SystemExit(main())
