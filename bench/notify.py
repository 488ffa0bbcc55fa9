"""Notification delivery: messages per second through the worker to a real SMTP server, and an outage.

A local aiosmtpd server receives; the worker claims, sends (one SMTP connection per message, the
batch side by side) and stamps each message, on SQLite or PostgreSQL.  Then the same messages
again with the server down for the first minutes of a virtual clock: every message must arrive
exactly once when it is back (Message-IDs counted at the server).

    .venv/bin/python bench/notify.py                       # 500 messages on SQLite
    .venv/bin/python bench/notify.py --db postgresql://postgres@127.0.0.1/test --messages 1000

Ends with one line per run:
RESULT bench=notify db=<sqlite|postgresql> scenario=<steady|outage> messages=... seconds=...
  per_s=... received=... distinct_message_ids=... tries_per_message=...
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dialer.notify.config import SmtpSettings
from dialer.notify.messages import Channel, Notification, Status, queue_notification
from dialer.notify.smtp import SmtpNotifier
from dialer.notify.worker import DeliveryWorker
from dialer.store.db import Database


class Inbox:
    def __init__(self) -> None:
        self.ids: list[str] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        for line in envelope.content.split(b"\r\n"):
            if line.lower().startswith(b"message-id:"):
                with self.lock:
                    self.ids.append(line.split(b":", 1)[1].strip().decode())
                break
        return "250 OK"


class VirtualClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def fill(db: Database, n: int, now: datetime) -> None:
    async with db.session() as s, s.begin():
        for i in range(n):
            queue_notification(
                s,
                channel=Channel.EMAIL,
                recipient=f"customer{i}@example.org",
                subject="Your appointment",
                body="Your appointment is booked for Monday 9:00.\n" * 5,
                reason="appointment.booked",
                ref=f"appointment:{i}",
                now=now,
            )


async def tries(db: Database) -> tuple[int, int]:
    async with db.session() as s:
        sent = await s.scalar(
            select(func.count()).select_from(Notification).where(Notification.status == Status.SENT.value)
        )
        total = await s.scalar(select(func.sum(Notification.attempts)))
    return int(sent or 0), int(total or 0)


async def run(urls: dict[str, str], label: str, messages: int) -> None:
    """One run per scenario, each on its own fresh database (``urls``: scenario -> URL)."""
    port = free_port()
    smtp = SmtpSettings(
        host="127.0.0.1", port=port, sender="rdv@calls.example", starttls=False, timeout_s=10.0
    )
    for scenario, url in urls.items():
        inbox = Inbox()
        controller = Controller(inbox, hostname="127.0.0.1", port=port)
        db = Database(url)
        await db.connect()
        await db.migrate()
        try:
            if scenario == "steady":
                controller.start()
                await fill(db, messages, datetime.now(UTC))
                worker = DeliveryWorker(db, {Channel.EMAIL: SmtpNotifier(smtp)}, batch=20, poll_s=0.05)
                stop = asyncio.Event()
                started = time.perf_counter()
                task = asyncio.create_task(worker.run(stop))
                deadline = started + 300
                while time.perf_counter() < deadline:
                    if len(inbox.ids) >= messages:
                        break
                    await asyncio.sleep(0.02)
                seconds = time.perf_counter() - started
                stop.set()
                await task
            else:
                clock = VirtualClock()
                await fill(db, messages, clock.now)
                worker = DeliveryWorker(
                    db,
                    {Channel.EMAIL: SmtpNotifier(smtp)},
                    batch=50,
                    backoff_s=30.0,
                    backoff_max_s=600.0,
                    wall=clock,
                    rng=random.Random(1),
                )
                started = time.perf_counter()
                for minute in range(60):  # an hour, a pass every 10 s; the server is down for 20 min
                    if minute == 20:
                        controller.start()
                    for _ in range(6):
                        while await worker.send_due():
                            pass
                        clock.now += timedelta(seconds=10)
                seconds = time.perf_counter() - started
            sent, attempts = await tries(db)
            assert sent == messages, (scenario, sent, messages)
            print(
                f"RESULT bench=notify db={label} scenario={scenario} messages={messages} "
                f"seconds={seconds:.2f} "
                f"per_s={messages / seconds:.0f} received={len(inbox.ids)} "
                f"distinct_message_ids={len(set(inbox.ids))} tries_per_message={attempts / messages:.2f}",
                flush=True,
            )
        finally:
            controller.stop()
            await db.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument(
        "--db", help="a PostgreSQL URL whose server may get scratch databases; default SQLite"
    )
    args = parser.parse_args()
    scenarios = ("steady", "outage")
    if not args.db:
        with tempfile.TemporaryDirectory() as tmp:
            urls = {s: f"sqlite+aiosqlite:///{tmp}/{s}.db" for s in scenarios}
            asyncio.run(run(urls, "sqlite", args.messages))
        return
    import asyncpg

    admin = args.db.replace("postgresql+asyncpg://", "postgresql://")
    names = {s: f"bench_notify_{s}_{uuid.uuid4().hex[:8]}" for s in scenarios}

    async def admin_sql(sql: str) -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    for name in names.values():
        asyncio.run(admin_sql(f'CREATE DATABASE "{name}"'))
    try:
        base = admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
        asyncio.run(run({s: f"{base}/{n}" for s, n in names.items()}, "postgresql", args.messages))
    finally:
        for name in names.values():
            asyncio.run(admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
