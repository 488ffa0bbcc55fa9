"""Which channel a message to a person goes by: their preference first, and why when none fits.

The rule (the lead's or the customer record's ``preferred_channel``):

1. ``email`` with an address on record: by email.  ``sms`` with a mobile
   number on record: by SMS.
2. ``phone`` / ``telephone`` (or nothing recorded: the telephone is how they
   were reached): no written message; a follow-up call is the answer
   (``Route.channel`` is None, ``Route.call_instead`` is True).
3. The preferred written channel is impossible (no address; a landline for
   an SMS): no message either; a follow-up call, and ``reason`` says what is
   missing so the agent can ask for it.
4. A message the person must receive in writing (``required=True``: a sale's
   confirmation, a withdrawal form) goes anyway, by the first that works of
   the preferred channel, email, SMS, and a letter by post (an address on
   record); with none, ``channel`` is None and ``reason`` says what is missing.

:func:`route` is pure (no database, no clock); :func:`queue_routed` writes the
routed message into the caller's unit of work.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import phonenumbers
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.notify.messages import Attachment, Channel, Notification, queue_notification

TELEPHONE = "phone"
_TELEPHONE_NAMES = {"phone", "telephone", "tel", "call", ""}
_WRITTEN = {"email": Channel.EMAIL, "sms": Channel.SMS, "post": Channel.POST}


@dataclass(frozen=True, slots=True)
class Route:
    channel: Channel | None  # None: no written message
    recipient: str | None  # the address, number or postal address to send to
    reason: str  # why this channel, or why none
    call_instead: bool = False  # a follow-up call stands for the message (telephone preferred, or no way)


def is_mobile(number: str) -> bool:
    """An E.164 number that can take an SMS (mobile, or a plan that does not say)."""
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return False
    kind = phonenumbers.number_type(parsed)
    return phonenumbers.is_valid_number(parsed) and kind in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    )


def _usable(channel: Channel, email: str | None, phone: str | None, address: str | None) -> str | None:
    if channel is Channel.EMAIL:
        return email if email and "@" in email.strip("@") else None
    if channel is Channel.SMS:
        return phone if phone and is_mobile(phone) else None
    return address if address and address.strip() else None


_MISSING = {
    Channel.EMAIL: "no email address on record",
    Channel.SMS: "no mobile number on record",
    Channel.POST: "no postal address on record",
}


def route(
    preferred: str | None,
    *,
    email: str | None,
    phone: str | None,
    address: str | None = None,
    required: bool = False,
) -> Route:
    """The channel of a message to a person with these contacts; see the module's rule."""
    name = (preferred or "").strip().lower()
    if name not in _TELEPHONE_NAMES and name not in _WRITTEN:
        raise ValueError(f"preferred channel {preferred!r} is not phone, email or sms")
    wanted = _WRITTEN.get(name)
    if wanted is not None:
        recipient = _usable(wanted, email, phone, address)
        if recipient is not None:
            return Route(wanted, recipient, f"prefers {wanted.value}")
    if not required:
        if wanted is None:
            return Route(None, None, "prefers the telephone: a follow-up call, no written message", True)
        return Route(
            None, None, f"prefers {wanted.value} but {_MISSING[wanted]}: a follow-up call; ask for it", True
        )
    why = "prefers the telephone" if wanted is None else f"prefers {wanted.value} but {_MISSING[wanted]}"
    for fallback in (Channel.EMAIL, Channel.SMS, Channel.POST):
        recipient = _usable(fallback, email, phone, address)
        if recipient is not None:
            return Route(fallback, recipient, f"{why}; this must be in writing: by {fallback.value}")
    return Route(
        None,
        None,
        f"{why}; this must be in writing but there is no email address, mobile number or postal address "
        "on record: ask the customer for one",
        True,
    )


def queue_routed(
    s: AsyncSession,
    chosen: Route,
    *,
    subject: str,
    body: str,
    reason: str,
    now: datetime,
    sms_text: str | None = None,
    ref: str | None = None,
    attachments: Sequence[Attachment] = (),
    campaign_id: int | None = None,
    customer_id: int | None = None,
) -> Notification | None:
    """Queue the message by its route in the caller's transaction; None when the route says no message.

    An SMS carries ``sms_text`` (short) instead of the body, and no attachment.
    """
    if chosen.channel is None or chosen.recipient is None:
        return None
    is_sms = chosen.channel is Channel.SMS
    return queue_notification(
        s,
        channel=chosen.channel,
        recipient=chosen.recipient,
        subject=subject,
        body=(sms_text or body) if is_sms else body,
        reason=reason,
        now=now,
        ref=ref,
        attachments=() if is_sms else attachments,
        campaign_id=campaign_id,
        customer_id=customer_id,
    )
