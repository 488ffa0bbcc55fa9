"""``dialer_notifications{channel,status}``: how many messages there are of each channel and status.

Read from the delivery worker's counts, refreshed after each of its passes, so
a scrape never queries the database.  A growing ``status="pending"`` or any
``status="failed"`` is what to look at (``dialer notify list --status failed``).
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from dialer.notify.worker import DeliveryWorker

METRIC = "dialer_notifications"


class NotificationCollector(Collector):
    def __init__(self, worker: DeliveryWorker) -> None:
        self.worker = worker

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            METRIC,
            "Messages to people (email, SMS, letters) by channel and status",
            labels=["channel", "status"],
        )
        for (channel, status), count in sorted(self.worker.counts.items()):
            family.add_metric([channel, status], count)
        yield family
