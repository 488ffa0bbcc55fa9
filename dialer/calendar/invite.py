"""The iCalendar invitation of an appointment: METHOD REQUEST when booked or moved, CANCEL when cancelled.

The UID stays the same for the life of the appointment and SEQUENCE grows
with each change, so a calendar program updates the one event it already has.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from icalendar import Calendar, Event, vCalAddress, vText


@dataclass(frozen=True, slots=True)
class Invitation:
    appointment_id: int
    sequence: int
    starts_at: datetime
    ends_at: datetime
    summary: str
    location: str
    organizer_email: str
    attendee_email: str
    attendee_name: str
    cancelled: bool = False
    domain: str = "dialer.invalid"

    @property
    def uid(self) -> str:
        return f"appointment-{self.appointment_id}@{self.domain}"


def ics(invitation: Invitation, now: datetime) -> str:
    """The invitation as an iCalendar text (CRLF lines, times in UTC)."""
    cal = Calendar()
    cal.add("prodid", "-//dialer//field calendar//EN")
    cal.add("version", "2.0")
    cal.add("method", "CANCEL" if invitation.cancelled else "REQUEST")
    event = Event()
    event.add("uid", invitation.uid)
    event.add("sequence", invitation.sequence)
    event.add("dtstamp", now.astimezone(UTC))
    event.add("dtstart", invitation.starts_at.astimezone(UTC))
    event.add("dtend", invitation.ends_at.astimezone(UTC))
    event.add("summary", invitation.summary)
    event["location"] = vText(invitation.location)
    event.add("status", "CANCELLED" if invitation.cancelled else "CONFIRMED")
    organizer = vCalAddress(f"mailto:{invitation.organizer_email}")
    event["organizer"] = organizer
    attendee = vCalAddress(f"mailto:{invitation.attendee_email}")
    attendee.params["cn"] = vText(invitation.attendee_name)
    attendee.params["role"] = vText("REQ-PARTICIPANT")
    event.add("attendee", attendee, encode=False)
    cal.add_component(event)
    text: bytes = cal.to_ical()
    return text.decode("utf-8")
