"""The node runs the delivery worker when [notify] is configured: woken by a use case, counted in metrics."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from dialer.notify.config import NotifySettings
from dialer.notify.worker import wake_workers
from dialer.runtime.bootstrap import build_runtime
from dialer.runtime.services import start_services
from dialer.settings import Settings
from dialer.store.db import Database
from tests.notify.conftest import MailServer, free_port
from tests.notify.helpers import queue, smtp_settings
from tests.runtime.fakes import FakePbx


async def test_the_node_sends_a_queued_message_when_woken_and_counts_it(
    tmp_path: Path, mail_server: MailServer
) -> None:
    mail_server.start()
    url = f"sqlite+aiosqlite:///{tmp_path / 'dialer.db'}"
    async with Database(url) as db:
        await db.migrate()
    notify = NotifySettings(smtp=smtp_settings(mail_server), poll_s=60.0)  # only a wake sends it in time
    runtime = await build_runtime(Settings(database_url=url, node_id="n1", notify=notify), pbx=FakePbx())
    stop = asyncio.Event()
    services = None
    try:
        metrics_port = free_port()
        services = await start_services(
            runtime, stop, host="127.0.0.1", port=0, serve_api=False, metrics=("127.0.0.1", metrics_port)
        )
        assert services.notifier is not None
        await asyncio.sleep(0.2)  # the worker's first pass found nothing and waits for 60 s
        await queue(runtime.db, "bob@example.org", now=datetime.now(UTC))
        wake_workers()  # what a use case does after its commit
        for _ in range(100):
            if mail_server.received and services.notifier.counts:
                break
            await asyncio.sleep(0.05)
        assert [m["To"] for m in mail_server.messages()] == ["bob@example.org"]
        async with httpx.AsyncClient(timeout=10.0) as client:
            reply = await client.get(f"http://127.0.0.1:{metrics_port}/metrics")
        families = {f.name: f for f in text_string_to_metric_families(reply.text)}
        samples = {
            (s.labels["channel"], s.labels["status"]): s.value
            for s in families["dialer_notifications"].samples
        }
        assert samples == {("email", "sent"): 1}
    finally:
        stop.set()
        if services is not None:
            await services.stop()
        await runtime.close()


async def test_without_notify_settings_no_worker_runs(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'dialer.db'}"
    async with Database(url) as db:
        await db.migrate()
    runtime = await build_runtime(Settings(database_url=url, node_id="n1"), pbx=FakePbx())
    stop = asyncio.Event()
    try:
        services = await start_services(runtime, stop, host="127.0.0.1", port=0, serve_api=False)
        assert services.notifier is None
        assert "notify-worker" not in {t.get_name() for t in services.tasks}
    finally:
        stop.set()
        await services.stop()
        await runtime.close()
