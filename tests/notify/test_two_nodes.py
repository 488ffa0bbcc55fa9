"""Several workers on one PostgreSQL: every message is claimed by one of them, and sent once."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta

from dialer.notify.messages import Channel, Status
from dialer.notify.smtp import SmtpNotifier
from dialer.notify.store import claim_due, finish
from dialer.notify.worker import DeliveryWorker
from dialer.store.db import Database
from tests.notify.conftest import Clock, MailServer
from tests.notify.helpers import queue, rows, smtp_settings


async def test_two_workers_on_postgresql_never_send_one_message_twice(
    pg_url: str, mail_server: MailServer
) -> None:
    mail_server.start()
    node1, node2 = Database(pg_url), Database(pg_url)  # two nodes: two engines, two pools
    await node1.connect()
    await node2.connect()
    try:
        await node1.migrate()
        await queue(node1, *(f"customer{n}@example.org" for n in range(40)))
        clock = Clock()
        workers = [
            DeliveryWorker(
                node,
                {Channel.EMAIL: SmtpNotifier(smtp_settings(mail_server))},
                batch=4,
                wall=clock,
                rng=random.Random(n),
            )
            for n, node in enumerate((node1, node2))
        ]
        claimed = [0, 0]
        for _ in range(30):
            counts = await asyncio.gather(*(w.send_due() for w in workers))
            claimed = [a + b for a, b in zip(claimed, counts, strict=True)]
            if counts == [0, 0]:
                break
        assert sum(claimed) == 40 and min(claimed) > 0, claimed  # both took part, no message twice
        assert {(r.status, r.attempts) for r in await rows(node1)} == {(Status.SENT, 1)}
        received = mail_server.message_ids()
        assert len(received) == 40 and len(set(received)) == 40
    finally:
        await node1.close()
        await node2.close()


async def test_a_worker_that_outlived_its_lease_cannot_stamp_the_message(lite_db: Database) -> None:
    await queue(lite_db, "bob@example.org")
    clock = Clock()
    lease = timedelta(seconds=60)
    [late] = await claim_due(lite_db, ["email"], now=clock.now, lease_until=clock.now + lease, limit=5)
    assert await claim_due(lite_db, ["email"], now=clock.now, lease_until=clock.now + lease, limit=5) == []
    clock.advance(61)
    [taken] = await claim_due(lite_db, ["email"], now=clock.now, lease_until=clock.now + lease, limit=5)
    assert (late.attempt, taken.attempt, taken.unknown_before) == (1, 2, True)
    assert taken.message.message_id == late.message.message_id
    assert not await finish(lite_db, late, Status.FAILED, now=clock.now, error="too late")
    assert await finish(lite_db, taken, Status.SENT, now=clock.now)
    [row] = await rows(lite_db)
    assert (row.status, row.last_error) == (Status.SENT, None)
