"""The iCalendar invitation of an appointment: METHOD REQUEST when booked or moved, CANCEL when cancelled.

The UID stays the same for the life of the appointment and SEQUENCE grows
with each change, so a calendar program updates the one event it already has.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from dialer.notify.ical import invitation_text


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
    """The invitation as an iCalendar text (CRLF lines, times in UTC): dialer.notify.ical writes it."""
    return invitation_text(
        uid=invitation.uid,
        sequence=invitation.sequence,
        start=invitation.starts_at,
        end=invitation.ends_at,
        summary=invitation.summary,
        organizer=("Field calendar", invitation.organizer_email),
        attendee=(invitation.attendee_name, invitation.attendee_email),
        now=now,
        location=invitation.location,
        method="CANCEL" if invitation.cancelled else "REQUEST",
    )
