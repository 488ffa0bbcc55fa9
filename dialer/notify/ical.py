"""An appointment as an iCalendar invitation (RFC 5545 / iTIP RFC 5546) a calendar can import.

    invite = invitation(
        uid="appointment-12@dialer", sequence=0, method="REQUEST",
        start=..., end=..., summary="Visit: heat pump", location="12 rue X, 75011 Paris",
        organizer=("Call center", "rdv@example.com"), attendee=("Ann Seller", "ann@example.com"),
        now=now,
    )
    queue_notification(s, channel="email", recipient="ann@example.com", ..., attachments=[invite])

The UID stays the same for one appointment's whole life: booking it is
``sequence=0``, moving it sends the same UID with ``sequence`` raised by one
(calendars replace the event), cancelling it sends ``method="CANCEL"`` with the
next sequence (calendars remove it).  Times are written in UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from icalendar import Calendar, Event, vCalAddress, vText

from dialer.notify.messages import Attachment

Method = Literal["REQUEST", "CANCEL"]
PRODID = "-//dialer//appointments//EN"


def _utc(when: datetime, what: str) -> datetime:
    if when.tzinfo is None:
        raise ValueError(f"{what} must carry a time zone (got {when.isoformat()}); give an aware datetime")
    return when.astimezone(UTC)


def _address(person: tuple[str, str], role: str | None = None) -> vCalAddress:
    name, email = person
    address = vCalAddress(f"mailto:{email}")
    address.params["CN"] = vText(name)
    if role is not None:
        address.params["ROLE"] = vText(role)
        address.params["PARTSTAT"] = vText("NEEDS-ACTION")
        address.params["RSVP"] = vText("TRUE")
    return address


def invitation_text(
    *,
    uid: str,
    sequence: int,
    start: datetime,
    end: datetime,
    summary: str,
    organizer: tuple[str, str],
    attendee: tuple[str, str],
    now: datetime,
    location: str = "",
    description: str = "",
    method: Method = "REQUEST",
) -> str:
    """The VCALENDAR text of one invitation (or its cancellation)."""
    start, end, now = _utc(start, "start"), _utc(end, "end"), _utc(now, "now")
    if end <= start:
        raise ValueError(f"the appointment ends ({end.isoformat()}) before it starts ({start.isoformat()})")
    if sequence < 0:
        raise ValueError("sequence counts the changes of one appointment: 0 when booked, +1 at each move")
    if method not in ("REQUEST", "CANCEL"):
        raise ValueError(f"method {method!r} is not REQUEST or CANCEL")
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("method", method)
    event = Event()
    event.add("uid", uid)
    event.add("sequence", sequence)
    event.add("dtstamp", now)
    event.add("dtstart", start)
    event.add("dtend", end)
    event.add("summary", summary)
    if description:
        event.add("description", description)
    if location:
        event.add("location", location)
    event.add("organizer", _address(organizer))
    event.add("attendee", _address(attendee, "REQ-PARTICIPANT"))
    event.add("status", "CANCELLED" if method == "CANCEL" else "CONFIRMED")
    event.add("transp", "OPAQUE")
    calendar.add_component(event)
    text: str = calendar.to_ical().decode("utf-8")
    return text


def invitation(
    *,
    uid: str,
    sequence: int,
    start: datetime,
    end: datetime,
    summary: str,
    organizer: tuple[str, str],
    attendee: tuple[str, str],
    now: datetime,
    location: str = "",
    description: str = "",
    method: Method = "REQUEST",
) -> Attachment:
    """The invitation as an ``invite.ics`` attachment (``text/calendar; method=...``) for a notification."""
    text = invitation_text(
        uid=uid,
        sequence=sequence,
        start=start,
        end=end,
        summary=summary,
        organizer=organizer,
        attendee=attendee,
        now=now,
        location=location,
        description=description,
        method=method,
    )
    return Attachment(
        "cancel.ics" if method == "CANCEL" else "invite.ics",
        f"text/calendar; method={method}; charset=utf-8",
        text.encode("utf-8"),
    )
