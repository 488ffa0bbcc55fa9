"""The sales and customer-record API: roles, the withdrawal period, the confirmation download, erasure."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta

import pypdf
from sqlalchemy import select

from dialer.sales.service import Sales
from dialer.sales.tables import Sale
from dialer.store.models import AuditEntry
from tests.api.conftest import Stack
from tests.sales.conftest import SELLER, call_in_wrap_up

SALE = {
    "product": "Heat pump HP-12",
    "price": "8999.50",
    "delivery_terms": "Delivered within 30 days",
    "installation_terms": "Installed on the delivery day",
    "email": "jm@example.org",
}


async def _sold(stack: Stack) -> tuple[int, dict[str, str]]:
    attempt_id, me = await call_in_wrap_up(stack)
    reply = await stack.client.post(
        f"/api/calls/{attempt_id}/disposition",
        json={"code": "sale", "identity": {"last_name": "Martin"}, "sale": SALE},
        headers=me,
    )
    assert reply.status_code == 200, reply.text
    return int(reply.json()["sale_id"]), me


async def test_withdrawal_period_listed_and_a_withdrawal_on_day_14_accepted_day_15_refused(
    stack: Stack,
) -> None:
    sale_id, me = await _sold(stack)
    sup = await stack.token("sup")
    assert (await stack.client.get("/api/sales", headers=me)).status_code == 403
    listed = (await stack.client.get("/api/sales", headers=sup)).json()
    assert [(s["id"], s["withdrawal_end"], s["status"]) for s in listed] == [(sale_id, None, "active")]

    # Contract on 28 January, delivered on 31 January: the period ends on 14 February (day 14).
    async with stack.db.session() as s, s.begin():
        row = await s.get(Sale, sale_id)
        assert row is not None
        row.contract_date = date(2026, 1, 28)
    reply = await stack.client.post(
        f"/api/sales/{sale_id}/delivery", json={"delivered_on": "2026-01-31"}, headers=sup
    )
    assert reply.status_code == 200 and reply.json()["withdrawal_end"] == "2026-02-14"

    day_15 = datetime(2026, 2, 15, 9, 0, tzinfo=UTC)
    stack.desk.sales = Sales(stack.db, SELLER, wall=lambda: day_15 + timedelta(hours=1))
    late = {"received_at": day_15.isoformat(), "channel": "email"}
    reply = await stack.client.post(f"/api/sales/{sale_id}/withdrawal", json=late, headers=sup)
    assert reply.status_code == 409
    assert "day 15" in reply.json()["detail"] and "ended on 2026-02-14" in reply.json()["detail"]
    assert (await stack.client.get(f"/api/sales/{sale_id}", headers=sup)).json()["status"] == "active"

    day_14 = {"received_at": "2026-02-14T22:30:00+00:00", "channel": "form"}  # 23:30 in Paris
    reply = await stack.client.post(f"/api/sales/{sale_id}/withdrawal", json=day_14, headers=sup)
    assert reply.status_code == 200, reply.text
    assert reply.json()["day"] == 14 and reply.json()["sale"]["status"] == "withdrawn"
    assert reply.json()["sale"]["withdrawal_channel"] == "form"
    assert (await stack.client.get("/api/sales", headers=sup)).json() == []  # stopped: out of the list
    again = await stack.client.post(f"/api/sales/{sale_id}/withdrawal", json=day_14, headers=sup)
    assert again.status_code == 409 and "already withdrawn" in again.json()["detail"]
    async with stack.db.read_session() as s:
        actions = [
            a for (a,) in await s.execute(select(AuditEntry.action).where(AuditEntry.entity == "sale"))
        ]
    assert actions == ["sale.delivered", "sale.withdrawal_refused", "sale.withdrawn"]


async def test_the_confirmation_downloads_as_a_pdf(stack: Stack) -> None:
    sale_id, _ = await _sold(stack)
    sup = await stack.token("sup")
    reply = await stack.client.get(f"/api/sales/{sale_id}/confirmation.pdf", headers=sup)
    assert reply.status_code == 200 and reply.headers["content-type"] == "application/pdf"
    text = " ".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(reply.content)).pages)
    assert "Heat pump HP-12" in text and "Soleil Énergie SARL" in text and "Withdrawal form" in text


async def test_an_agent_reaches_the_record_only_through_their_call(stack: Stack) -> None:
    _, me = await call_in_wrap_up(stack)
    other = await stack.token("agent2")
    reply = await stack.client.post(
        "/api/me/call/notes", json={"text": "asks for a quote in writing"}, headers=me
    )
    assert reply.status_code == 200 and reply.json()["author"] == "agent1"
    record = (await stack.client.get("/api/me/call/record", headers=me)).json()
    assert [(n["author"], n["text"]) for n in record["notes"]] == [("agent1", "asks for a quote in writing")]
    assert (await stack.client.get("/api/me/call/record", headers=other)).status_code == 404
    assert (
        await stack.client.post("/api/me/call/notes", json={"text": "x"}, headers=other)
    ).status_code == 404
    customer_id = record["id"]
    for path in (f"/api/customers/{customer_id}", "/api/customers?q=5678"):
        assert (await stack.client.get(path, headers=me)).status_code == 403
    sup = await stack.token("sup")
    assert [c["id"] for c in (await stack.client.get("/api/customers?q=5678", headers=sup)).json()] == [
        customer_id
    ]
    assert (await stack.client.get(f"/api/customers/{customer_id}", headers=sup)).json()["notes"][0]["text"]
    # Exporting and erasing are for admins.
    assert (await stack.client.get(f"/api/customers/{customer_id}/export", headers=sup)).status_code == 403
    assert (await stack.client.post(f"/api/customers/{customer_id}/erase", headers=sup)).status_code == 403
    root = await stack.token("root")
    exported = (await stack.client.get(f"/api/customers/{customer_id}/export", headers=root)).json()
    assert exported["notes"][0]["text"] == "asks for a quote in writing"
