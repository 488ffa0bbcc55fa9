"""The follow-up in chromium: the supervisor page's block, the agent's promise on the screen."""

from __future__ import annotations

import time

from playwright.async_api import Page, expect
from sqlalchemy import select

from dialer.followup.tasks import FollowupTask
from dialer.notify.messages import Notification
from dialer.store.repositories import NewLead
from telephony.base import AnsweredCall, Connected, ConnectToAgent, HungUp
from tests.api.conftest import PASSWORD, T0
from tests.browser.conftest import Served, database_url, page, screenshot, served
from tests.followup.test_surfaces import seed

__all__ = ["database_url", "page", "served"]  # the browser tests' fixtures


async def test_the_supervisor_page_lists_the_overdue_follow_up_tasks(served: Served, page: Page) -> None:
    stack = served.stack
    await seed(stack.db, stack.campaign_id)
    sup = await stack.token("sup")
    summary = (await stack.client.get("/api/followup/summary", headers=sup)).json()

    await page.goto(f"{served.url}/supervisor")
    await page.get_by_label("User").fill("sup")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    counts = f"{summary['overdue']} overdue · {summary['callbacks_overdue']} callbacks"
    await expect(page.locator("#followup-counts")).to_have_text(counts)
    await expect(page.locator("#followup-overdue tr[data-task]")).to_have_count(summary["overdue"])
    callback = page.locator("#followup-summary tr[data-kind=callback]")
    await expect(callback.locator("td[data-level=overdue]")).to_have_text("1")
    await expect(page.locator("#followup-summary tr[data-kind=follow_up] td[data-level=met]")).to_have_text(
        "1"
    )
    await expect(page.locator("#followup-overdue")).to_contain_text("missed call back")
    await screenshot(page, "supervisor-followup")


async def test_the_agent_promises_the_brochure_and_a_follow_up_from_the_screen(
    served: Served, page: Page
) -> None:
    stack = served.stack
    list_id = await stack.db.leads.create_list(stack.campaign_id, "t", "t.csv", "FR", now=T0)
    lead = NewLead(phone="+33612345678", timezones=("Europe/Paris",), first_name="Léa")
    await stack.db.leads.add(stack.campaign_id, list_id, [lead], now=T0)
    await page.goto(f"{served.url}/agent")
    await page.get_by_label("User").fill("agent1")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_role("button", name="Start dialing").click()
    await page.get_by_role("button", name="Ready", exact=True).click()
    await expect(page.locator("#state")).to_have_text("Ready")
    assert await stack.engine.tick() == 1
    attempt_id = stack.pbx.originates[-1].attempt_id
    assert await stack.engine.on_answered(AnsweredCall(attempt_id, time.time())) == ConnectToAgent("agent1")
    await stack.engine.handle(Connected(attempt_id, time.time(), "agent1"))
    await stack.engine.handle(HungUp(attempt_id, time.time(), cause=16))
    await expect(page.locator("#phase")).to_have_text("Wrap-up")

    await page.get_by_label("Send information").select_option(label="Brochure link")
    await page.get_by_label("To email").fill("lea@example.com")
    await page.get_by_label("Follow up within the campaign's delay").check()
    await screenshot(page, "agent-followup-promise")
    await page.locator("#codes button[data-code=not_qualified]").click()
    await expect(page.locator("#idle-text")).to_contain_text("Last call qualified")
    async with stack.db.read_session() as s:
        kinds = sorted((await s.execute(select(FollowupTask.kind))).scalars())
        note = (await s.execute(select(Notification))).scalar_one()
    assert kinds == ["follow_up", "information"]
    assert note.recipient == "lea@example.com" and "https://example.com/brochure" in note.body
