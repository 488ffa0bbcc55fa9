"""Email through a real SMTP server (aiosmtpd): what arrives, and what the table says of it."""

from __future__ import annotations

import logging
import random
from datetime import timedelta
from pathlib import Path

import icalendar
import pytest

from dialer.notify.ical import invitation
from dialer.notify.messages import Attachment, Channel, Status
from dialer.notify.notifier import Outcome
from dialer.notify.smtp import SmtpNotifier
from dialer.notify.store import claim_due
from dialer.notify.worker import DeliveryWorker
from dialer.store.db import Database
from tests.notify.conftest import T0, Clock, MailServer
from tests.notify.helpers import queue, rows, smtp_settings

PDF = b"%PDF-1.4 a confirmation\n%%EOF\n"


def worker(db: Database, server: MailServer, clock: Clock, **options: object) -> DeliveryWorker:
    notifier = SmtpNotifier(smtp_settings(server, **options.pop("smtp", {})))  # type: ignore[arg-type]
    return DeliveryWorker(db, {Channel.EMAIL: notifier}, wall=clock, rng=random.Random(7), **options)  # type: ignore[arg-type]


async def test_invitation_arrives_as_a_calendar_request_with_its_attachments(
    db: Database, mail_server: MailServer
) -> None:
    mail_server.start()
    invite = invitation(
        uid="appointment-12@calls.example",
        sequence=0,
        start=T0 + timedelta(days=2),
        end=T0 + timedelta(days=2, hours=1),
        summary="Visit: heat pump",
        location="12 rue de la Paix, 75002 Paris",
        organizer=("Call center", "rdv@calls.example"),
        attendee=("Ann Seller", "ann@sales.example"),
        now=T0,
    )
    [nid] = await queue(
        db, "ann@sales.example", attachments=[invite, Attachment("offer.pdf", "application/pdf", PDF)]
    )
    clock = Clock()

    assert await worker(db, mail_server, clock).send_due() == 1

    [mail] = mail_server.messages()
    assert mail["To"] == "ann@sales.example" and mail["Subject"] == "Your appointment"
    [row] = await rows(db)
    assert (row.status, row.attempts, row.sent_at) == (Status.SENT, 1, T0)
    # The stable id, on the sender's domain instead of the placeholder one.
    assert mail["Message-ID"] == row.message_id.replace("@dialer.invalid>", "@calls.example>")
    calendars = [p for p in mail.walk() if p.get_content_type() == "text/calendar"]
    assert len(calendars) == 2  # the alternative of the text, and the invite.ics attachment
    assert all(p.get_param("method") == "REQUEST" for p in calendars)
    assert [p.get_filename() for p in calendars] == [None, "invite.ics"]
    event = icalendar.Calendar.from_ical(calendars[1].get_content()).walk("VEVENT")[0]
    assert str(event["UID"]) == "appointment-12@calls.example" and int(event["SEQUENCE"]) == 0
    assert event.decoded("DTSTART") == T0 + timedelta(days=2)
    assert "mailto:ann@sales.example" in str(event["ATTENDEE"]).lower()
    [pdf] = [p for p in mail.walk() if p.get_filename() == "offer.pdf"]
    assert pdf.get_content_type() == "application/pdf" and pdf.get_content() == PDF
    assert mail.get_body(("plain",)).get_content().strip() == "Your appointment is booked."  # type: ignore[union-attr]
    assert nid == row.id


async def test_starttls_and_login(
    lite_db: Database, self_signed: tuple[Path, Path], mail_server: MailServer
) -> None:
    mail_server.tls_cert = self_signed
    mail_server.logins = {"rdv": "s3cret pass"}
    mail_server.start()
    await queue(lite_db, "bob@example.org", "carl@example.org")
    clock = Clock()
    tls = {"starttls": True, "ca_file": str(self_signed[0]), "username": "rdv"}

    wrong = worker(lite_db, mail_server, clock, smtp={**tls, "password": "wrong"})
    assert await wrong.send_due() == 2
    first = await rows(lite_db)
    assert {r.status for r in first} == {Status.PENDING} and mail_server.received == []
    assert all("login refused" in (r.last_error or "") for r in first)  # the operator fixes the password

    clock.advance(3600)
    assert await worker(lite_db, mail_server, clock, smtp={**tls, "password": "s3cret pass"}).send_due() == 2
    assert {r.status for r in await rows(lite_db)} == {Status.SENT}
    assert sorted(m["To"] for m in mail_server.messages()) == ["bob@example.org", "carl@example.org"]
    assert mail_server.logged_in == ["rdv", "rdv"]


