"""The customer record: notes, search, export, and erasure that keeps the do-not-call as a hashed number."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text

from dialer.compliance.erased import erased_keyer, keep_hashed
from dialer.compliance.gate import ComplianceConfig, build_gate
from dialer.domain.compliance import RULE_DNC, CallRequest, CampaignRules
from dialer.sales.customers import CustomerRecords
from dialer.service import Refused
from dialer.store.models import Lead
from tests.api.conftest import Stack
from tests.sales.conftest import NUMBER, call_in_wrap_up

SALE = {
    "product": "Heat pump HP-12",
    "price": "8999.50",
    "delivery_terms": "Delivered within 30 days",
    "installation_terms": "Installed on the delivery day",
    "email": "jm@example.org",
}


async def _sold(stack: Stack) -> int:
    attempt_id, me = await call_in_wrap_up(stack)
    reply = await stack.client.post(
        f"/api/calls/{attempt_id}/disposition",
        json={
            "code": "sale",
            "identity": {"first_name": "Jeanne", "last_name": "Martin"},
            "comments": "wants it before winter",
            "sale": SALE,
        },
        headers=me,
    )
    assert reply.status_code == 200, reply.text
    customer_id = await CustomerRecords(stack.db).id_of(NUMBER)
    assert customer_id is not None
    return customer_id


async def test_every_agent_reaching_the_customer_sees_the_record_with_who_wrote_what(stack: Stack) -> None:
    customer_id = await _sold(stack)
    records = CustomerRecords(stack.db)
    await records.add_note(customer_id, "sup", "called back about the delivery slot")
    record = await records.for_number(NUMBER)
    assert record is not None and record.id == customer_id
    assert [(v.field, v.value, v.by) for v in record.verified] == [
        ("first_name", "Jeanne", "agent1"),
        ("last_name", "Martin", "agent1"),
    ]
    assert [(h.code, h.agent_id, h.comments) for h in record.history] == [
        ("sale", "agent1", "wants it before winter")
    ]
    assert [(n.author, n.text) for n in record.notes] == [("sup", "called back about the delivery slot")]
    assert [(s.product, s.price, s.status) for s in record.sales] == [
        ("Heat pump HP-12", "8999.50", "active")
    ]
    assert NUMBER not in str(record) and record.number_masked.endswith("678")


async def test_supervisors_search_and_export_everything_about_the_person(stack: Stack) -> None:
    customer_id = await _sold(stack)
    records = CustomerRecords(stack.db)
    for query in ("martin", "jeanne mar", "5678", "JM@EXAMPLE"):
        assert [c.id for c in await records.search(query)] == [customer_id], query
    assert await records.search("dupont") == []
    exported = await records.export(customer_id, "sup")
    json.dumps(exported)  # plain JSON values throughout
    assert exported["customer"]["phone"] == NUMBER and exported["customer"]["email"] == "jm@example.org"
    assert [d["comments"] for d in exported["dispositions"]] == ["wants it before winter"]
    assert [s["product"] for s in exported["sales"]] == ["Heat pump HP-12"]
    assert [m["reason"] for m in exported["messages"]] == ["sale.confirmation"]
    assert exported["calls"][0]["number"] == NUMBER and "attachments" not in exported["messages"][0]


async def test_erasure_removes_the_number_everywhere_and_the_gate_still_refuses_it(
    stack: Stack, database_url: str
) -> None:
    customer_id = await _sold(stack)
    gate = await build_gate(ComplianceConfig(database_url, dnc_refresh_seconds=0.0))
    request = CallRequest(NUMBER, "lead-9", "camp-9", CampaignRules("FR"))
    now = datetime.now(UTC)
    try:
        await gate.dnc.add(NUMBER, source="agent refusal")
        before = await gate.check(request, now)
        assert before.rule == RULE_DNC

        report = await CustomerRecords(stack.db).erase(customer_id, "root")
        assert report.counts["dnc_kept_hashed"] == 1 and report.counts["leads"] == 1

        digits = NUMBER[1:]
        async with stack.db.engine.connect() as conn:
            for table in ("customers", "leads", "attempts", "dnc_entry", "notifications", "dispositions"):
                rows = (await conn.execute(text(f"SELECT * FROM {table}"))).all()
                assert digits not in str(rows), table
                assert "Martin" not in str(rows) and "jm@example.org" not in str(rows), table
            hashed = (await conn.execute(text("SELECT number_key, source FROM dnc_erased"))).all()
        assert len(hashed) == 1 and digits not in hashed[0][0] and "erased on request" in hashed[0][1]
    finally:
        await gate.close()

    # A node started after the erasure has no trace of the number in clear, and still refuses it.
    fresh = await build_gate(ComplianceConfig(database_url))
    try:
        after = await fresh.check(request, now)
        assert after.rule == RULE_DNC and "erased on request" in after.reason
        other = await fresh.check(CallRequest("+33612345679", "lead-8", "camp-9", CampaignRules("FR")), now)
        assert other.rule != RULE_DNC
    finally:
        await fresh.close()

    record = await CustomerRecords(stack.db).get(customer_id)
    assert record.erased and record.first_name is None and record.history[0].comments is None
    assert [s.product for s in record.sales] == ["Heat pump HP-12"]  # the sale's figures stay
    with pytest.raises(Refused, match="already erased"):
        await CustomerRecords(stack.db).erase(customer_id, "root")


async def test_erasure_waits_while_the_dialer_holds_the_customers_lead(stack: Stack) -> None:
    customer_id = await _sold(stack)
    async with stack.db.session() as s, s.begin():
        lead = (await s.execute(select(Lead).where(Lead.phone == NUMBER))).scalar_one()
        lead.claimed_by = "node-1"
    with pytest.raises(Refused, match="in progress"):
        await CustomerRecords(stack.db).erase(customer_id, "root")
    assert (await CustomerRecords(stack.db).get(customer_id)).last_name == "Martin"


async def test_a_running_gate_picks_up_a_number_erased_by_another_process(
    stack: Stack, database_url: str
) -> None:
    gate = await build_gate(ComplianceConfig(database_url, dnc_refresh_seconds=0.0))
    request = CallRequest(NUMBER, "lead-9", "camp-9", CampaignRules("FR"))
    now = datetime.now(UTC)
    try:
        assert (await gate.check(request, now)).rule != RULE_DNC
        keyer = await erased_keyer(stack.db.engine)
        async with stack.db.session() as s, s.begin():
            assert keep_hashed(s, keyer, NUMBER, [("camp-9", "agent refusal", None)], now) == 1
        blocked = await gate.check(request, now)
        assert blocked.rule == RULE_DNC and "erased on request" in blocked.reason
        other_campaign = CallRequest(NUMBER, "lead-9", "camp-8", CampaignRules("FR"))
        assert (await gate.check(other_campaign, now)).rule != RULE_DNC  # a campaign's list stays its own
    finally:
        await gate.close()


async def test_erasure_clears_the_number_from_the_shared_redis_index(
    stack: Stack, database_url: str, redis_url: str, redis_namespace: str
) -> None:
    customer_id = await _sold(stack)
    config = ComplianceConfig(database_url, redis_url=redis_url, redis_namespace=redis_namespace)
    gate = await build_gate(config)
    request = CallRequest(NUMBER, "lead-9", "camp-9", CampaignRules("FR"))
    try:
        await gate.dnc.add(NUMBER, source="agent refusal")
        assert gate.dnc.redis_index is not None
        assert await gate.dnc.redis_index.lookup(int(NUMBER[1:]), "camp-9") != []
        records = CustomerRecords(stack.db, redis_url=redis_url, redis_namespace=redis_namespace)
        report = await records.erase(customer_id, "root")
        assert "shared_index_not_cleared" not in report.counts
        assert await gate.dnc.redis_index.lookup(int(NUMBER[1:]), "camp-9") == []  # no number left in clear
        blocked = await gate.check(request, datetime.now(UTC))
        assert blocked.rule == RULE_DNC and "erased on request" in blocked.reason
    finally:
        await gate.close()
