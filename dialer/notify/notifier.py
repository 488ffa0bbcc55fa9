"""One interface for every way a message leaves: send one message, say how it went.

A notifier never raises for a failed send: it answers :class:`SendResult` —
accepted, a temporary failure (try again later: the server is down, busy or
timed out) or a permanent one (the address does not exist, the gateway refuses
the number): the worker turns that into SENT, a retry with backoff, or FAILED.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Protocol

from dialer.notify.messages import Attachment, Notification
from telephony.base import mask_number


class Outcome(enum.StrEnum):
    ACCEPTED = "accepted"
    TEMPORARY = "temporary"
    PERMANENT = "permanent"


@dataclass(frozen=True, slots=True)
class SendResult:
    outcome: Outcome
    reason: str = ""  # why it failed, for last_error; no address, number or secret in it

    @classmethod
    def accepted(cls) -> SendResult:
        return cls(Outcome.ACCEPTED)

    @classmethod
    def temporary(cls, reason: str) -> SendResult:
        return cls(Outcome.TEMPORARY, reason)

    @classmethod
    def permanent(cls, reason: str) -> SendResult:
        return cls(Outcome.PERMANENT, reason)


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """What a notifier needs of a notification row."""

    id: int
    channel: str
    recipient: str
    subject: str
    body: str
    message_id: str  # stable across retries: the receiver can drop a second copy
    attachments: tuple[Attachment, ...] = ()
    ical: str | None = None

    @classmethod
    def of(cls, row: Notification) -> OutgoingMessage:
        return cls(
            id=row.id,
            channel=row.channel,
            recipient=row.recipient,
            subject=row.subject,
            body=row.body,
            message_id=row.message_id,
            attachments=tuple(Attachment.from_json(a) for a in row.attachments or ()),
            ical=row.ical,
        )


class Notifier(Protocol):
    async def send(self, message: OutgoingMessage) -> SendResult:
        """Send one message; never raises for a failed send (only for a bug)."""
        ...


def mask_recipient(recipient: str) -> str:
    """An address or a number as logs may show it: ``j***@example.com``, ``+33******789``."""
    if "@" in recipient:
        local, _, domain = recipient.rpartition("@")
        return f"{local[:1]}***@{domain}"
    return mask_number(recipient)


_ADDRESS = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
_NUMBER = re.compile(r"\+?\d[\d ().\-/]{5,}\d")
_DATE = re.compile(r"\d{4}-\d\d-\d\d")


def _mask_number_like(match: re.Match[str]) -> str:
    found = match.group(0)
    # A phone number has 8 digits or more; a date or an SMTP code ("550 5.1.1") stays readable.
    if _DATE.match(found) or sum(c.isdigit() for c in found) < 8:
        return found
    return mask_number(found)


def scrub(text: str, limit: int = 300) -> str:
    """A server's or gateway's words made fit for last_error: addresses and numbers masked, cut short."""
    text = _ADDRESS.sub(lambda m: mask_recipient(m.group(0)), text)
    text = _NUMBER.sub(_mask_number_like, text)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
