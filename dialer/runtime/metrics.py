"""Prometheus metrics of one node, read from the engine, the agent registry and the pacers at scrape time.

Nothing in the engine increments a Prometheus counter: it already keeps its
own counts (outcomes and gate blocks per campaign, errors by kind, the live
calls, each campaign's pacer and its abandonment tracker), and the
``NodeCollector`` turns them into metric families when Prometheus scrapes.
The one thing read as it happens is the answer-to-agent delay: the collector
listens for each connected call and observes its delay in a histogram once.

Names follow DESIGN.md section 9: ``dialer_`` prefix, base units (seconds,
ratios), ``_total`` counters.  Labels are bounded sets: a campaign's name, a
PBX's name, states, outcomes, rules and kinds; never a phone number, a lead id
or an attempt id.

``node_registry`` gives the registry a node serves: this collector and the
process-wide metrics (``dialer_compliance_decisions_total``, process and
Python metrics) that live in prometheus-client's default registry.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator

from prometheus_client import REGISTRY, CollectorRegistry, Histogram
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from dialer.domain.agent import AgentState
from dialer.domain.call import CallState
from dialer.runtime.agents import AgentRegistry
from dialer.runtime.engine import Engine
from dialer.service.outbox import OutboxRelay

# The two-second promise sits in the middle of the buckets.
CONNECT_DELAY_BUCKETS = (0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0, 5.0, 10.0)

# A call between the originate and its end; the final states close the attempt and leave engine.calls.
LIVE_CALL_STATES = (
    CallState.NEW,
    CallState.DIALING,
    CallState.RINGING,
    CallState.ANSWERED,
    CallState.WAITING,
    CallState.CONNECTING,
    CallState.CONNECTED,
)
_DIALING = {CallState.NEW, CallState.DIALING, CallState.RINGING}
# Agents as the registry holds them: a logged-out agent is forgotten, so it is not a state shown.
AGENT_STATES = tuple(s for s in AgentState if s is not AgentState.LOGGED_OUT)
_STAFFED = {AgentState.READY, AgentState.RESERVED, AgentState.ON_CALL, AgentState.WRAP_UP}

# Every metric family the node serves, by the name Prometheus sees (counters with ``_total``,
# histograms with their ``_bucket``/``_sum``/``_count`` series).  The dashboard and alert tests
# check their expressions against this set.
EXPORTED = frozenset(
    {
        "dialer_calls_total",
        "dialer_gate_blocked_total",
        "dialer_calls_in_flight",
        "dialer_agents",
        "dialer_campaign_running",
        "dialer_dial_level",
        "dialer_abandonment_ratio",
        "dialer_abandonment_cap_ratio",
        "dialer_abandonment_window_seconds",
        "dialer_answer_to_agent_seconds_bucket",
        "dialer_answer_to_agent_seconds_sum",
        "dialer_answer_to_agent_seconds_count",
        "dialer_pbx_up",
        "dialer_engine_errors_total",
        "dialer_agent_transitions_refused_total",
        "dialer_outbox_failed_passes",
        "dialer_notifications",  # dialer.notify.metrics, when [notify] is configured
        # Follow-up deadlines (dialer.followup.metrics), refreshed from the database every 30 s.
        "dialer_followup_overdue",
        "dialer_followup_tasks",
        "dialer_callbacks_overdue",
        "dialer_campaign_lease_held",
        "dialer_fenced_writes_total",
        # In prometheus-client's default registry, served with the node's metrics.
        "dialer_compliance_decisions_total",
        "dialer_complaints_overdue",  # dialer.quality.complaints, kept by watch_overdue
    }
)


def exported_names() -> frozenset[str]:
    """Every sample name a node serves: this module's and the operations collector's.

    The dashboard and alert tests read this one set; a module that adds metrics adds its names here.
    """
    from dialer.runtime.ops_metrics import OPS_EXPORTED

    return EXPORTED | OPS_EXPORTED


class NodeCollector(Collector):
    """Reads one node's engine at scrape time.  ``clock`` gives the pacers' epoch seconds."""

    def __init__(
        self,
        engine: Engine,
        agents: AgentRegistry | None = None,
        *,
        relay: OutboxRelay | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine = engine
        self.agents = agents if agents is not None else engine.agents
        self.relay = relay
        self._clock = clock
        self.connect_delay = Histogram(
            "dialer_answer_to_agent_seconds",
            "Seconds from the person's answer to the agent's bridge, per connected call",
            buckets=CONNECT_DELAY_BUCKETS,
            registry=None,  # served by this collector, not by the default registry
        )
        engine.connected_listeners.append(self._connected)

    def _connected(self, attempt_id: str, agent_id: str) -> None:
        # The engine appends the call's delay just before telling its listeners: each is seen once.
        if self.engine.connect_delays:
            self.connect_delay.observe(self.engine.connect_delays[-1])

    def collect(self) -> Iterator[Metric]:
        engine, now = self.engine, self._clock()
        calls = CounterMetricFamily(
            "dialer_calls", "Closed call attempts by campaign and outcome", labels=["campaign", "outcome"]
        )
        blocked = CounterMetricFamily(
            "dialer_gate_blocked",
            "Leads the compliance gate refused to dial, by campaign and rule",
            labels=["campaign", "rule"],
        )
        running = GaugeMetricFamily(
            "dialer_campaign_running",
            "1 when the campaign dials on this node, 0 when paused",
            labels=["campaign"],
        )
        level = GaugeMetricFamily(
            "dialer_dial_level",
            "Lines dialing (not yet answered) per staffed agent (ready, reserved, on a call, wrap-up)",
            labels=["campaign"],
        )
        ratio = GaugeMetricFamily(
            "dialer_abandonment_ratio",
            "Abandoned calls over persons answered in the campaign's legal window, as its pacer counts them",
            labels=["campaign"],
        )
        cap = GaugeMetricFamily(
            "dialer_abandonment_cap_ratio", "The campaign's legal abandonment cap", labels=["campaign"]
        )
        window = GaugeMetricFamily(
            "dialer_abandonment_window_seconds",
            "The window over which the campaign's abandonment is counted",
            labels=["campaign"],
        )
        dialing: Counter[str] = Counter()
        for active in engine.calls.values():
            if active.call.state in _DIALING:
                dialing[active.plan.campaign_id] += 1
        for campaign_id, run in engine.campaigns.items():
            name = run.plan.name
            for key, count in sorted(run.counts.items()):
                if key.startswith("blocked:"):
                    blocked.add_metric([name, key.removeprefix("blocked:")], count)
                else:
                    calls.add_metric([name, key], count)
            running.add_metric([name], 0.0 if run.paused else 1.0)
            staffed = sum(1 for a in self.agents.view(campaign_id) if a.state in _STAFFED)
            level.add_metric([name], dialing[campaign_id] / staffed if staffed else 0.0)
            tracker = run.pacer.tracker
            ratio.add_metric([name], tracker.rate(now))
            cap.add_metric([name], tracker.cap)
            window.add_metric([name], tracker.window_s)
        yield from (calls, blocked, running, level, ratio, cap, window)

        pbx_name = getattr(engine.pbx, "name", "") or "default"
        in_flight = GaugeMetricFamily(
            "dialer_calls_in_flight",
            "Calls between the originate and their end, by state",
            labels=["pbx", "state"],
        )
        members = getattr(engine.pbx, "members", None)  # a PBX pool: each member on its own
        if members is not None:
            where = engine.pbx.pbx_of_attempt  # type: ignore[attr-defined]
            by_pbx = Counter((where(a.call.attempt_id), a.call.state) for a in engine.calls.values())
            for member in members:
                for state in LIVE_CALL_STATES:
                    in_flight.add_metric([member.name, state.value], by_pbx[(member.name, state)])
            yield in_flight
            up = GaugeMetricFamily("dialer_pbx_up", "1 when the PBX link (AMI / ESL) is up", labels=["pbx"])
            for member in members:
                up.add_metric([member.name], 1.0 if member.pbx.connected else 0.0)
            yield up
        else:
            states = Counter(active.call.state for active in engine.calls.values())
            for state in LIVE_CALL_STATES:
                in_flight.add_metric([pbx_name, state.value], states[state])
            yield in_flight
            up = GaugeMetricFamily("dialer_pbx_up", "1 when the PBX link (AMI / ESL) is up", labels=["pbx"])
            up.add_metric([pbx_name], 1.0 if engine.pbx.connected else 0.0)
            yield up

        agents = GaugeMetricFamily("dialer_agents", "Logged-in agents by state", labels=["state"])
        by_state = Counter(a.state for a in self.agents.view())
        for agent_state in AGENT_STATES:
            agents.add_metric([agent_state.value], by_state[agent_state])
        yield agents

        for histogram in self.connect_delay.collect():  # without its _created sample: not a series to graph
            histogram.samples = [s for s in histogram.samples if not s.name.endswith("_created")]
            yield histogram

        errors = CounterMetricFamily(
            "dialer_engine_errors",
            "Engine errors by kind: refused call transitions (transition), handler, originate, recording ...",
            labels=["kind"],
        )
        for kind, count in sorted(engine.errors.items()):
            errors.add_metric([kind], count)
        yield errors
        refused = CounterMetricFamily(
            "dialer_agent_transitions_refused",
            "Agent state changes the state machine refused, by input",
            labels=["input"],
        )
        for agent_input, count in sorted(self.agents.refused.items()):
            refused.add_metric([agent_input], count)
        yield refused

        if engine.leases is not None:
            held = GaugeMetricFamily(
                "dialer_campaign_lease_held",
                "1 while this node holds the campaign's lease (paces it), 0 while another node does",
                labels=["campaign"],
            )
            fenced = CounterMetricFamily(
                "dialer_fenced_writes",
                "Attempt writes the record refused: their lease token was older than the campaign's newest",
                labels=["campaign"],
            )
            for campaign_id, run in engine.campaigns.items():
                held.add_metric([run.plan.name], 0.0 if engine.leases.token(campaign_id) is None else 1.0)
                fenced.add_metric([run.plan.name], engine.leases.fenced[campaign_id])
            yield held
            yield fenced

        if self.relay is not None:
            yield GaugeMetricFamily(
                "dialer_outbox_failed_passes",
                "Consecutive outbox delivery passes that failed (0: the gate gets refusals and do-not-calls)",
                value=self.relay.failures,
            )


class _ProcessWide(Collector):
    """The default registry's metrics (compliance decisions, process), served beside a node's."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def node_registry(
    engine: Engine,
    agents: AgentRegistry | None = None,
    *,
    relay: OutboxRelay | None = None,
    clock: Callable[[], float] = time.time,
    process_wide: bool = True,
    followup: Collector | None = None,
) -> CollectorRegistry:
    """A registry serving this node's collector and, unless told not to, the process-wide metrics."""
    registry = CollectorRegistry()
    registry.register(NodeCollector(engine, agents, relay=relay, clock=clock))
    if followup is not None:  # dialer.followup.metrics.FollowupGauges
        registry.register(followup)
    if process_wide:
        registry.register(_ProcessWide())
    return registry
