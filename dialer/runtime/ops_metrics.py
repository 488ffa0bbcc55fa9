"""Operations metrics beside the node's own: hopper depth, the PBX pool's trunks and round trips, reloads.

``dialer.runtime.metrics.NodeCollector`` reads the engine; what it cannot read
at scrape time is here:

* the hopper (leads due now and unclaimed, per campaign) lives in the database,
  which a scrape must not wait on: ``HopperSampler`` counts it in the
  background every few seconds and the collector serves its last count;
* the PBX pool (``dialer.runtime.pbx_pool``): lines in use against each PBX's
  trunk limit, its calls-per-second limit, the campaigns held back because their
  PBX is down, and the round trip of each originate (the PBX's reply time);
* configuration reloads (SIGHUP) by result.

Labels are bounded: campaign names, PBX names, a result; never a number or an id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from dialer.runtime.engine import Engine
    from dialer.runtime.pbx_pool import PbxPool
    from dialer.store.db import Database

log = logging.getLogger(__name__)

HOPPER_INTERVAL_S = 5.0

# Every family this module serves, by the sample names Prometheus sees.
OPS_EXPORTED = frozenset(
    {
        "dialer_hopper_leads",
        "dialer_pbx_lines_in_use",
        "dialer_pbx_max_lines",
        "dialer_pbx_calls_per_second_limit",
        "dialer_pbx_roundtrip_seconds_bucket",
        "dialer_pbx_roundtrip_seconds_sum",
        "dialer_pbx_roundtrip_seconds_count",
        "dialer_campaign_pbx_down",
        "dialer_config_reloads_total",
        "dialer_pbx_link_errors_total",
    }
)

# What the adapters count and nobody showed: (kind, path of the counter from the adapter).
_LINK_COUNTERS = (
    ("malformed", ("client", "stats", "malformed")),  # Asterisk: AMI messages that did not parse
    ("handler_error", ("client", "stats", "handler_errors")),
    ("action_timeout", ("client", "stats", "action_timeouts")),
    ("ping_failure", ("client", "stats", "ping_failures")),
    ("login_failure", ("client", "stats", "login_failures")),
    ("disconnect", ("client", "stats", "disconnects")),
    ("fastagi_error", ("fastagi", "stats", "errors")),
    ("fastagi_timeout", ("fastagi", "stats", "timeouts")),
    ("handler_error", ("client", "handler_errors")),  # FreeSWITCH: the ESL client and the adapter
    ("action_timeout", ("client", "command_timeouts")),
    ("action_error", ("action_errors",)),
    ("router_error", ("router_errors",)),
)


def link_errors(pbx: object) -> Counter[str]:
    """The adapter's own error counters by kind (those it does not keep are absent)."""
    found: Counter[str] = Counter()
    for kind, path in _LINK_COUNTERS:
        value: object = pbx
        for name in path:
            value = getattr(value, name, None)
        if isinstance(value, int) and not isinstance(value, bool):
            found[kind] += value
    return found


