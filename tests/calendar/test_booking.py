"""Booking, moving and cancelling visits in the record, with their notifications, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from dialer.domain.dispositions import DispositionError
from dialer.notify.messages import Notification
from dialer.service import Invalid, NotFound, Refused
from dialer.store.models import Appointment, Customer, DispositionRecord
from tests.calendar.conftest import NOW, Record, paris


async def notifications(record: Record) -> list[Notification]:
    async with record.db.read_session() as s:
        return list((await s.execute(select(Notification).order_by(Notification.id))).scalars())


async def test_booking_writes_the_visit_and_tells_the_customer_and_the_salesperson(record: Record) -> None:
    call = await record.call(email="jo@example.com", preferred_channel="email", first_name="Jo")
    booked = await record.calendar.book("agent1", call, "alice", paris(7, 10))
    assert (booked.salesperson_id, booked.postcode, booked.status, booked.sequence) == (
        "alice",
        "75011",
        "booked",
        0,
    )
    assert booked.ends_at == paris(7, 11)
    sent = await notifications(record)
    assert {(n.channel, n.recipient) for n in sent} == {
        ("email", "jo@example.com"),
        ("email", "alice@example.com"),
    }
    to_alice = next(n for n in sent if n.recipient == "alice@example.com")
    assert to_alice.ical is not None and "METHOD:REQUEST" in to_alice.ical
    assert "DTSTART:20261207T090000Z" in to_alice.ical and "SEQUENCE:0" in to_alice.ical
    assert all(n.reason == "appointment.booked" and n.ref == f"appointment:{booked.id}" for n in sent)


async def test_a_customer_without_email_preference_gets_an_sms(record: Record) -> None:
    call = await record.call(postcode="93200")
    await record.calendar.book("agent1", call, "bob", paris(7, 14))
    channels = sorted(n.channel for n in await notifications(record))
    assert channels == ["email", "sms"]  # bob by email, the customer by SMS to the number called


async def test_a_customer_on_a_landline_without_email_gets_a_letter_or_nothing(record: Record) -> None:
    call = await record.call(postcode="93200", number="+33142000001")  # a Paris landline
    await record.calendar.book("agent1", call, "bob", paris(7, 14))
    assert [n.channel for n in await notifications(record)] == ["email"]  # bob only: nothing reaches them
    other = await record.call(postcode="93200", number="+33142000002")
    async with record.db.session() as s, s.begin():
        s.add(
            Customer(
                phone="+33142000002", address="3 rue Haute, 93200 Saint-Denis", created_at=NOW, updated_at=NOW
            )
        )
    await record.calendar.book("agent1", other, "bob", paris(8, 14))
    letter = [n for n in await notifications(record) if n.channel == "post"]
    assert (
        len(letter) == 1 and letter[0].recipient.startswith("3 rue Haute") and letter[0].status == "to_mail"
    )


async def test_a_taken_slot_and_an_unreachable_one_are_refused_with_the_reason(record: Record) -> None:
    first = await record.call(postcode="92100")
    await record.calendar.book("agent1", first, "alice", paris(7, 10))
    second = await record.call(postcode="75011")
    with pytest.raises(Refused, match="taken: Alice Martin already has appointment"):
        await record.calendar.book("agent1", second, "alice", paris(7, 10, 30))
    with pytest.raises(Refused, match=r"unreachable_before: .* from appointment \d+ .* 11:55"):
        await record.calendar.book("agent1", second, "alice", paris(7, 11, 30))
    with pytest.raises(Refused, match="not_covered"):
        await record.calendar.book("agent1", second, "bob", paris(7, 12))
    with pytest.raises(Refused, match="outside_hours"):
        await record.calendar.book("agent1", second, "alice", paris(5, 12))
    assert (await record.calendar.book("agent1", second, "alice", paris(7, 12))).status == "booked"
    assert len(await record.calendar.appointments(salesperson_id="alice")) == 2


async def test_only_the_agent_of_the_call_books_and_once_per_call(record: Record) -> None:
    call = await record.call(agent_id="agent1")
    with pytest.raises(NotFound):
        await record.calendar.book("agent2", call, "alice", paris(7, 10))
    await record.calendar.book("agent1", call, "alice", paris(7, 10))
    with pytest.raises(Refused, match="already booked on this call"):
        await record.calendar.book("agent1", call, "alice", paris(8, 10))
    no_postcode = await record.call(postcode=None)
    with pytest.raises(Invalid, match="no postcode"):
        await record.calendar.book("agent1", no_postcode, "alice", paris(7, 14))
    booked = await record.calendar.book("agent1", no_postcode, "alice", paris(7, 14), postcode="75 015")
    assert booked.postcode == "75015"


async def test_moving_raises_the_sequence_and_tells_both_sides_again(record: Record) -> None:
    call = await record.call(email="jo@example.com", preferred_channel="email")
    booked = await record.calendar.book("agent1", call, "alice", paris(7, 10))
    with pytest.raises(NotFound):
        await record.calendar.move("agent2", booked.id, paris(8, 10))  # not the booking agent
    moved = await record.calendar.move("agent1", booked.id, paris(8, 10))
    assert (moved.status, moved.sequence, moved.starts_at) == ("moved", 1, paris(8, 10))
    again = [n for n in await notifications(record) if n.reason == "appointment.moved"]
    assert {n.recipient for n in again} == {"jo@example.com", "alice@example.com"}
    assert all(n.ical and "SEQUENCE:1" in n.ical and f"UID:appointment-{booked.id}@" in n.ical for n in again)
    # the old slot is free again, the new one is taken
    other = await record.call()
    await record.calendar.book("agent1", other, "alice", paris(7, 10))
    with pytest.raises(Refused, match="taken"):
        await record.calendar.move("sup", booked.id, paris(7, 10, 30), supervisor=True)


async def test_moving_to_another_salesperson_cancels_the_first_invitation(record: Record) -> None:
    call = await record.call(postcode="93200")
    await record.calendar.update_salesperson("alice", areas="75,92,93")
    booked = await record.calendar.book("agent1", call, "bob", paris(7, 11))
    moved = await record.calendar.move(
        "sup", booked.id, paris(7, 11), salesperson_id="alice", supervisor=True
    )
    assert moved.salesperson_id == "alice"
    to_bob = [n for n in await notifications(record) if n.recipient == "bob@example.com"]
    assert to_bob[-1].ical is not None and "METHOD:CANCEL" in to_bob[-1].ical


async def test_cancelling_frees_the_slot_and_sends_a_cancel(record: Record) -> None:
    call = await record.call(email="jo@example.com", preferred_channel="email")
    booked = await record.calendar.book("agent1", call, "alice", paris(7, 10))
    cancelled = await record.calendar.cancel("agent1", booked.id)
    assert (cancelled.status, cancelled.sequence) == ("cancelled", 1)
    sent = [n for n in await notifications(record) if n.reason == "appointment.cancelled"]
    assert {n.recipient for n in sent} == {"jo@example.com", "alice@example.com"}
    assert all(n.ical and "METHOD:CANCEL" in n.ical and "STATUS:CANCELLED" in n.ical for n in sent)
    with pytest.raises(Refused, match="is cancelled"):
        await record.calendar.cancel("agent1", booked.id)
    assert await record.calendar.appointments(salesperson_id="alice") == []
    assert (
        await record.calendar.book("agent1", await record.call(), "alice", paris(7, 10))
    ).status == "booked"


async def test_the_disposition_names_the_visit_booked_on_the_call(record: Record) -> None:
    call = await record.call()
    booked = await record.calendar.book("agent1", call, "alice", paris(7, 10))
    written = await record.db.dispositions.record_disposition(
        call, "appointment_set", "agent1", now=record.clock[0], appointment_at=paris(7, 10)
    )
    assert written.appointment_id == booked.id
    async with record.db.read_session() as s:
        rows = list((await s.execute(select(Appointment))).scalars())
        disposition = (await s.execute(select(DispositionRecord))).scalar_one()
    assert len(rows) == 1 and rows[0].disposition_id == disposition.id
    assert disposition.appointment_at == paris(7, 10)


async def test_offered_slots_are_free_and_fit(record: Record) -> None:
    call = await record.call()
    assert await record.calendar.postcode_of_call("agent1", call) == "75011"
    slots = await record.calendar.offer_slots("75011", count=3)
    assert [s.salesperson_id for s in slots] == ["alice"] * 3
    assert slots[0].starts_at == paris(4, 11)  # now is Friday 09:00 in Paris, plus 2 h of notice
    await record.calendar.book("agent1", call, "alice", slots[0].starts_at)
    after = await record.calendar.offer_slots("75011", count=3)
    assert slots[0].starts_at not in [s.starts_at for s in after]
    with pytest.raises(Refused, match="no salesperson covers postcode 13001"):
        await record.calendar.offer_slots("13001")


async def test_salespeople_are_validated(record: Record) -> None:
    with pytest.raises(Invalid, match="time zone"):
        await record.calendar.add_salesperson(
            "carl",
            name="C",
            email="c@example.com",
            timezone="Mars/Base",
            home_postcode="1",
            areas="1",
            hours="mon 8:00-9:00",
        )
    with pytest.raises(Invalid, match="not an email"):
        await record.calendar.update_salesperson("alice", email="alice")
    with pytest.raises(Refused, match="exists already"):
        await record.calendar.add_salesperson(
            "alice",
            name="A",
            email="a@example.com",
            timezone="UTC",
            home_postcode="1",
            areas="1",
            hours="mon 08:00-09:00",
        )
    booked = await record.calendar.book("agent1", await record.call(), "alice", paris(7, 10))
    changed = await record.calendar.update_salesperson("alice", active=False)
    assert not changed.active
    assert [sp.id for sp in await record.calendar.salespeople()] == ["bob"]
    with pytest.raises(Refused, match="not active"):
        await record.calendar.book("agent1", await record.call(), "alice", paris(7, 10))
    with pytest.raises(Refused, match="not active"):
        await record.calendar.move("agent1", booked.id, paris(7, 12))
    assert (await record.calendar.cancel("agent1", booked.id)).status == "cancelled"  # still possible


async def test_with_salespeople_an_appointment_must_be_a_booked_visit(record: Record) -> None:
    call = await record.call()
    with pytest.raises(DispositionError, match="book the visit in the field calendar first"):
        await record.db.dispositions.record_disposition(
            call, "appointment_set", "agent1", now=record.clock[0], appointment_at=paris(7, 10)
        )
    async with record.db.read_session() as s:
        assert list((await s.execute(select(Appointment))).scalars()) == []
        assert list((await s.execute(select(DispositionRecord))).scalars()) == []
