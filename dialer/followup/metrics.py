"""The follow-up deadlines as Prometheus gauges, refreshed from the database every half minute.

A scrape never waits for the database: ``run`` settles and counts the tasks
(one grouped query) every ``every_s`` seconds and ``collect`` serves the last
counts.  The same counts as ``GET /api/followup/summary`` and the supervisor page.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from dialer.followup.board import FollowupBoard, Summary
from dialer.followup.levels import Kind, Level
from dialer.store.db import Database

log = logging.getLogger(__name__)

REFRESH_S = 30.0


class FollowupGauges(Collector):
    def __init__(self, db: Database, wall: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.board = FollowupBoard(db)
        self._wall = wall
        self.summary: Summary | None = None  # None until the first refresh
        self.failures = 0

    async def refresh(self) -> Summary:
        self.summary = await self.board.summary(self._wall())
        return self.summary

    async def run(self, stop: asyncio.Event, every_s: float = REFRESH_S) -> None:
        """Refresh until ``stop`` is set; a database that does not answer is logged once per outage."""
        while not stop.is_set():
            try:
                await self.refresh()
                self.failures = 0
            except Exception as exc:  # the node keeps running without these gauges (database down, ...)
                self.failures += 1
                if self.failures == 1:
                    log.warning("follow-up metrics not refreshed: %s; retried every %.0f s", exc, every_s)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every_s)

    def collect(self) -> Iterator[Metric]:
        overdue = GaugeMetricFamily(
            "dialer_followup_overdue",
            "Follow-up tasks past their due time and not done, by kind",
            labels=["kind"],
        )
        tasks = GaugeMetricFamily(
            "dialer_followup_tasks",
            "Follow-up tasks by kind and level (open, overdue, met, missed, refused)",
            labels=["kind", "level"],
        )
        callbacks = GaugeMetricFamily(
            "dialer_callbacks_overdue", "Booked callbacks past their deadline and not yet dialed"
        )
        if self.summary is not None:
            for kind in Kind:
                tally = self.summary.kinds[kind]
                overdue.add_metric([kind.value], tally.overdue)
                for lvl in Level:
                    tasks.add_metric([kind.value, lvl.value], getattr(tally, lvl.value))
            callbacks.add_metric([], self.summary.callbacks_overdue)
        yield from (overdue, tasks, callbacks)
