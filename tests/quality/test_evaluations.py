"""Evaluations: the automatic items read the record, the score is stored with the grid's version."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from dialer.followup.tasks import FollowupTask
from dialer.notify.messages import Channel, queue_notification
from dialer.quality import evaluations as ev
from dialer.quality.grids import Answer, Item, Section, shipped_grids, store_grid
from dialer.quality.teams import set_team
from dialer.store.db import Database
from dialer.store.models import Customer, DispositionRecord
from tests.quality.helpers import add_users, call, campaign

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
PERSON = {
    "brand_and_town": "yes",
    "agent_introduced": "yes",
    "customer_by_name": "no",
    "budget_asked": "yes",
    "usage_asked": "yes",
    "test_drive_offered": "na",
}


async def test_automatic_items_are_answered_from_the_record(db: Database) -> None:
    cid = await campaign(db, "spring", T0)
    booked = await call(
        db,
        cid,
        "agent1",
        T0,
        "appointment_set",
        appointment_at=T0 + timedelta(days=1),
        identity={"first_name": "Jeanne", "email": "jeanne@example.org"},
        next_actions=["send_info"],
    )
    async with db.session() as s, s.begin():
        d = (await s.execute(select(DispositionRecord))).scalars().one()
        customer_id = d.customer_id
        customer = await s.get(Customer, customer_id)
        assert customer is not None
        customer.preferred_channel = "email"
        message = queue_notification(
            s,
            channel=Channel.EMAIL,
            recipient="jeanne@example.org",
            subject="Your information",
            body="...",
            reason="info.sent",
            now=T0 + timedelta(minutes=5),
            customer_id=customer_id,
        )
        message.status, message.sent_at = "sent", T0 + timedelta(minutes=6)
    bare = await call(db, cid, "agent1", T0 + timedelta(hours=1), "not_interested")

    form = await ev.evaluation_form(db, "sup", "supervisor", booked, "phone_contact", T0 + timedelta(days=3))
    facts = {k: f.answer for k, f in form.facts.items()}
    assert facts == {
        "appointment_offered": Answer.YES,
        "follow_up_48h": Answer.YES,
        "preferred_channel": Answer.YES,
        "info_sent_2h": Answer.YES,
        "callback_1h": Answer.NA,
        "record_confirmed": Answer.YES,
    }
    bare_form = await ev.evaluation_form(
        db, "sup", "supervisor", bare, "phone_contact", T0 + timedelta(days=3)
    )
    bare_facts = {k: f.answer for k, f in bare_form.facts.items()}
    assert bare_facts["appointment_offered"] is Answer.NO
    assert bare_facts["record_confirmed"] is Answer.NO
    assert bare_facts["follow_up_48h"] is Answer.NO
    assert "missing the name" in bare_form.facts["record_confirmed"].reason

    record = await ev.evaluate(
        db, "sup", "supervisor", booked, "phone_contact", ev.answers_from(PERSON), T0 + timedelta(days=3)
    )
    # Person: yes 2+1+2+2, no 1 (customer_by_name), N/A test drive; system: 6 items yes (2+2+1+1+2), 1 N/A.
    assert record.score == round(100 * (7 + 8) / (8 + 8), 1)
    assert record.grid_version == 1
    sources = {a.item: a.source for a in record.answers}
    assert sources["record_confirmed"] == "system" and sources["brand_and_town"] == "person"


async def test_a_changed_grid_is_a_new_version_and_old_scores_keep_theirs(db: Database) -> None:
    cid = await campaign(db, "spring", T0)
    first = await call(db, cid, "agent1", T0)
    one = await ev.evaluate(db, "sup", "supervisor", first, "phone_contact", ev.answers_from(PERSON), T0)
    grid = shipped_grids()["phone_contact"]
    extra = Section("Closing", (Item("thanked", "The customer is thanked", 1.0),))
    async with db.session() as s, s.begin():
        assert await store_grid(s, grid, T0) == 1  # unchanged: the same version
        assert await store_grid(s, replace(grid, sections=(*grid.sections, extra)), T0) == 2
    with pytest.raises(ev.Rejected, match="missing thanked"):
        await ev.evaluate(db, "sup", "supervisor", first, "phone_contact", ev.answers_from(PERSON), T0)
    two = await ev.evaluate(
        db, "sup", "supervisor", first, "phone_contact", ev.answers_from({**PERSON, "thanked": "yes"}), T0
    )
    assert (one.grid_version, two.grid_version) == (1, 2)
    listed = await ev.list_evaluations(db, "sup", "supervisor", attempt_id=first)
    assert [e.grid_version for e in listed] == [2, 1]


async def test_an_agent_sees_only_their_own_evaluations(db: Database) -> None:
    cid = await campaign(db, "spring", T0)
    mine = await call(db, cid, "agent1", T0)
    theirs = await call(db, cid, "agent2", T0)
    for attempt in (mine, theirs):
        await ev.evaluate(db, "sup", "supervisor", attempt, "phone_contact", ev.answers_from(PERSON), T0)
    seen = await ev.list_evaluations(db, "agent1", "agent")
    assert [e.attempt_id for e in seen] == [mine]
    with pytest.raises(ev.NotVisible):
        await ev.list_evaluations(db, "agent1", "agent", agent_id="agent2")
    with pytest.raises(ev.NotVisible):  # an agent does not score calls, not even their own
        await ev.evaluate(db, "agent1", "agent", mine, "phone_contact", ev.answers_from(PERSON), T0)


async def test_a_team_supervisor_sees_only_their_team(db: Database) -> None:
    cid = await campaign(db, "spring", T0)
    north = await call(db, cid, "agent1", T0)
    south = await call(db, cid, "agent2", T0)
    await ev.evaluate(db, "boss", "supervisor", north, "phone_contact", ev.answers_from(PERSON), T0)
    await ev.evaluate(db, "boss", "supervisor", south, "phone_contact", ev.answers_from(PERSON), T0)
    await add_users(db, "agent1", "supn", "agent2")
    async with db.session() as s, s.begin():
        await set_team(s, "agent1", "north")
        await set_team(s, "supn", "north")
        await set_team(s, "agent2", "south")
    assert [e.agent_id for e in await ev.list_evaluations(db, "supn", "supervisor")] == ["agent1"]
    with pytest.raises(ev.NotVisible):
        await ev.list_evaluations(db, "supn", "supervisor", agent_id="agent2")
    with pytest.raises(ev.NotVisible):
        await ev.evaluation_form(db, "supn", "supervisor", south, "phone_contact", T0)
    with pytest.raises(ev.NotVisible):
        await ev.evaluate(db, "supn", "supervisor", south, "phone_contact", ev.answers_from(PERSON), T0)
    # A supervisor in no team, and an admin, see everyone.
    assert len(await ev.list_evaluations(db, "boss", "supervisor")) == 2
    assert len(await ev.list_evaluations(db, "supn", "admin")) == 2


async def test_bad_answers_are_refused_with_what_to_fix(db: Database) -> None:
    cid = await campaign(db, "spring", T0)
    attempt = await call(db, cid, "agent1", T0)
    with pytest.raises(ev.Rejected, match="yes, no or na"):
        ev.answers_from({"brand_and_town": "maybe"})
    with pytest.raises(ev.Rejected, match="missing"):
        await ev.evaluate(db, "sup", "supervisor", attempt, "phone_contact", ev.answers_from({}), T0)
    with pytest.raises(ev.NotVisible):
        await ev.evaluate(db, "sup", "supervisor", "no-such-call", "phone_contact", [], T0)


async def test_follow_up_tasks_of_the_call_answer_the_deadline_items(db: Database) -> None:
    cid = await campaign(db, "spring", T0)
    attempt = await call(db, cid, "agent1", T0, "not_interested")
    async with db.session() as s, s.begin():
        d = (await s.execute(select(DispositionRecord))).scalars().one()
        for kind, done, channel in (
            ("information", T0 + timedelta(hours=1), "email"),
            ("follow_up", None, "sms"),
        ):
            s.add(
                FollowupTask(
                    kind=kind,
                    campaign_id=cid,
                    lead_id=d.lead_id,
                    agent_id="agent1",
                    customer_id=d.customer_id,
                    channel=channel,
                    source=f"disposition:{d.id}",
                    attempt_id=attempt,
                    created_at=T0,
                    due_at=T0 + timedelta(hours=2 if kind == "information" else 48),
                    done_at=done,
                    status="met" if done else "open",
                )
            )
    form = await ev.evaluation_form(db, "sup", "supervisor", attempt, "phone_contact", T0 + timedelta(days=3))
    facts = {k: f.answer for k, f in form.facts.items()}
    assert facts["info_sent_2h"] is Answer.YES  # done within its deadline, though no message is in the record
    assert facts["follow_up_48h"] is Answer.NO  # still open after its deadline
    assert facts["preferred_channel"] is Answer.NO  # by SMS; the customer prefers the phone (no preference)
