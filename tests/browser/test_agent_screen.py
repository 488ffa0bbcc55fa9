"""The agent screen in chromium: sign in, ready, a call with the customer's past, qualified in one click."""

from __future__ import annotations

import time

from playwright.async_api import Page, expect
from sqlalchemy import select

from dialer.domain.campaign import CampaignSettings
from dialer.sales.service import Sales
from dialer.sales.tables import Sale
from dialer.settings import SellerSettings
from dialer.store.models import DispositionRecord
from dialer.store.repositories import NewLead
from telephony.base import AnsweredCall, Connected, ConnectToAgent, HungUp
from tests.api.conftest import PASSWORD, T0, Stack
from tests.browser.conftest import Served, screenshot

NUMBER = "+33612345678"


async def _add_lead(stack: Stack, campaign_id: int, first_name: str, number: str = NUMBER) -> None:
    list_id = await stack.db.leads.create_list(campaign_id, "test", "test.csv", "FR", now=T0)
    lead = NewLead(phone=number, timezones=("Europe/Paris",), first_name=first_name)  # type: ignore[call-arg]
    await stack.db.leads.add(campaign_id, list_id, [lead], now=T0)


async def _comment_from_another_agent(stack: Stack) -> None:
    """Agent 9 spoke to this customer in another campaign and left a comment for whoever calls next."""
    other = await stack.db.campaigns.create(
        "autumn", CampaignSettings(dial_string="PJSIP/{digits}@trunk", caller_id="+33100000000"), now=T0
    )
    await _add_lead(stack, other.id, "Jeanne")
    (lead,) = [lead async for lead in stack.db.leads.iter_leads(other.id)]
    attempt = await stack.db.attempts.open_attempt(lead.id, other.id, NUMBER, "node-0", T0)
    await stack.db.dispositions.record_disposition(
        attempt,
        "busy",
        "agent9",
        now=T0,
        comments="prefers calls after 6 pm",
        identity={"first_name": "Jeanne"},
    )


async def _call_reaches_agent1(stack: Stack) -> str:
    """The dialer places a call, the customer answers, the PBX connects them to agent1."""
    assert await stack.engine.tick() == 1
    attempt_id = stack.pbx.originates[-1].attempt_id
    decision = await stack.engine.on_answered(AnsweredCall(attempt_id, time.time()))
    assert decision == ConnectToAgent("agent1")
    await stack.engine.handle(Connected(attempt_id, time.time(), "agent1"))
    return attempt_id


async def _sign_in(page: Page, url: str, user: str) -> None:
    await page.goto(url)
    await page.get_by_label("User").fill(user)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()