async def test_without_starttls_the_server_requiring_it_is_not_sent_the_message_in_clear(
    lite_db: Database, self_signed: tuple[Path, Path], mail_server: MailServer
) -> None:
    mail_server.tls_cert = self_signed
    mail_server.start()
    await queue(lite_db, "bob@example.org")
    await worker(lite_db, mail_server, Clock()).send_due()
    [row] = await rows(lite_db)
    assert row.status == Status.PENDING and mail_server.received == []
    assert "530" in (row.last_error or "")


async def test_mail_server_down_for_a_while_every_message_arrives_exactly_once(
    db: Database, mail_server: MailServer
) -> None:
    ids = await queue(db, *(f"customer{n}@example.org" for n in range(6)))
    clock = Clock()
    w = worker(db, mail_server, clock, backoff_s=30.0, backoff_max_s=600.0)

    # Down: every try fails, the pause between tries grows, nothing is lost.
    pauses: list[float] = []
    for attempt in (1, 2, 3):
        assert await w.send_due() == 6
        pending = await rows(db)
        assert {r.status for r in pending} == {Status.PENDING}
        assert {r.attempts for r in pending} == {attempt}
        assert all("ConnectError" in (r.last_error or "") for r in pending)
        waits = [(r.next_try_at - clock.now).total_seconds() for r in pending]  # type: ignore[operator]
        assert all(15.0 * 2 ** (attempt - 1) <= s <= 30.0 * 2 ** (attempt - 1) for s in waits), waits
        assert len(set(waits)) > 1  # jitter: they do not all come back together
        pauses.append(max(waits))
        clock.advance(1)
        assert await w.send_due() == 0  # not due yet
        clock.advance(max(waits))
    assert pauses == sorted(pauses)
    assert mail_server.received == []

    mail_server.start()
    assert await w.send_due() == 6
    clock.advance(3600)
    assert await w.send_due() == 0
    final = await rows(db)
    assert [r.id for r in final] == ids
    assert {(r.status, r.attempts) for r in final} == {(Status.SENT, 4)}
    received = mail_server.message_ids()
    assert len(received) == 6 and len(set(received)) == 6
    assert sorted(received) == sorted(
        r.message_id.replace("@dialer.invalid>", "@calls.example>") for r in final
    )


async def test_refused_recipient_fails_at_once_with_the_reason_masked(
    lite_db: Database, mail_server: MailServer
) -> None:
    mail_server.start()
    await queue(lite_db, "nobody@example.org", "later@example.org", "ok@example.org")
    await worker(lite_db, mail_server, Clock()).send_due()
    refused, deferred, sent = await rows(lite_db)
    assert refused.status == Status.FAILED and refused.attempts == 1
    assert "550" in (refused.last_error or "") and "no such mailbox" in (refused.last_error or "")
    assert "nobody@" not in (refused.last_error or "")  # the address is masked
    assert deferred.status == Status.PENDING and "451" in (deferred.last_error or "")
    assert sent.status == Status.SENT
    assert [m["To"] for m in mail_server.messages()] == ["ok@example.org"]


