"""Email over SMTP: STARTTLS (or implicit TLS), login, a timeout; invitations calendars import.

The message keeps the notification's Message-ID on every try, so when a try's
outcome is unknown (the connection dropped after the data was sent, or the
worker died) and the message is sent again, the receiving side sees the same
id and can drop the second copy.

An iCalendar invitation (the row's ``ical``, or an attachment named ``*.ics``
or typed ``text/calendar``) goes twice, as mail clients expect: as the
``text/calendar; method=REQUEST`` alternative of the text (Outlook and Gmail
offer "accept" from it) and as an ``invite.ics`` attachment (others import it).

Answers: 2xx accepted; 4xx, a refused connection, a timeout, a dropped line,
and a refusal before the recipient (the greeting, the sender, a login, TLS
required: the settings or the server are wrong, the operator fixes them and
the messages wait) are temporary; 5xx to the recipient or to the data is
permanent: this message cannot go.
"""

from __future__ import annotations

import logging
import ssl
from email.message import EmailMessage
from email.utils import formatdate, parseaddr

import aiosmtplib

from dialer.notify.config import SmtpSettings
from dialer.notify.messages import Attachment
from dialer.notify.notifier import OutgoingMessage, SendResult, mask_recipient, scrub

log = logging.getLogger(__name__)

PLACEHOLDER_DOMAIN = "@dialer.invalid>"  # queue_notification's default Message-ID domain


def is_calendar(attachment: Attachment) -> bool:
    return attachment.filename.lower().endswith(".ics") or attachment.content_type.lower().startswith(
        "text/calendar"
    )


def calendar_method(ical: str) -> str:
    """The invitation's METHOD (REQUEST, CANCEL, ...); REQUEST when it says none."""
    for line in ical.splitlines():
        if line.upper().startswith("METHOD:"):
            return line.split(":", 1)[1].strip().upper() or "REQUEST"
    return "REQUEST"


class SmtpNotifier:
    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self._tls_context: ssl.SSLContext | None = None
        if settings.ca_file:
            self._tls_context = ssl.create_default_context(cafile=settings.ca_file)
        domain = settings.message_domain or parseaddr(settings.sender)[1].rpartition("@")[2]
        self._message_domain = domain or "dialer.invalid"

    def message_id(self, message: OutgoingMessage) -> str:
        """The row's Message-ID, on the sender's domain when it was queued with the placeholder one."""
        if message.message_id.endswith(PLACEHOLDER_DOMAIN):
            return message.message_id[: -len(PLACEHOLDER_DOMAIN)] + f"@{self._message_domain}>"
        return message.message_id

    def build(self, message: OutgoingMessage) -> EmailMessage:
        """The MIME message of a notification (pure: the tests read it back)."""
        mail = EmailMessage()
        mail["From"] = self.settings.sender
        mail["To"] = message.recipient
        mail["Subject"] = message.subject
        mail["Date"] = formatdate(usegmt=True)
        mail["Message-ID"] = self.message_id(message)
        mail.set_content(message.body)
        calendars = [message.ical] if message.ical else []
        calendars += [a.data.decode("utf-8") for a in message.attachments if is_calendar(a)]
        if calendars:
            first = calendars[0]
            mail.add_alternative(first, subtype="calendar", params={"method": calendar_method(first)})
        for n, text in enumerate(calendars):
            mail.add_attachment(
                text,
                subtype="calendar",
                filename="invite.ics" if n == 0 else f"invite-{n + 1}.ics",
                params={"method": calendar_method(text)},
            )
        for attachment in message.attachments:
            if is_calendar(attachment):
                continue
            maintype, _, subtype = attachment.content_type.partition(";")[0].strip().partition("/")
            mail.add_attachment(
                attachment.data,
                maintype=maintype or "application",
                subtype=subtype or "octet-stream",
                filename=attachment.filename,
            )
        return mail

    async def send(self, message: OutgoingMessage) -> SendResult:
        s = self.settings
        try:
            mail = self.build(message)
        except (ValueError, TypeError, UnicodeDecodeError) as exc:  # a line break in the address, ...
            return SendResult.permanent(f"the message cannot be written as an email: {scrub(str(exc))}")
        try:
            await aiosmtplib.send(
                mail,
                hostname=s.host,
                port=s.port,
                username=s.username or None,
                password=s.password or None,
                use_tls=s.tls,
                start_tls=s.starttls,
                timeout=s.timeout_s,
                tls_context=self._tls_context,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            reason = "; ".join(f"{r.code} {scrub(r.message)}" for r in exc.recipients)
            if all(400 <= c < 500 for c in codes):
                return SendResult.temporary(f"recipient deferred: {reason}")
            return SendResult.permanent(f"recipient refused: {reason}")
        except aiosmtplib.SMTPAuthenticationError as exc:
            log.error(
                "notification %d: the mail server %s refused the login (%d); check [notify.smtp] username "
                "and password",
                message.id,
                s.host,
                exc.code,
            )
            return SendResult.temporary(f"SMTP login refused ({exc.code}): check [notify.smtp] credentials")
        except aiosmtplib.SMTPDataError as exc:  # the server read this message and said what of it
            what = f"{exc.code} {scrub(exc.message)}"
            if 500 <= exc.code < 600:
                return SendResult.permanent(f"mail server refused the message: {what}")
            return SendResult.temporary(f"mail server deferred the message: {what}")
        except aiosmtplib.SMTPResponseException as exc:
            # Refused before the recipient (greeting, HELO, sender, TLS required): the server or the
            # settings, not this message; every message waits until the operator fixes it.
            log.error(
                "notification %d: the mail server %s refused the session: %d %s",
                message.id,
                s.host,
                exc.code,
                scrub(exc.message),
            )
            return SendResult.temporary(f"mail server refused the session: {exc.code} {scrub(exc.message)}")
        except (aiosmtplib.SMTPException, OSError) as exc:  # refused, unreachable, timeout, dropped, TLS
            return SendResult.temporary(
                f"mail server {s.host}:{s.port}: {type(exc).__name__}: {scrub(str(exc))}"
            )
        log.info(
            "notification %d: mail to %s accepted by %s",
            message.id,
            mask_recipient(message.recipient),
            s.host,
        )
        return SendResult.accepted()
