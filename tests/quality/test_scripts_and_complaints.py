"""Scripts filled from the lead and the agent, versioned per call; complaints from record to answer."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from dialer.notify.messages import Notification
from dialer.quality import complaints as cp
from dialer.quality.scripts import (
    ScriptError,
    fill,
    get_script,
    save_script,
    script_for_call,
    version_of_call,
)
from dialer.store.db import Database
from dialer.store.models import Customer
from tests.quality.helpers import call, campaign

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
SCRIPT = {
    "opening": "Hello {customer_name}, {agent_name} from Garage Martin in Lyon.",
    "presentation": "The new {product} is here.",
    "closing": "Thank you {customer_first_name}.",
}


def test_a_missing_value_shows_what_to_ask() -> None:
    assert fill("Hello {customer_name}", {"customer_name": None}) == "Hello [customer's name]"
    assert fill("{{literal}} {agent_name}", {"agent_name": "Paul"}) == "{literal} Paul"


async def test_each_call_keeps_the_script_version_it_was_shown(db: Database) -> None:
    cid = await campaign(db, "spring", T0)
    with pytest.raises(ScriptError, match="unknown placeholder"):
        await save_script(db, cid, {"opening": "Hi {customer_nmae}"}, "sup", T0)
    with pytest.raises(ScriptError, match="unknown section"):
        await save_script(db, cid, {"intro": "Hi"}, "sup", T0)
    one = await save_script(db, cid, SCRIPT, "sup", T0, product="Model 3")
    assert one.version == 1
    values = {"customer_name": "Jeanne Martin", "customer_first_name": "Jeanne", "agent_name": "Paul"}
    shown = await script_for_call(db, "call-1", cid, values, T0)
    assert shown is not None and shown.version == 1
    texts = {name: text for name, _, text in shown.sections}
    assert texts["opening"] == "Hello Jeanne Martin, Paul from Garage Martin in Lyon."
    assert texts["presentation"] == "The new Model 3 is here."
    two = await save_script(db, cid, {**SCRIPT, "closing": "Bye {customer_first_name}."}, "sup", T0)
    assert two.version == 2 and two.product == "Model 3"  # the product carries over
    again = await script_for_call(db, "call-1", cid, values, T0)  # the same call: still version 1
    assert again is not None and again.version == 1
    later = await script_for_call(db, "call-2", cid, values, T0)
    assert later is not None and later.version == 2
    assert (await version_of_call(db, "call-1"), await version_of_call(db, "call-2")) == (1, 2)
    assert (await get_script(db, cid, 1)).sections["closing"] == "Thank you {customer_first_name}."


async def test_a_complaint_is_answered_in_the_preferred_channel_and_overdue_ones_are_counted(
    db: Database,
) -> None:
    cid = await campaign(db, "spring", T0)
    attempt = await call(db, cid, "agent1", T0, "not_interested")
    async with db.session() as s, s.begin():
        customer = (await s.execute(select(Customer))).scalars().one()
        customer.preferred_channel, customer.email = "email", "jeanne@example.org"
    c = await cp.record_complaint(
        db, "agent2", complainant="Jeanne Martin", what="The agent was rude", now=T0, attempt_id=attempt
    )
    assert (c.agent_id, c.campaign_id, c.channel) == ("agent1", cid, "email")
    assert c.due_at == T0 + timedelta(days=5)
    late = T0 + timedelta(days=6)
    assert await cp.count_overdue(db, late) == 1
    assert cp.OVERDUE._value.get() == 1  # the gauge follows the count
    assert [x.id for x in await cp.list_complaints(db, overdue_at=late)] == [c.id]

    with pytest.raises(cp.ComplaintError, match="is open: you can assign"):
        await cp.act(db, c.id, cp.Action.ANSWER, "sup", T0, text="Sorry")
    await cp.act(db, c.id, cp.Action.ASSIGN, "sup", T0, assignee="sup2")
    await cp.act(db, c.id, cp.Action.INVESTIGATE, "sup2", T0, text="Listened to the call: confirmed")
    answered = await cp.act(db, c.id, cp.Action.ANSWER, "sup2", T0, text="We apologise.")
    assert answered.status is cp.ComplaintStatus.ANSWERED
    async with db.read_session() as s:
        message = await s.get(Notification, answered.notification_id)
    assert message is not None
    assert (message.channel, message.recipient, message.ref) == (
        "email",
        "jeanne@example.org",
        f"complaint:{c.id}",
    )
    assert "We apologise." in message.body
    assert await cp.count_overdue(db, late) == 0
    closed = await cp.act(db, c.id, cp.Action.CLOSE, "sup", T0)
    assert closed.status is cp.ComplaintStatus.CLOSED
    with pytest.raises(cp.ComplaintError, match="closed"):
        await cp.act(db, c.id, cp.Action.ASSIGN, "sup", T0, assignee="x")


async def test_a_complaint_without_a_way_to_answer_is_refused(db: Database) -> None:
    with pytest.raises(cp.ComplaintError, match="post contact"):
        await cp.record_complaint(db, "sup", complainant="Someone", what="Called too often", now=T0)
    with pytest.raises(cp.ComplaintError, match="email, sms or post"):
        await cp.record_complaint(
            db, "sup", complainant="Someone", what="x", now=T0, channel="phone", contact="+33612345678"
        )


async def test_the_overdue_gauge_is_kept_current_by_the_watcher(db: Database) -> None:
    await cp.record_complaint(
        db,
        "sup",
        complainant="Old",
        what="Never answered",
        now=datetime.now(UTC) - timedelta(days=10),
        channel="post",
        contact="1 rue X, Lyon",
    )
    until = asyncio.Event()
    watcher = asyncio.create_task(cp.watch_overdue(db, until, every_s=0.05))
    await asyncio.sleep(0.2)
    until.set()
    await watcher
    assert cp.OVERDUE._value.get() == 1  # recorded ten days ago, due in five
