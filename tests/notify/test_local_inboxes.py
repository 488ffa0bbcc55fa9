"""The demo's inboxes are a real SMTP server and SMS gateway: the delivery worker sends to them."""

from __future__ import annotations

import json
from pathlib import Path

from dialer.notify.messages import Attachment, queue_notification
from dialer.notify.sink import LocalInboxes
from dialer.notify.worker import DeliveryWorker
from dialer.service.uow import SqlUnitOfWork
from dialer.store.db import Database
from tests.notify.conftest import T0


async def test_the_worker_delivers_email_and_sms_into_the_local_inboxes(
    lite_db: Database, tmp_path: Path
) -> None:
    inboxes = await LocalInboxes.start(tmp_path / "inboxes")
    try:
        async with SqlUnitOfWork(lite_db) as uow:
            queue_notification(
                uow.session,
                channel="email",
                recipient="client@example.org",
                subject="Your order",
                body="Thank you.",
                reason="sale.confirmed",
                now=T0,
                attachments=[Attachment("confirmation.pdf", "application/pdf", b"%PDF-1.4\n")],
            )
            queue_notification(
                uow.session,
                channel="sms",
                recipient="+33612345678",
                subject="",
                body="See you Tuesday at 10:00",
                reason="appointment.booked",
                now=T0,
            )
            await uow.commit()
        worker = DeliveryWorker.from_settings(lite_db, inboxes.notify_settings(), wall=lambda: T0)
        assert await worker.send_due() == 2
        [mail] = inboxes.received.emails()
        assert mail["Subject"] == "Your order"
        assert [p.get_filename() for p in mail.iter_attachments()] == ["confirmation.pdf"]
        [sms] = inboxes.received.sms
        fields = json.loads(sms.read_text(encoding="utf-8"))
        assert fields["to"] == "+33612345678" and fields["text"] == "See you Tuesday at 10:00"
    finally:
        await inboxes.stop()