class HopperSampler:
    """Counts each running campaign's due leads in the background; the collector reads the counts."""

    def __init__(self, db: Database, engine: Engine, *, wall: Callable[[], datetime] | None = None) -> None:
        self.db = db
        self.engine = engine
        self._wall = wall or (lambda: datetime.now(UTC))
        self.depth: dict[str, int] = {}  # campaign name -> leads due and unclaimed
        self.failures = 0

    async def refresh(self) -> None:
        now = self._wall()
        depth: dict[str, int] = {}
        for campaign_id, run in list(self.engine.campaigns.items()):
            depth[run.plan.name] = await self.db.hopper.count_due(int(campaign_id), now)
        self.depth = depth

    async def run(self, until: asyncio.Event, interval_s: float = HOPPER_INTERVAL_S) -> None:
        while not until.is_set():
            try:
                await self.refresh()
            except Exception as exc:  # the scrape keeps the last counts; the log says why they are old
                self.failures += 1
                log.warning(
                    "counting the hopper failed (%s: %s); the metric keeps its last value",
                    type(exc).__name__,
                    exc,
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(until.wait(), interval_s)


class Reloads:
    """Configuration reloads by result (``applied``, ``partial``: some keys need a restart, ``failed``)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()


class OpsCollector(Collector):
    def __init__(
        self,
        engine: Engine,
        *,
        hopper: HopperSampler | None = None,
        reloads: Reloads | None = None,
    ) -> None:
        self.engine = engine
        self.hopper = hopper
        self.reloads = reloads

    def _pool(self) -> PbxPool | None:
        from dialer.runtime.pbx_pool import PbxPool

        pbx = self.engine.pbx
        return pbx if isinstance(pbx, PbxPool) else None

    def collect(self) -> Iterator[Metric]:
        if self.hopper is not None:
            hopper = GaugeMetricFamily(
                "dialer_hopper_leads",
                "Leads due now and not claimed, per campaign (counted every few seconds)",
                labels=["campaign"],
            )
            for name, count in sorted(self.hopper.depth.items()):
                hopper.add_metric([name], count)
            yield hopper
        pool = self._pool()
        if pool is not None:
            yield from self._pool_metrics(pool)
        errors = CounterMetricFamily(
            "dialer_pbx_link_errors",
            "PBX link errors the adapter counted: malformed messages, handler errors, timeouts, pings ...",
            labels=["pbx", "kind"],
        )
        adapters = (
            [(m.name, m.pbx) for m in pool.members]
            if pool is not None
            else [(getattr(self.engine.pbx, "name", "") or "default", self.engine.pbx)]
        )
        for name, adapter in adapters:
            for kind, count in sorted(link_errors(adapter).items()):
                errors.add_metric([name, kind], count)
        yield errors
        if self.reloads is not None:
            reloads = CounterMetricFamily(
                "dialer_config_reloads",
                "Configuration reloads (SIGHUP) by result: applied, partial (a key needs a restart), failed",
                labels=["result"],
            )
            for result in ("applied", "partial", "failed"):
                reloads.add_metric([result], self.reloads.counts[result])
            yield reloads

    def _pool_metrics(self, pool: PbxPool) -> Iterator[Metric]:
        in_use = GaugeMetricFamily(
            "dialer_pbx_lines_in_use", "Lines open on the PBX, all campaigns together", labels=["pbx"]
        )
        max_lines = GaugeMetricFamily(
            "dialer_pbx_max_lines", "The PBX's trunk limit: lines open at once", labels=["pbx"]
        )
        cps = GaugeMetricFamily(
            "dialer_pbx_calls_per_second_limit", "The PBX's trunk limit: new calls per second", labels=["pbx"]
        )
        for member in pool.members:
            in_use.add_metric([member.name], member.lines_in_use)
            max_lines.add_metric([member.name], member.max_lines)
            cps.add_metric([member.name], member.calls_per_second)
        yield from (in_use, max_lines, cps)
        held = GaugeMetricFamily(
            "dialer_campaign_pbx_down",
            "1 when every PBX the campaign may use is down: its dialing is held, the others go on",
            labels=["campaign"],
        )
        for run in self.engine.campaigns.values():
            held.add_metric([run.plan.name], 0.0 if pool.campaign_can_dial(run.plan) else 1.0)
        yield held
        for histogram in pool.roundtrip.collect():
            histogram.samples = [s for s in histogram.samples if not s.name.endswith("_created")]
            yield histogram


@dataclass
class OpsMetrics:
    """What a node serves beside ``NodeCollector``; ``hopper.run`` is a task of the node's services."""

    hopper: HopperSampler
    reloads: Reloads
    collector: OpsCollector


def ops_metrics(db: Database, engine: Engine) -> OpsMetrics:
    hopper = HopperSampler(db, engine)
    reloads = Reloads()
    return OpsMetrics(hopper, reloads, OpsCollector(engine, hopper=hopper, reloads=reloads))
