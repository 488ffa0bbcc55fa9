"""The agent screen books a field visit: free slots for the customer's area, one click books and qualifies,
and the invitation reaches the salesperson's mail server and the customer's SMS gateway."""

from __future__ import annotations

import json
import time
from pathlib import Path

from icalendar import Calendar
from playwright.async_api import Page, expect
from sqlalchemy import select, update

from dialer.notify.messages import Notification
from dialer.notify.sink import LocalInboxes
from dialer.notify.worker import DeliveryWorker
from dialer.service.calendar import CalendarService
from dialer.store.models import Appointment, DispositionRecord, Lead
from telephony.base import HungUp
from tests.browser.conftest import Served, screenshot
from tests.browser.test_agent_screen import NUMBER, _add_lead, _call_reaches_agent1, _sign_in


async def test_the_agent_books_a_free_visit_and_the_click_qualifies_the_call(
    served: Served, page: Page, tmp_path: Path
) -> None:
    stack = served.stack
    await CalendarService(stack.db).add_salesperson(
        "alice",
        name="Alice Martin",
        email="alice@example.com",
        timezone="Europe/Paris",
        home_postcode="75001",
        areas="75",
        hours="mon-sun 00:00-23:59",
    )
    await _add_lead(stack, stack.campaign_id, "Jeanne")
    async with stack.db.session() as s, s.begin():
        await s.execute(update(Lead).values(postcode="75011", preferred_channel="sms"))

    await _sign_in(page, f"{served.url}/agent", "agent1")
    await page.get_by_role("button", name="Start dialing").click()
    await page.get_by_role("button", name="Ready", exact=True).click()
    await expect(page.locator("#state")).to_have_text("Ready")
    attempt_id = await _call_reaches_agent1(stack)
    await expect(page.locator("#phase")).to_have_text("Talking")

    # While talking: the free visits near the customer, before the customer hangs up.
    await page.get_by_role("button", name="Free visits for this customer").click()
    await expect(page.locator("#visit-note")).to_contain_text("Free visits near 75011")
    await expect(page.locator("#slots button.slot")).to_have_count(6)
    await expect(page.locator("#slots button.slot").first).to_contain_text("Alice Martin")

    await stack.engine.handle(HungUp(attempt_id, time.time(), cause=16))
    await expect(page.locator("#phase")).to_have_text("Wrap-up")
    await page.locator("#codes button[data-code=appointment_set]").click()  # shows the slots, books nothing
    await expect(page.locator("#slots button.slot")).to_have_count(6)
    await screenshot(page, "agent-free-visits")
    await page.locator("#slots button.slot").nth(1).click()  # one click: booked and qualified
    await expect(page.locator("#idle-text")).to_contain_text("Last call qualified: Appointment set")

    async with stack.db.read_session() as s:
        visit = (await s.execute(select(Appointment))).scalar_one()
        disposition = (await s.execute(select(DispositionRecord))).scalar_one()
        sent = list((await s.execute(select(Notification.recipient))).scalars())
    assert (visit.salesperson, visit.booked_by, visit.status) == ("alice", "agent1", "booked")
    assert visit.disposition_id == disposition.id and disposition.code == "appointment_set"
    assert disposition.appointment_at == visit.starts_at
    assert "alice@example.com" in sent and len(sent) == 2

    # Both inboxes: the salesperson's mail server and the customer's SMS gateway, both real servers.
    inboxes = await LocalInboxes.start(tmp_path / "inboxes")
    try:
        worker = DeliveryWorker.from_settings(stack.db, inboxes.notify_settings())
        assert await worker.send_due() == 2
        [mail] = inboxes.received.emails()
        [sms] = inboxes.received.sms
    finally:
        await inboxes.stop()
    assert mail["To"] == "alice@example.com"
    [invite] = [p for p in mail.walk() if p.get_content_type() == "text/calendar"][:1]
    calendar = Calendar.from_ical(invite.get_payload(decode=True))
    assert str(calendar["METHOD"]) == "REQUEST"
    [event] = calendar.walk("VEVENT")
    assert event.decoded("DTSTART") == visit.starts_at and int(event["SEQUENCE"]) == 0
    text = json.loads(sms.read_text(encoding="utf-8"))
    assert text["to"] == NUMBER and "Alice Martin" in text["text"]