async def test_gives_up_after_max_attempts_and_a_retry_sends_it(
    lite_db: Database, mail_server: MailServer
) -> None:
    from dialer.notify.store import retry_notification

    [nid] = await queue(lite_db, "bob@example.org")
    clock = Clock()
    w = worker(lite_db, mail_server, clock, max_attempts=3, backoff_s=10.0)
    for _ in range(5):
        await w.send_due()
        clock.advance(3600)
    [row] = await rows(lite_db)
    assert row.status == Status.FAILED and row.attempts == 3
    assert (row.last_error or "").startswith("gave up after 3 tries: mail server 127.0.0.1")

    mail_server.start()
    await w.send_due()
    assert mail_server.received == []  # failed stays failed until someone says so
    await retry_notification(lite_db, nid, now=clock.now)
    await w.send_due()
    [row] = await rows(lite_db)
    assert row.status == Status.SENT and len(mail_server.received) == 1


async def test_a_try_without_outcome_is_sent_again_after_its_lease_with_the_same_message_id(
    db: Database, mail_server: MailServer
) -> None:
    mail_server.start()
    await queue(db, "bob@example.org")
    clock = Clock()
    notifier = SmtpNotifier(smtp_settings(mail_server))
    # A worker claims the message, the server accepts it, and the worker dies before it stamps SENT.
    [claim] = await claim_due(
        db, ["email"], now=clock.now, lease_until=clock.now + timedelta(seconds=300), limit=10
    )
    assert (await notifier.send(claim.message)).outcome is Outcome.ACCEPTED
    w = worker(db, mail_server, clock, lease_s=300.0)
    clock.advance(299)
    assert await w.send_due() == 0  # still leased: nobody else sends it
    clock.advance(2)
    assert await w.send_due() == 1
    [row] = await rows(db)
    assert (row.status, row.attempts) == (Status.SENT, 2)
    first, second = mail_server.message_ids()
    assert first == second  # the receiver can tell the copy


async def test_a_server_that_never_answers_is_a_timeout_and_retried(lite_db: Database) -> None:
    import asyncio

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # accepts the connection, never greets

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        await queue(lite_db, "bob@example.org")
        mute = MailServer(port=port)
        await worker(lite_db, mute, Clock(), smtp={"timeout_s": 0.3}).send_due()
    finally:
        server.close()
    [row] = await rows(lite_db)
    assert row.status == Status.PENDING and "Timeout" in (row.last_error or "")


async def test_logs_never_show_a_full_address(
    lite_db: Database, mail_server: MailServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="dialer")
    caplog.set_level(logging.DEBUG, logger="aiosmtplib")
    await queue(lite_db, "nobody@example.org", "bob@example.org")
    clock = Clock()
    w = worker(lite_db, mail_server, clock)
    await w.send_due()  # down
    mail_server.start()
    clock.advance(3600)
    await w.send_due()  # one refused, one sent
    assert len(mail_server.received) == 1
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith(("dialer", "aiosmtplib")))
    assert "bob@example.org" not in ours and "nobody@example.org" not in ours
    assert "b***@example.org" in ours


async def test_an_address_with_a_line_break_fails_without_reaching_the_server(
    lite_db: Database, mail_server: MailServer
) -> None:
    mail_server.start()
    await queue(lite_db, "bob@example.org\r\nBcc: everyone@example.org")
    await worker(lite_db, mail_server, Clock()).send_due()
    [row] = await rows(lite_db)
    assert row.status == Status.FAILED and "cannot be written as an email" in (row.last_error or "")
    assert mail_server.received == []


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # the server's TLS is implicit
async def test_implicit_tls_and_login(
    lite_db: Database, self_signed: tuple[Path, Path], mail_server: MailServer
) -> None:
    mail_server.tls_cert, mail_server.implicit_tls = self_signed, True
    mail_server.logins = {"rdv": "pw"}
    mail_server.start()
    await queue(lite_db, "bob@example.org")
    tls = {
        "starttls": False,
        "tls": True,
        "ca_file": str(self_signed[0]),
        "username": "rdv",
        "password": "pw",
    }
    await worker(lite_db, mail_server, Clock(), smtp=tls).send_due()
    assert [(r.status, r.last_error) for r in await rows(lite_db)] == [(Status.SENT, None)]
    assert mail_server.logged_in == ["rdv"]
