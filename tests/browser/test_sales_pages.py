"""The supervisor page's sales and customer records in chromium: a withdrawal recorded, a record found."""

from __future__ import annotations

from playwright.async_api import Dialog, Page, expect

from dialer.sales.service import Sales
from dialer.sales.tables import Sale
from tests.api.conftest import PASSWORD
from tests.browser.conftest import Served, screenshot
from tests.sales.conftest import SELLER, call_in_wrap_up


async def test_the_supervisor_records_a_withdrawal_and_reads_a_customer_record(
    served: Served, page: Page
) -> None:
    stack = served.stack
    stack.desk.sales = Sales(stack.db, SELLER)
    attempt_id, me = await call_in_wrap_up(stack)
    body = {
        "code": "sale",
        "identity": {"last_name": "Martin"},
        "comments": "wants it before winter",
        "sale": {
            "product": "Heat pump HP-12",
            "price": "8999.50",
            "delivery_terms": "Within 30 days",
            "installation_terms": "On the delivery day",
            "email": "jm@example.org",
        },
    }
    reply = await stack.client.post(f"/api/calls/{attempt_id}/disposition", json=body, headers=me)
    assert reply.status_code == 200, reply.text

    await page.goto(f"{served.url}/supervisor")
    await page.get_by_label("User").fill("sup")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    row = page.locator("#sales tr[data-sale='1']")
    await expect(row).to_contain_text("Heat pump HP-12")
    await expect(row).to_contain_text("8999.50 EUR")

    await page.get_by_label("Find a customer").fill("martin")
    await page.get_by_role("button", name="Search").click()
    await page.locator("#customers tr[data-customer]").click()
    await expect(page.locator("#customer-history")).to_contain_text("sale · by agent1")
    await expect(page.locator("#customer-history")).to_contain_text("wants it before winter")
    await screenshot(page, "supervisor-sales")

    await row.get_by_label("Channel of").select_option("form")
    asked: list[str] = []

    async def accept(dialog: Dialog) -> None:
        asked.append(dialog.message)
        await dialog.accept()

    page.once("dialog", accept)
    await row.get_by_role("button", name="Record").click()
    await expect(row).to_have_count(0)
    assert "received today by form" in asked[0]
    async with stack.db.read_session() as s:
        sale = await s.get(Sale, 1)
    assert sale is not None and (sale.status, sale.withdrawal_channel) == ("withdrawn", "form")
