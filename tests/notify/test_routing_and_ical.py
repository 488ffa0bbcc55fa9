"""The preferred-channel rule and the invitation helper: pure, no server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import icalendar
import pytest

from dialer.notify.ical import invitation, invitation_text
from dialer.notify.messages import Channel
from dialer.notify.routing import route

MOBILE, LANDLINE = "+33612345678", "+33123456789"
T0 = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)


def test_preferred_written_channel_is_honoured() -> None:
    by_mail = route("email", email="ann@example.org", phone=MOBILE)
    assert (by_mail.channel, by_mail.recipient, by_mail.call_instead) == (
        Channel.EMAIL,
        "ann@example.org",
        False,
    )
    by_sms = route("sms", email="ann@example.org", phone=MOBILE)
    assert (by_sms.channel, by_sms.recipient) == (Channel.SMS, MOBILE)


@pytest.mark.parametrize("preferred", ["phone", "telephone", None, "PHONE"])
def test_telephone_preferred_means_a_call_not_a_message(preferred: str | None) -> None:
    r = route(preferred, email="ann@example.org", phone=MOBILE)
    assert (r.channel, r.call_instead) == (None, True) and "telephone" in r.reason


def test_preferred_channel_without_its_contact_says_what_is_missing() -> None:
    no_mobile = route("sms", email="ann@example.org", phone=LANDLINE)
    assert no_mobile.channel is None and no_mobile.call_instead and "no mobile number" in no_mobile.reason
    no_mail = route("email", email=None, phone=MOBILE)
    assert no_mail.channel is None and "no email address" in no_mail.reason


def test_what_must_be_in_writing_falls_back_to_email_sms_then_post() -> None:
    assert route("phone", email="a@b.org", phone=MOBILE, required=True).channel is Channel.EMAIL
    assert route("email", email=None, phone=MOBILE, required=True).channel is Channel.SMS
    letter = route("sms", email=None, phone=LANDLINE, address="1 High St, Leeds", required=True)
    assert (letter.channel, letter.recipient) == (Channel.POST, "1 High St, Leeds")
    assert "no mobile number" in letter.reason and "by post" in letter.reason
    none = route("phone", email=None, phone=LANDLINE, address=None, required=True)
    assert none.channel is None and "ask the customer" in none.reason


def test_unknown_preference_is_refused() -> None:
    with pytest.raises(ValueError, match="not phone, email or sms"):
        route("pigeon", email=None, phone=MOBILE)


def _event(text: str) -> tuple[icalendar.Calendar, icalendar.Event]:
    calendar = icalendar.Calendar.from_ical(text)
    return calendar, calendar.walk("VEVENT")[0]


def test_booking_moving_and_cancelling_keep_one_uid() -> None:
    paris = timezone(timedelta(hours=1))
    common = {
        "uid": "appointment-7@calls.example",
        "summary": "Visit",
        "organizer": ("Call center", "rdv@calls.example"),
        "attendee": ("Ann Seller", "ann@sales.example"),
        "now": T0,
        "location": "Lyon",
    }
    start = datetime(2026, 12, 8, 10, 0, tzinfo=paris)
    booked = invitation(sequence=0, start=start, end=start + timedelta(hours=1), **common)  # type: ignore[arg-type]
    assert booked.filename == "invite.ics" and booked.content_type.startswith("text/calendar; method=REQUEST")
    cal, event = _event(booked.data.decode())
    assert str(cal["METHOD"]) == "REQUEST" and str(event["STATUS"]) == "CONFIRMED"
    assert event.decoded("DTSTART") == datetime(2026, 12, 8, 9, 0, tzinfo=UTC)
    assert "DTSTART:20261208T090000Z" in booked.data.decode()  # written in UTC
    moved = invitation_text(
        sequence=1, start=start + timedelta(days=1), end=start + timedelta(days=1, hours=1), **common
    )  # type: ignore[arg-type]
    _, event2 = _event(moved)
    assert (str(event2["UID"]), int(event2["SEQUENCE"])) == ("appointment-7@calls.example", 1)
    cancelled = invitation(sequence=2, start=start, end=start + timedelta(hours=1), method="CANCEL", **common)  # type: ignore[arg-type]
    cal3, event3 = _event(cancelled.data.decode())
    assert str(cal3["METHOD"]) == "CANCEL" and str(event3["STATUS"]) == "CANCELLED"
    assert str(event3["ORGANIZER"]) == "mailto:rdv@calls.example" and str(event3["LOCATION"]) == "Lyon"


def test_invitation_refuses_naive_or_backward_times() -> None:
    args = {
        "uid": "u",
        "sequence": 0,
        "summary": "s",
        "organizer": ("o", "o@x.org"),
        "attendee": ("a", "a@x.org"),
        "now": T0,
    }
    with pytest.raises(ValueError, match="time zone"):
        invitation_text(start=datetime(2026, 12, 8, 9), end=datetime(2026, 12, 8, 10), **args)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="before it starts"):
        invitation_text(start=T0, end=T0 - timedelta(hours=1), **args)  # type: ignore[arg-type]


def test_server_words_are_scrubbed_of_addresses_and_numbers_but_keep_codes_and_dates() -> None:
    from dialer.notify.notifier import scrub

    assert (
        scrub("550 5.1.1 <nobody@example.org>: no such mailbox")
        == "550 5.1.1 <n***@example.org>: no such mailbox"
    )
    said = scrub("invalid number +33612345678, 06 12 34 56 78 at 2026-12-05 09:00:00")
    assert "+33******678" in said and "12 34 56" not in said and "2026-12-05 09:00:00" in said
    assert len(scrub("x" * 1000)) == 300
