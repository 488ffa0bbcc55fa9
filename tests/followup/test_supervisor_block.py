"""The supervisor page's follow-up block in chromium shows the API's counts and the overdue tasks."""

from __future__ import annotations

from playwright.async_api import Page, expect

from tests.api.conftest import PASSWORD
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
