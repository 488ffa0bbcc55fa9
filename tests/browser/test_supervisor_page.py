"""The supervisor page in chromium: agents with their state, the campaigns, pausing one."""

from __future__ import annotations

from playwright.async_api import Page, expect

from dialer.domain.campaign import CampaignStatus
from dialer.service.desk import PauseReason
from tests.api.conftest import PASSWORD
from tests.browser.conftest import Served, screenshot


async def test_the_supervisor_sees_the_agents_and_pauses_a_campaign(served: Served, page: Page) -> None:
    stack = served.stack
    await stack.desk.login("agent1")
    stack.desk.ready("agent1")
    await stack.desk.login("agent2")
    stack.desk.pause("agent2", PauseReason.TRAINING)

    # An agent may not open the supervisor's board: the API's refusal is shown as it is.
    await page.goto(f"{served.url}/supervisor")
    await page.get_by_label("User").fill("agent1")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#error")).to_contain_text("this needs the supervisor role")
    await page.get_by_role("button", name="Sign out").click()

    await page.get_by_label("User").fill("sup")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()

    agent1 = page.locator("#agents tr[data-agent=agent1]")
    await expect(agent1).to_contain_text("Ready")
    await expect(page.locator("#agents tr[data-agent=agent2]")).to_contain_text("Paused training")
    await expect(page.locator("#agent-counts")).to_have_text("1 ready · 1 paused")
    card = page.locator(f"article[data-campaign='{stack.campaign_id}']")
    await expect(card.locator(".badge.status")).to_have_text("running")
    await expect(card).to_contain_text("fixed")  # the pacer this node uses
    await expect(card.locator(".abandon-text")).to_contain_text("cap 3 %")
    await expect(card.get_by_role("button", name="Start")).to_be_disabled()
    await screenshot(page, "supervisor")

    await card.get_by_role("button", name="Pause").click()
    await expect(card.locator(".badge.status")).to_have_text("paused")
    assert (await stack.db.campaigns.get(stack.campaign_id)).status is CampaignStatus.PAUSED
    assert stack.desk.dialing_campaigns() == []

    # Forcing an agent out of dialing.
    await agent1.get_by_role("button", name="Log out").click()
    await expect(agent1).to_have_count(0)
    assert stack.agents.state_of("agent1") is None
