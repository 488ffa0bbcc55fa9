"""Pacing benchmark, scenario OB-20 and its variants: how much agent time each policy buys at the cap.

Run:  .venv/bin/python bench/pacing.py [--quick] [--jobs 2]

A discrete-event simulation in virtual time (bench/pacing_sim.py). Each day (seeds 101-120) has
its own record list: every record's outcome, answer delay, talk and wrap-up time come from the
seed, so every policy dials exactly the same people in the same order. Policies see only what a
dialer sees (launches, outcomes when they happen, agent state changes) and learn online; the
oracle and full-information policies see more on purpose and are printed as bounds.

OB-20: 20 agents for 8 h, no breaks, at most 50 lines, first 30 min of each day not scored.
Per dial: person 0.20, answering machine 0.20, no answer 0.45, busy / invalid 0.15.

Interpretations (where the scenario text leaves room):
- "lognormal(mean m, sigma s)" has mean m (mu = ln m - s^2 / 2); "lognormal(median 6, sigma 0.6)"
  has mu = ln 6. A person answers 2 s + that lognormal after launch, redrawn while the total is
  22 s or more. Talk: 30 % refusals lognormal(mean 20 s, sigma 0.5), 70 % lognormal(mean 150 s,
  sigma 0.8); wrap-up lognormal(mean 10 s, sigma 0.5).
- Every dial has one moment when the dialer learns its outcome: a person at the answer (AMD
  verdict included; the 2 s wait starts there), a machine at pickup + 3 s (AMD verdict, line
  released), no answer at 22 s, busy / invalid at its release.
- Lines: calls dialing at once (answered calls sit on agents). 50 for 20 agents, 2.5 per agent
  for the N = 10 and N = 50 variants. No calls-per-second limit in the scenario.
- Ticks: every 0.5 s of virtual time, plus every event (dial outcome, abandon, agent change).
- AMD-error variant: 5 % of machines are taken for persons, reach an agent (counted as person
  answers, abandonable) who hangs up after lognormal(mean 10 s, sigma 0.5) then wraps up; 3 % of
  persons are taken for machines and hung up: a lost contact, counted by the dialer (and here) as
  a machine, since nothing the dialer sees tells them apart.
- Drift variant: the person rate goes linearly from 0.20 at the start of the day to 0.12 at the
  end; the other outcomes keep their proportions. Each record keeps one uniform draw, so the
  records are the same for every policy, only the time of dialing changes the outcome.
- Breaks variant: every agent takes 15 min at about 2 h, 30 min at about 4 h and 15 min at about
  6 h (each start +/- 30 min, from the seed), when their current call and wrap-up end.
  Occupancy's denominator is then the agents' logged-in time off break.
- 1 % cap variant: UK window (24 h rolling) and cap 1 %; the other scenarios use the US window
  (30 days rolling) and 3 %.
- OB-5 (a small team): 5 agents, at most 12 lines, person 0.55 (the other outcomes keep their
  proportions), every talk time of the OB-20 mix scaled by 600 / 111 (mean 600 s); once under the
  UK rule (1 %, 24 h rolling) and once under the US rule (3 %, 30 days rolling).
- Worst window: the highest abandonment rate of any rolling window of the rule's length over the
  20 days run back to back (days 86,400 s apart, 8 h of calls each), taken just after every call
  handled and every call leaving the window, warm-up included (the law counts every call). With
  a 30-day rule every window starts on day 1, so the worst day is printed too, for information.
- The predictive pacer keeps what it learned from one day to the next (the daemon runs on; calls
  and agent states start afresh with new_session()), so it warms up (progressive) on day 1 only;
  the abandonment history is carried from day to day through the tracker's export() / restore(),
  as the daemon does through the attempts table.
- Ratio: lines dialing = floor(ratio x ready agents); tuned by bisection to the largest ratio whose
  pooled abandonment stays under the cap on the first days of the same records (a favour to it).
- VICIdial ADAPT_AVERAGE and OMniDialer: see bench/pacing_policies.py for the exact reading.
- Oracle (bound): our predictive pacer, told each record's outcome and answer delay, not talk times.
- Full information (bound): knows outcome, answer delay, talk and wrap-up of every record.
- Gap closed = (predictive - progressive) / (oracle - progressive), in occupancy.
- Days: every scenario runs the 20 days of seeds 101-120 (about 17 minutes on 2 shared cores).
  --quick: 2 days of OB-20 with every policy, 1 day of each variant without the bounds
  (about 30 s).
- Predictive (dialer.pacing, defaults): opens lines while E[person answers to come] + z x sd
  stays within E[agents free within 8 s + 2 s], both from laws learned online; z is steered by
  the abandonment budget (aim 93 % of the cap over the window).
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.pacing_policies import (
    FullInformation,
    OmniDialerPacer,
    VicidialAdaptAverage,
    dialer_policy,
    oracle_policy,
)
from bench.pacing_sim import DAY_S, WARMUP_S, DayStats, Policy, Scenario, run_days, worst_window
from dialer.pacing import (
    AbandonmentTracker,
    AgentActivity,
    BusyAgent,
    PacingLimits,
    PacingSnapshot,
    PredictivePacer,
    PredictiveParams,
    RingOutcome,
)

US = 30 * 86400.0
UK = 86400.0
SEEDS = list(range(101, 121))
OUT = Path(__file__).resolve().parent / "out"

PREDICTIVE_PARAMS: dict[str, object] = {}


DAYS = 20  # seeds 101-120


def ob5(name: str, **rule: float) -> Scenario:
    """A small team with long calls and a high answer rate (the case reported from an independent
    outbound-call-center simulator): 5 agents, 55 % persons, talk times with a mean of 600 s."""
    return Scenario(
        name, agents=5, max_lines=12, person_start=0.55, person_end=0.55, talk_scale=600.0 / 111.0, **rule
    )


def scenarios(quick: bool) -> list[tuple[Scenario, int]]:
    """(scenario, days) in the order they are reported."""
    base = Scenario("OB-20")
    variants = [
        Scenario("OB-20", agents=10, max_lines=25),
        Scenario("OB-20", agents=50, max_lines=125),
        Scenario("OB-20+amd-errors", amd_errors=True),
        Scenario("OB-20+drift", person_end=0.12),
        Scenario("OB-20+breaks", breaks=True),
        Scenario("OB-20+cap1%", cap=0.01, window_s=UK),
    ]
    small = [
        ob5("OB-5+uk1%", cap=0.01, window_s=UK),
        ob5("OB-5+us3%"),
    ]
    variants += small
    if quick:
        return [(base, 2)] + [(s, 3 if s in small else 1) for s in variants]
    return [(s, DAYS) for s in (base, *variants)]


@dataclass
class Summary:
    policy: str
    bound: bool
    occupancy: float
    talk_min_per_hour: float
    abandon: float
    worst_day: float
    worst_window: float  # the worst rolling window of the scenario's rule (24 h or 30 days)
    worst_window_calls: int  # person-answered calls in that window
    wait_per_contact: float
    dials_per_agent_hour: float
    seconds: float


def summarize(policy: str, bound: bool, days: list[DayStats], scenario: Scenario, seconds: float) -> Summary:
    available = sum(d.available_s for d in days)
    persons = sum(d.persons for d in days)
    abandoned = sum(d.abandoned for d in days)
    contacts = sum(d.contacts for d in days)
    hours = available / 3600.0
    window_rate, window_calls, _ = worst_window(days, scenario.window_s)
    return Summary(
        policy=policy,
        bound=bound,
        occupancy=sum(d.busy_s for d in days) / available,
        talk_min_per_hour=sum(d.talk_s for d in days) / 60.0 / hours,
        abandon=abandoned / persons if persons else 0.0,
        worst_day=max((d.abandoned / d.persons if d.persons else 0.0) for d in days),
        worst_window=window_rate,
        worst_window_calls=window_calls,
        wait_per_contact=sum(d.agent_wait_s for d in days) / contacts if contacts else 0.0,
        dials_per_agent_hour=sum(d.dials for d in days) / hours,
        seconds=seconds,
    )


def make_policy(kind: str, scenario: Scenario, ratio: float = 1.0) -> Policy:
    cap, window, lines = scenario.cap, scenario.window_s, scenario.max_lines
    if kind == "progressive":
        return dialer_policy("progressive", "progressive", None, cap, window, lines)
    if kind == "ratio":
        return dialer_policy(f"ratio {ratio:.2f} (tuned)", "ratio", {"ratio": ratio}, cap, window, lines)
    if kind == "vicidial":
        return VicidialAdaptAverage("VICIdial ADAPT_AVERAGE", cap, lines)
    if kind == "omni":
        return OmniDialerPacer("OMniDialer predictive", cap, lines)
    if kind == "predictive":
        return dialer_policy("predictive", "predictive", PREDICTIVE_PARAMS, cap, window, lines)
    if kind == "oracle":
        return oracle_policy(PREDICTIVE_PARAMS, cap, window, lines)
    if kind == "full":
        return FullInformation("full information (bound)", cap, lines)
    raise ValueError(kind)


def run_policy(kind: str, scenario: Scenario, seeds: list[int], ratio: float) -> tuple[str, Summary]:
    started = time.perf_counter()
    policy = make_policy(kind, scenario, ratio)
    days = run_days(scenario, seeds, lambda: policy)
    return kind, summarize(
        policy.name, kind in ("oracle", "full"), days, scenario, time.perf_counter() - started
    )


def tune_ratio(scenario: Scenario, seeds: list[int], steps: int) -> float:
    """Largest ratio (lines per ready agent) whose pooled abandonment stays under the cap on seeds."""
    low, high = 1.0, 6.0
    for _ in range(steps):
        mid = (low + high) / 2.0
        policy = make_policy("ratio", scenario, mid)
        days = run_days(scenario, seeds, lambda p=policy: p)  # type: ignore[misc]
        persons = sum(d.persons for d in days)
        rate = sum(d.abandoned for d in days) / persons if persons else 0.0
        if rate <= scenario.cap:
            low = mid
        else:
            high = mid
    return low


def run_scenario(
    scenario: Scenario,
    days: int,
    quick: bool,
    bounds: bool,
    pool: ProcessPoolExecutor,
    only: set[str] | None = None,
) -> list[Summary]:
    seeds = SEEDS[:days]
    kinds = ["predictive", "oracle", "progressive", "ratio", "vicidial", "omni", "full"]
    if not bounds:
        kinds = ["predictive", "progressive", "ratio", "vicidial", "omni"]
    if only:
        kinds = [k for k in kinds if k in only]
    ratio = 1.0
    if "ratio" in kinds:
        tune_seeds = seeds[: 1 if quick else min(3, days)]
        ratio = tune_ratio(scenario, tune_seeds, 4 if quick else 6)
    futures = [pool.submit(run_policy, kind, scenario, seeds, ratio) for kind in kinds]
    results = dict(f.result() for f in futures)
    order = ["progressive", "ratio", "vicidial", "omni", "predictive", "oracle", "full"]
    return [results[k] for k in order if k in results]


def print_table(scenario: Scenario, days: int, rows: list[Summary]) -> None:
    hours = scenario.window_s / 3600.0
    window = f"{hours:.0f}h" if hours <= 48 else f"{hours / 24:.0f}d"
    label = (
        f"{scenario.name} agents={scenario.agents} cap={scenario.cap:.0%} window={window} "
        f"person={scenario.person_start:.0%} days={days}"
    )
    print(f"\n== {label}")
    print(
        f"{'policy':34s} {'occupancy':>9s} {'talk min/h':>10s} {'abandon':>8s} "
        f"{'worst ' + window:>10s} {'(calls)':>7s} {'worst day':>9s} "
        f"{'wait/contact s':>14s} {'dials/agent-h':>13s} {'cpu s':>6s}"
    )
    for r in rows:
        flag = " OVER" if r.worst_window > scenario.cap + 1e-12 else ""
        print(
            f"{r.policy:34s} {r.occupancy:9.3f} {r.talk_min_per_hour:10.1f} {r.abandon:8.4f} "
            f"{r.worst_window:10.4f} {r.worst_window_calls:7d} {r.worst_day:9.4f} "
            f"{r.wait_per_contact:14.1f} {r.dials_per_agent_hour:13.1f} {r.seconds:6.1f}{flag}"
        )
    by = {r.policy.split(" ")[0]: r for r in rows}
    prog, pred, orc = by.get("progressive"), by.get("predictive"), by.get("oracle(answer-time")
    if prog and pred and orc and orc.occupancy > prog.occupancy:
        gap = (pred.occupancy - prog.occupancy) / (orc.occupancy - prog.occupancy)
        print(f"gap closed between progressive and the answer-time oracle: {gap:.1%}")
    for r in rows:
        name = r.policy.split(" ")[0].split("(")[0]
        print(
            f"RESULT bench=pacing scenario={scenario.name} agents={scenario.agents} cap={scenario.cap} "
            f"policy={name}{'_bound' if r.bound else ''} occupancy={r.occupancy:.3f} "
            f"talk_min_per_agent_hour={r.talk_min_per_hour:.1f} abandon={r.abandon:.4f} "
            f"worst_day={r.worst_day:.4f} window={window} worst_window={r.worst_window:.4f} "
            f"worst_window_calls={r.worst_window_calls} wait_per_contact_s={r.wait_per_contact:.1f} "
            f"dials_per_agent_hour={r.dials_per_agent_hour:.1f} days={days}"
        )


def plot(all_rows: list[tuple[Scenario, list[Summary]]]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    OUT.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(9, 6))
    markers = {
        "progressive": "o",
        "ratio": "s",
        "VICIdial": "^",
        "OMniDialer": "v",
        "predictive": "*",
        "oracle(answer-time": "P",
        "full": "X",
    }
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (scenario, rows) in enumerate(all_rows):
        color = colors[i % len(colors)]
        for r in rows:
            key = r.policy.split(" ")[0]
            ax.scatter(
                r.abandon * 100,
                r.occupancy * 100,
                marker=markers.get(key, "."),
                color=color,
                s=120 if key == "predictive" else 50,
            )
        ax.plot([], [], color=color, label=f"{scenario.name} N={scenario.agents} cap {scenario.cap:.0%}")
    for key, marker in markers.items():
        ax.scatter([], [], marker=marker, color="gray", label=key.split("(")[0])
    ax.axvline(3.0, color="red", linestyle="--", linewidth=0.8)
    ax.axvline(1.0, color="red", linestyle=":", linewidth=0.8)
    ax.set_xlabel("abandonment, pooled (% of person-answered calls)")
    ax.set_ylabel("occupancy (%)")
    ax.set_title("Pacing: occupancy against abandonment (bounds: oracle, full information)")
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    path = OUT / "pacing.png"
    fig.savefig(path, dpi=110, bbox_inches="tight")
    return path


def decision_benchmark(agents: int = 200, in_flight: int = 500, runs: int = 400) -> tuple[float, float]:
    """p50 / p99 microseconds of one predictive decision with that many agents and calls in flight."""
    rng = random.Random(7)
    tracker = AbandonmentTracker("bench", 0.03, US)
    pacer = PredictivePacer(tracker, PacingLimits(max_lines=in_flight + 200), PredictiveParams())
    t = 0.0
    for i in range(3000):  # teach it the OB-20 laws through the same observe_* calls as the daemon
        pacer.observe_dial_launched(i, t)
        u = rng.random()
        if u < 0.2:
            pacer.observe_ring_outcome(
                i, t + 2.0 + rng.lognormvariate(math.log(6.0), 0.6) % 20.0, RingOutcome.PERSON
            )
        elif u < 0.4:
            pacer.observe_ring_outcome(i, t + rng.uniform(15.0, 23.0), RingOutcome.MACHINE)
        elif u < 0.85:
            pacer.observe_ring_outcome(i, t + 22.0, RingOutcome.NO_ANSWER)
        else:
            pacer.observe_ring_outcome(i, t + rng.uniform(1.0, 5.0), RingOutcome.FAILED)
        t += 0.3
    for a in range(400):
        start = a * 50.0
        talk = rng.lognormvariate(math.log(150.0) - 0.32, 0.8)
        pacer.observe_agent_state(a, start, AgentActivity.TALK)
        pacer.observe_agent_state(a, start + talk, AgentActivity.WRAP)
        pacer.observe_agent_state(
            a, start + talk + rng.lognormvariate(math.log(10.0) - 0.125, 0.5), AgentActivity.READY
        )
    for _ in range(200):
        tracker.record(t, True, False)
    now = t + 100.0
    timings = []
    for r in range(-50, runs):  # the first 50 fill the per-elapsed-time caches and are not timed
        now += 0.5
        busy = [
            BusyAgent(
                AgentActivity.TALK if rng.random() < 0.9 else AgentActivity.WRAP,
                now - rng.uniform(0.0, 400.0),
            )
            for _ in range(agents - 10)
        ]
        flight = [now - rng.uniform(0.0, 25.0) for _ in range(in_flight)]
        snapshot = PacingSnapshot(ready_agents=10 if r % 2 else 0, busy_agents=busy, calls_in_flight=flight)
        started = time.perf_counter()
        pacer.lines_to_open(snapshot, now)
        if r >= 0:
            timings.append((time.perf_counter() - started) * 1e6)
    timings.sort()
    return statistics.median(timings), timings[int(0.99 * (len(timings) - 1))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer days (under a minute)")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="worker processes")
    parser.add_argument(
        "--scenario", action="append", help="run only scenarios whose name contains this (repeatable)"
    )
    parser.add_argument(
        "--policies",
        help="run only these policies, comma-separated (predictive,oracle,progressive,"
        "ratio,vicidial,omni,full); no plot then",
    )
    args = parser.parse_args(argv)
    only = set(args.policies.split(",")) if args.policies else None
    started = time.perf_counter()
    print(
        f"pacing bench: day {DAY_S / 3600:.0f} h, warm-up {WARMUP_S / 60:.0f} min not scored, "
        f"{'quick' if args.quick else 'full'} run, {args.jobs} worker(s)"
    )
    all_rows = []
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for index, (scenario, days) in enumerate(scenarios(args.quick)):
            if args.scenario and not any(part in scenario.name for part in args.scenario):
                continue
            rows = run_scenario(scenario, days, args.quick, not args.quick or index == 0, pool, only)
            print_table(scenario, days, rows)
            all_rows.append((scenario, rows))
            sys.stdout.flush()
    if only is None and not args.scenario:
        path = plot(all_rows)
        print(f"\nplot: {path}")
    p50, p99 = decision_benchmark()
    print(f"predictive decision, 200 agents and 500 calls in flight: p50 {p50:.0f} us, p99 {p99:.0f} us")
    print(f"RESULT bench=pacing_decision agents=200 in_flight=500 p50_us={p50:.0f} p99_us={p99:.0f}")
    print(f"total {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
