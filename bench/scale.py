"""One node driving several simulated Asterisk PBXs at once: calls held, originates per second, CPU, loop lag.

The dialer (one process, one event loop: per PBX an AsteriskPbx adapter over real TCP, its FastAGI
server, an Engine with its agent registry) runs here; each simulator runs in a process of its own
(bench/simproc.py), so the dialer's CPU time and the simulators' are measured apart, in the same run,
over the same calls.  The campaign mix is an outbound one: most numbers ring out unanswered until the
25 s ring timeout, some are busy, one in ten is a person who talks to an agent (agents dispose at
once).  A pacer that keeps the trunk full (``--lines`` in all, ``--cps`` originates per second in all,
split over the PBXs) stands in for the campaign: this measures what the runtime can carry, not pacing.

Phases: ramp-up until the lines fill (or ``--ramp-s``), then a steady window (``--steady-s``) over
which everything is measured, then the drain (no new dials; calls in progress finish).

Printed (steady window): concurrent calls held (median and lowest of the samples), originates per
second sustained, the dialer's CPU seconds per 1,000 calls and cores used, the simulators' CPU seconds
per 1,000 calls (the baseline: what the same calls cost the PBX side), the ratio of the two, and the
event-loop lag p99 (a 10 ms sleeper's oversleep).  Targets: 2,000 concurrent calls, 100 originates per
second, the dialer under one core, every call exactly one outcome.

    .venv/bin/python bench/scale.py [--quick] [--pbxs N] [--lines N] [--cps X] [--steady-s S]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import math
import socket
import statistics
import sys
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.simproc import SECRET, SimProcess
from dialer.domain.agent import AgentState
from dialer.pacing.limits import LineGate, PacingLimits
from dialer.pacing.pacers import AgentActivity, PacingSnapshot, RingOutcome
from dialer.runtime.agents import AgentRegistry
from dialer.runtime.engine import Engine
from dialer.runtime.ports import AttemptResult, CampaignPlan, GateVerdict, Lead, OpenAttempt
from telephony.asterisk.adapter import AsteriskPbx
from telephony.asterisk.settings import AsteriskSettings

DIAL = "PJSIP/{digits}@trunk"
TARGET_CONCURRENT = 2000
TARGET_CPS = 100.0
TARGET_CORES = 1.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(ordered: list[float], q: float) -> float:
    if not ordered:
        return math.nan
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


# -- the node's collaborators, lean: the bench measures the runtime, not a store --------------------


@dataclass
class ShiftRecord:
    """The record in memory: leads claimed from a deque, attempts counted, each closed exactly once."""

    leads: deque[Lead] = field(default_factory=deque)
    open_times: list[float] = field(default_factory=list)  # monotonic time of each attempt opened
    results: dict[str, str | None] = field(default_factory=dict)  # attempt -> outcome (None: open)
    closed_twice: int = 0
    _lead_of: dict[str, Lead] = field(default_factory=dict)
    _n: int = 0
    prefix: str = "a"

    async def claim_leads(self, campaign_id: str, limit: int, now: datetime) -> list[Lead]:
        taken = []
        while self.leads and len(taken) < limit:
            taken.append(self.leads.popleft())
        return taken

    async def release_lead(self, lead: Lead, verdict: GateVerdict, now: datetime) -> None:
        return None

    async def open_attempt(self, lead: Lead, now: datetime) -> str:
        self._n += 1
        attempt = f"{self.prefix}{self._n}"
        self.results[attempt] = None
        self._lead_of[attempt] = lead
        self.open_times.append(time.monotonic())
        return attempt

    async def attempt_event(self, attempt_id: str, kind: str, at: datetime) -> None:
        return None

    async def close_attempt(self, attempt_id: str, result: AttemptResult) -> bool:
        if self.results.get(attempt_id) is not None:
            self.closed_twice += 1
            return False
        self.results[attempt_id] = str(result.outcome)
        self._lead_of.pop(attempt_id, None)
        return True

    async def dispose(self, attempt_id: str, agent_id: str, code: str, now: datetime, details: Any) -> Lead:
        return Lead("disposed", "bench", "+33100000000")

    async def open_attempts(self) -> list[OpenAttempt]:
        return []


class AllowAll:
    """The gate allows every number (the gate's own cost is bench/gate.py's)."""

    async def check(self, lead: Lead, plan: CampaignPlan, now: datetime) -> GateVerdict:
        return GateVerdict(True, "allowed", "")

    async def record_attempt(self, lead: Lead, at: datetime) -> None:
        return None

    async def record_outcome(self, lead: Lead, kind: str, at: datetime) -> None:
        return None


class FullTrunk:
    """Keeps every line busy, within the lines and the originates per second."""

    def __init__(self, limits: PacingLimits) -> None:
        self.gate = LineGate(limits)
        self.max_lines = limits.max_lines

    def lines_to_open(self, snapshot: PacingSnapshot, now: float) -> int:
        return self.gate.admit(self.max_lines, len(snapshot.calls_in_flight), snapshot.trunk_lines_free, now)

    def observe_dial_launched(self, call_id: object, at: float) -> None:
        return None

    def observe_ring_outcome(self, call_id: object, at: float, outcome: RingOutcome) -> None:
        return None

    def observe_person_handled(self, call_id: object, at: float, abandoned: bool) -> None:
        return None

    def observe_agent_state(self, agent_id: object, at: float, activity: AgentActivity) -> None:
        return None


# -- one PBX of the node ---------------------------------------------------------------------------


@dataclass
class Trunk:
    index: int
    sim: SimProcess
    pbx: AsteriskPbx
    record: ShiftRecord
    registry: AgentRegistry
    engine: Engine
    agents: list[str]


async def start_trunk(index: int, lines: int, cps: float, agents: int, leads: int, seed: int) -> Trunk:
    agi = _free_port()
    sim = await SimProcess.start(agi, seed=seed + index)
    pbx = AsteriskPbx(
        AsteriskSettings(port=sim.ami_port, secret=SECRET, fastagi_port=agi, name=f"pbx{index}")
    )
    campaign = f"c{index}"
    record = ShiftRecord(
        leads=deque(Lead(f"l{index}-{i}", campaign, f"+3361{index}{i:06d}") for i in range(leads)),
        prefix=f"p{index}-",
    )
    registry = AgentRegistry(clock=time.time)
    engine = Engine(pbx, record, AllowAll(), registry, tick_s=0.1)
    plan = CampaignPlan(
        campaign_id=campaign,
        name=campaign,
        dial_string_template=DIAL,
        caller_id_number="0100000000",
        caller_id_name="Bench",
        ring_timeout_s=25.0,
        answer_to_agent_limit_s=2.0,
        wrap_up_limit_s=60.0,
        max_lines=lines,
        pbx_name=f"pbx{index}",
    )
    engine.add_campaign(plan, FullTrunk(PacingLimits(max_lines=lines, calls_per_second=cps, burst=10)))
    ids = [str(1000 + index * 1000 + i) for i in range(agents)]
    return Trunk(index, sim, pbx, record, registry, engine, ids)


async def seat_agents(trunk: Trunk) -> None:
    last_call: dict[str, str] = {}
    trunk.engine.connected_listeners.append(lambda attempt, agent: last_call.__setitem__(agent, attempt))
    tasks: set[asyncio.Task[None]] = set()

    def dispose_at_once(agent: str, before: AgentState, after: AgentState, since: float, now: float) -> None:
        if after is AgentState.WRAP_UP and agent in last_call:
            task = asyncio.get_running_loop().create_task(
                trunk.engine.dispose(agent, last_call[agent], "not_interested")
            )
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    trunk.registry.listeners.append(dispose_at_once)
    for agent in trunk.agents:
        leg = await trunk.pbx.login_agent(agent, f"PJSIP/{agent}@agents")
        trunk.registry.login(agent, list(trunk.engine.campaigns), leg_id=leg)
    await asyncio.sleep(1.0)  # the legs answer and join their bridges
    for agent in trunk.agents:
        trunk.registry.ready(agent)


class LagProbe:
    """A task that sleeps 10 ms again and again and notes how late it wakes."""

    def __init__(self) -> None:
        self.lags: list[float] = []
        self.recording = False

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            asked = time.monotonic()
            await asyncio.sleep(0.01)
            if self.recording:
                self.lags.append(max(0.0, time.monotonic() - asked - 0.01))


@dataclass
class Window:
    seconds: float
    originates: int
    concurrent: list[int]
    dialer_cpu: float
    sim_cpu: float
    lags_ms: list[float]


async def run(args: argparse.Namespace) -> tuple[Window, dict[str, Any]]:
    per_lines = math.ceil(args.lines / args.pbxs)
    per_cps = args.cps / args.pbxs
    per_leads = int(per_cps * (args.ramp_s + args.steady_s + 30) * 1.2) + 100
    trunks = [
        await start_trunk(i, per_lines, per_cps, args.agents, per_leads, args.seed) for i in range(args.pbxs)
    ]
    stop = asyncio.Event()
    probe_stop = asyncio.Event()
    probe = LagProbe()
    probing = asyncio.create_task(probe.run(probe_stop))
    engines: list[asyncio.Task[None]] = []
    info: dict[str, Any] = {}
    try:
        for t in trunks:
            await t.pbx.start()
        for t in trunks:
            await seat_agents(t)
        for t in trunks:
            engines.append(asyncio.create_task(t.engine.run(stop, drain_timeout_s=60.0)))

        def held() -> int:
            return sum(len(t.engine.calls) for t in trunks)

        ramp_end = time.monotonic() + args.ramp_s
        while time.monotonic() < ramp_end and held() < args.lines * 0.95:  # noqa: ASYNC110 (sampling)
            await asyncio.sleep(0.25)
        info["ramp_s"] = args.ramp_s - max(0.0, ramp_end - time.monotonic())
        # The steady window.
        started = time.monotonic()
        cpu0 = time.process_time()
        sim0 = sum(t.sim.cpu_seconds() for t in trunks)
        opened0 = sum(len(t.record.open_times) for t in trunks)
        samples: list[int] = []
        probe.recording = True
        while time.monotonic() - started < args.steady_s:
            await asyncio.sleep(0.5)
            samples.append(held())
        probe.recording = False
        seconds = time.monotonic() - started
        window = Window(
            seconds=seconds,
            originates=sum(len(t.record.open_times) for t in trunks) - opened0,
            concurrent=samples,
            dialer_cpu=time.process_time() - cpu0,
            sim_cpu=sum(t.sim.cpu_seconds() for t in trunks) - sim0,
            lags_ms=sorted(lag * 1000.0 for lag in probe.lags),
        )
        stop.set()
        await asyncio.wait_for(asyncio.gather(*engines), 120.0)
        results = Counter(r for t in trunks for r in t.record.results.values())
        info["attempts"] = sum(len(t.record.results) for t in trunks)
        info["unclosed"] = results.pop(None, 0)
        info["closed_twice"] = sum(t.record.closed_twice for t in trunks)
        info["outcomes"] = dict(results)
        info["errors"] = dict(sum((Counter(t.engine.errors) for t in trunks), Counter()))
        info["sim_rss_mb"] = [round(t.sim.rss_bytes() / 2**20) for t in trunks]
    finally:
        stop.set()
        probe_stop.set()
        for task in engines:
            if not task.done():
                task.cancel()
        for t in trunks:
            with contextlib.suppress(Exception):
                await t.pbx.stop()
            await t.sim.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await probing
    return window, info


def report(w: Window, info: dict[str, Any], args: argparse.Namespace) -> bool:
    rate = w.originates / w.seconds
    median_held = statistics.median(w.concurrent) if w.concurrent else 0
    lowest_held = min(w.concurrent) if w.concurrent else 0
    per_k = 1000.0 / max(1, w.originates)
    dialer_k, sim_k = w.dialer_cpu * per_k, w.sim_cpu * per_k
    cores = w.dialer_cpu / w.seconds
    lag_p99 = percentile(w.lags_ms, 0.99)
    ratio = dialer_k / sim_k if sim_k > 0 else math.nan
    one_each = info["unclosed"] == 0 and info["closed_twice"] == 0
    print(
        f"steady window {w.seconds:.0f} s over {args.pbxs} PBXs (ramp-up {info['ramp_s']:.0f} s): "
        f"concurrent calls median {median_held:.0f}, lowest {lowest_held}; originates {rate:.1f}/s"
    )
    print(
        f"CPU per 1,000 calls: dialer {dialer_k:.2f} s ({cores:.2f} cores), simulators {sim_k:.2f} s "
        f"(baseline), dialer/simulators {ratio:.2f}; event-loop lag p50 {percentile(w.lags_ms, 0.5):.1f} ms, "
        f"p99 {lag_p99:.1f} ms, max {w.lags_ms[-1] if w.lags_ms else math.nan:.1f} ms"
    )
    print(
        f"attempts {info['attempts']}, outcomes {info['outcomes']}, left open {info['unclosed']}, "
        f"closed twice {info['closed_twice']}, engine errors {info['errors'] or 'none'}; "
        f"simulator RSS MiB {info['sim_rss_mb']}"
    )
    met = {
        "concurrent": median_held >= TARGET_CONCURRENT,
        "originates": rate >= TARGET_CPS,
        "cores": cores < TARGET_CORES,
        "one_outcome": one_each,
    }
    print(
        "targets: "
        + ", ".join(f"{k} {'met' if v else 'NOT met'}" for k, v in met.items())
        + f" (>= {TARGET_CONCURRENT} calls held, >= {TARGET_CPS:g} originates/s, < {TARGET_CORES:g} core)"
    )
    print(
        f"RESULT bench=scale pbxs={args.pbxs} concurrent_median={median_held:.0f} "
        f"concurrent_min={lowest_held} "
        f"originates_per_s={rate:.1f} dialer_cpu_s_per_1000={dialer_k:.2f} sim_cpu_s_per_1000={sim_k:.2f} "
        f"ratio_dialer_sim={ratio:.2f} dialer_cores={cores:.2f} loop_lag_p99_ms={lag_p99:.1f} "
        f"one_outcome={int(one_each)}"
    )
    return all(met.values())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a 20 s steady window instead of 60 s")
    ap.add_argument("--pbxs", type=int, default=4)
    ap.add_argument("--lines", type=int, default=2600, help="lines in all, split over the PBXs")
    ap.add_argument("--cps", type=float, default=110.0, help="originates per second in all")
    ap.add_argument("--agents", type=int, default=45, help="agents per PBX")
    ap.add_argument("--ramp-s", type=float, default=40.0)
    ap.add_argument("--steady-s", type=float, default=None)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    args.steady_s = args.steady_s or (20.0 if args.quick else 60.0)
    logging.basicConfig(level=logging.ERROR)
    print(
        f"scale: {args.pbxs} simulated Asterisk PBXs (each its own process), {args.lines} lines and "
        f"{args.cps:g} originates/s in all, {args.agents} agents per PBX; real time"
    )
    window, info = asyncio.run(run(args))
    return 0 if report(window, info, args) else 1


if __name__ == "__main__":
    raise SystemExit(main())
