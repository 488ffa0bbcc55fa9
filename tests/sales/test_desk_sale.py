"""A sale qualified on the desk records the sale and queues its confirmation in the same unit of work."""

from __future__ import annotations

import base64
import io

import pypdf
from sqlalchemy import func, select

from dialer.notify.messages import Notification
from dialer.sales.report import print_sales
from dialer.sales.service import Sales
from dialer.sales.tables import Sale
from dialer.store.models import Customer, DispositionRecord
from tests.api.conftest import Stack
from tests.sales.conftest import NUMBER, call_in_wrap_up

SALE = {
    "product": "Heat pump HP-12",
    "price": "8999.50",
    "delivery_terms": "Delivered within 30 days",
    "installation_terms": "Installed on the delivery day",
}


async def _count(stack: Stack, table: type) -> int:
    async with stack.db.read_session() as s:
        return int((await s.execute(select(func.count()).select_from(table))).scalar_one())


async def test_a_sale_without_its_terms_or_an_address_is_refused_with_what_is_missing(stack: Stack) -> None:
    attempt_id, me = await call_in_wrap_up(stack)
    reply = await stack.client.post(
        f"/api/calls/{attempt_id}/disposition",
        json={"code": "sale", "sale": {"product": "Heat pump"}},
        headers=me,
    )
    assert reply.status_code == 422
    detail = reply.json()["detail"]
    for missing in ("price", "delivery_terms", "installation_terms", "email or postal address"):
        assert missing in detail, detail
    assert "product" not in detail.split("missing:")[1]
    assert await _count(stack, DispositionRecord) == 0 and await _count(stack, Sale) == 0
    assert await _count(stack, Notification) == 0


async def test_a_sale_with_an_email_queues_the_confirmation_pdf(stack: Stack) -> None:
    attempt_id, me = await call_in_wrap_up(stack)
    body = {"code": "sale", "identity": {"last_name": "Martin"}, "sale": {**SALE, "email": "jm@example.org"}}
    reply = await stack.client.post(f"/api/calls/{attempt_id}/disposition", json=body, headers=me)
    assert reply.status_code == 200, reply.text
    sale_id = reply.json()["sale_id"]
    async with stack.db.read_session() as s:
        sale = await s.get(Sale, sale_id)
        message = (await s.execute(select(Notification))).scalar_one()
        customer = (await s.execute(select(Customer).where(Customer.phone == NUMBER))).scalar_one()
    assert sale is not None and sale.price_cents == 899_950 and sale.status == "active"
    assert sale.withdrawal_end is None  # the rule counts from the delivery, not known yet
    assert (message.channel, message.recipient, message.status) == ("email", "jm@example.org", "pending")
    assert message.ref == f"sale:{sale_id}" and sale.confirmation_id == message.id
    assert customer.email == "jm@example.org"
    (attachment,) = message.attachments or []
    pdf = pypdf.PdfReader(io.BytesIO(base64.b64decode(attachment["data"])))
    text = " ".join(p.extract_text() for p in pdf.pages)
    assert "Heat pump HP-12" in text and "Jeanne Martin" in text and "Withdrawal form" in text


async def test_a_sale_without_email_goes_by_post(stack: Stack) -> None:
    attempt_id, me = await call_in_wrap_up(stack)
    body = {"code": "sale", "sale": {**SALE, "address": "3 chemin des Prés, 69001 Lyon"}}
    reply = await stack.client.post(f"/api/calls/{attempt_id}/disposition", json=body, headers=me)
    assert reply.status_code == 200, reply.text
    async with stack.db.read_session() as s:
        message = (await s.execute(select(Notification))).scalar_one()
    assert (message.channel, message.status) == ("post", "to_mail")
    assert message.recipient == "Jeanne, 3 chemin des Prés, 69001 Lyon"


async def test_a_sale_is_refused_while_the_seller_is_not_configured(stack: Stack) -> None:
    stack.desk.sales = Sales(stack.db)
    attempt_id, me = await call_in_wrap_up(stack)
    body = {"code": "sale", "sale": {**SALE, "email": "jm@example.org"}}
    reply = await stack.client.post(f"/api/calls/{attempt_id}/disposition", json=body, headers=me)
    assert reply.status_code == 409 and "[seller] name and address" in reply.json()["detail"]
    assert await _count(stack, DispositionRecord) == 0


async def test_the_closing_report_lists_the_sales_and_their_withdrawal_periods(stack: Stack) -> None:
    attempt_id, me = await call_in_wrap_up(stack)
    body = {
        "code": "sale",
        "sale": {**SALE, "address": "3 chemin des Prés, 69001 Lyon", "delivery_date": "2030-01-31"},
    }
    reply = await stack.client.post(f"/api/calls/{attempt_id}/disposition", json=body, headers=me)
    assert reply.status_code == 200, reply.text
    out = io.StringIO()
    assert await print_sales(stack.desk.sales, out) == 1
    text = out.getvalue()
    assert (
        "Sales: 1, 1 in their withdrawal period; confirmations queued: 0 by email, 1 letters to post" in text
    )
    assert "Heat pump HP-12" in text and "withdrawal until 2030-02-14 (post)" in text