async def test_an_agent_takes_a_call_sees_earlier_comments_and_qualifies_it_in_one_click(
    served: Served, page: Page
) -> None:
    stack = served.stack
    stack.desk.sales = Sales(stack.db, SellerSettings(name="Soleil SARL", address="12 rue de la Paix, Paris"))
    await _comment_from_another_agent(stack)
    await _add_lead(stack, stack.campaign_id, "Jeanne")

    # A wrong password shows the API's message, not a stack.
    await page.goto(f"{served.url}/agent")
    await page.get_by_label("User").fill("agent1")
    await page.get_by_label("Password").fill("not the password")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#error")).to_be_visible()
    assert "Traceback" not in await page.locator("#error").inner_text()
    await screenshot(page, "agent-sign-in-refused")

    await _sign_in(page, f"{served.url}/agent", "agent1")
    state = page.locator("#state")
    await expect(state).to_have_text("Not dialing")
    await page.get_by_role("button", name="Start dialing").click()
    await expect(state).to_have_text("Paused")
    await page.get_by_role("button", name="Ready", exact=True).click()
    await expect(state).to_have_text("Ready")

    attempt_id = await _call_reaches_agent1(stack)

    await expect(state).to_have_text("On call")
    await expect(page.locator("#phase")).to_have_text("Talking")
    await expect(page.locator("#campaign")).to_have_text("spring")
    await expect(page.locator("#comments")).to_contain_text("prefers calls after 6 pm")
    await expect(page.locator("#comments")).to_contain_text("agent9")
    await expect(page.locator("#customer")).to_contain_text("Jeanne")
    await expect(page.locator("#verified")).to_contain_text("first name: Jeanne · by agent9")
    await expect(page.locator("#history")).to_contain_text("autumn · busy · by agent9")
    await page.get_by_label("New note").fill("asked about the price")
    await page.get_by_role("button", name="Add note").click()
    await expect(page.locator("#notes")).to_contain_text("asked about the price")
    await expect(page.locator("#notes")).to_contain_text("by agent1")
    assert NUMBER not in await page.content()
    await expect(page.locator("#codes button[data-code=sale]")).to_be_disabled()  # hang up first
    await screenshot(page, "agent-talking")

    # The agent hangs up; the PBX reports the customer's leg ended.
    await page.get_by_role("button", name="Hang up").click()
    for _ in range(50):
        if stack.pbx.hangups:
            break
        await page.wait_for_timeout(50)
    assert stack.pbx.hangups == [attempt_id]
    await stack.engine.handle(HungUp(attempt_id, time.time(), cause=16))
    await expect(page.locator("#phase")).to_have_text("Wrap-up")
    await expect(page.locator("#timer-label")).to_have_text("Wrap-up time left")
    await page.get_by_label("Comments").fill("wants the offer by email")
    await screenshot(page, "agent-wrap-up")

    await page.locator("#codes button[data-code=sale]").click()  # a sale needs its terms: the API says which
    await expect(page.locator("#error")).to_contain_text("missing: product, price")
    await page.get_by_label("Product").fill("Heat pump HP-12")
    await page.get_by_label("Price").fill("8999,50")
    await page.get_by_label("Delivery terms").fill("Within 30 days")
    await page.get_by_label("Installation terms").fill("On the delivery day")
    await page.get_by_label("Confirmation email").fill("jeanne@example.org")
    await page.locator("#codes button[data-code=sale]").click()  # one click qualifies the call
    await expect(page.locator("#idle-text")).to_contain_text("Last call qualified: Sale")
    await expect(state).to_have_text("Ready")
    async with stack.db.read_session() as s:
        row = (
            await s.execute(select(DispositionRecord).where(DispositionRecord.attempt_id == attempt_id))
        ).scalar_one()
    assert (row.code, row.agent_id, row.comments) == ("sale", "agent1", "wants the offer by email")
    async with stack.db.read_session() as s:
        sale = (await s.execute(select(Sale))).scalar_one()
    assert (sale.product, sale.price_cents) == ("Heat pump HP-12", 899_950)
    assert sale.confirmation_channel == "email"

    # The next call is left unqualified until the wrap-up limit writes the default: the screen says so.
    await _add_lead(stack, stack.campaign_id, "Paul", "+33698765432")
    second = await _call_reaches_agent1(stack)
    await expect(page.locator("#comments")).to_contain_text("No comment yet")
    await stack.engine.handle(HungUp(second, time.time(), cause=16))
    await expect(page.locator("#phase")).to_have_text("Wrap-up")
    assert await stack.engine.flush_wrap_ups() == 1
    await expect(page.locator("#idle-text")).to_contain_text("wrap-up time ran out")
    await expect(state).to_have_text("Ready")

    # Paused with a reason, then out of dialing.
    await page.get_by_label("Pause reason").select_option("lunch")
    await page.get_by_role("button", name="Pause", exact=True).click()
    await expect(state).to_have_text("Paused")
    await expect(page.locator("#pause-note")).to_have_text("Reason: lunch")
    await page.get_by_role("button", name="Stop dialing").click()
    await expect(state).to_have_text("Not dialing")
