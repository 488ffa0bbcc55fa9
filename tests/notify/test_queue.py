"""Messages are written with what caused them: by the person's preferred channel, and only on commit."""

from __future__ import annotations

from dialer.notify.messages import Attachment, queue_notification
from dialer.notify.routing import queue_routed, route
from dialer.service.uow import SqlUnitOfWork
from dialer.store.db import Database
from tests.notify.conftest import T0
from tests.notify.helpers import rows

PDF = Attachment("confirmation.pdf", "application/pdf", b"%PDF-1.4\n")


async def test_a_message_exists_only_if_its_unit_of_work_commits(lite_db: Database) -> None:
    for commit in (False, True):
        async with SqlUnitOfWork(lite_db) as uow:
            queue_notification(
                uow.session,
                channel="email",
                recipient="a@b.org",
                subject="s",
                body="b",
                reason="sale.confirmed",
                ref=f"sale:{int(commit)}",
                now=T0,
            )
            if commit:
                await uow.commit()
    assert [r.ref for r in await rows(lite_db)] == ["sale:1"]


async def test_queue_routed_follows_the_preference(lite_db: Database) -> None:
    contacts = {"email": "ann@example.org", "phone": "+33612345678"}
    async with lite_db.session() as s, s.begin():
        for preferred in ("email", "sms", "phone"):
            queue_routed(
                s,
                route(preferred, **contacts),
                subject="Your visit",
                body="A long letter about your visit, with the offer attached.",
                sms_text="Visit Mon 9:00",
                reason="appointment.booked",
                now=T0,
                attachments=[PDF],
            )
    by_mail, by_sms = await rows(lite_db)  # telephone preferred: no message
    assert (by_mail.channel, by_mail.recipient, len(by_mail.attachments or [])) == (
        "email",
        "ann@example.org",
        1,
    )
    assert (by_sms.channel, by_sms.body, by_sms.attachments) == ("sms", "Visit Mon 9:00", None)
    assert by_mail.message_id != by_sms.message_id
