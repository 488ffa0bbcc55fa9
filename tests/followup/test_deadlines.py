"""Each follow-up service level on a virtual clock: met when the work is done in time, overdue when not."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select, update

from dialer.domain.dispositions import DispositionError
from dialer.followup.board import FollowupBoard
from dialer.followup.levels import Kind, Level
from dialer.followup.tasks import FollowupTask, notification_sent
from dialer.notify.messages import Notification
from dialer.service.uow import SqlUnitOfWork
from dialer.store.db import Database
from dialer.store.models import Lead
from dialer.store.repositories import CampaignRecord
from tests.store.conftest import T0
from tests.store.helpers import add_leads, fr_numbers

HOUR = timedelta(hours=1)


async def _call(db: Database, campaign: CampaignRecord, at: datetime, result: str = "connected") -> str:
    """The lead's next call, closed with ``result``; returns the attempt id."""
    [lead] = await db.hopper.claim_leads(campaign.id, 1, at, "n")
    attempt_id = await db.attempts.open_attempt(lead.lead_id, campaign.id, lead.number, "n", at)
    if result == "connected":
        await db.attempts.record_event(attempt_id, "answered", at)
    await db.attempts.close_attempt(attempt_id, result, 16, "person", at, agent_id="ag1")
    return attempt_id


async def _qualify(db: Database, attempt_id: str, code: str, at: datetime, **extra: object) -> None:
    async with SqlUnitOfWork(db) as uow:
        await uow.write_disposition(attempt_id, code, "ag1", now=at, **extra)  # type: ignore[arg-type]
        await uow.commit()


async def _one(db: Database, kind: Kind, at: datetime) -> Level:
    [task] = await FollowupBoard(db).tasks(at, kinds=[kind], include_done=True)
    return task.level


async def _due_again(db: Database, at: datetime) -> None:
    async with db.session() as s, s.begin():  # the lead is to be called again now (as if its rule said so)
        await s.execute(update(Lead).values(status="retry", next_attempt_at=at))


async def _dial_again(db: Database, campaign: CampaignRecord, at: datetime) -> None:
    await _due_again(db, at)
    await _call(db, campaign, at, result="no_answer")


@pytest.mark.parametrize("done", [True, False])
async def test_a_callback_without_a_time_is_made_within_the_hour(
    db: Database, campaign: CampaignRecord, done: bool
) -> None:
    await add_leads(db, campaign.id, fr_numbers(1), T0)
    attempt_id = await _call(db, campaign, T0)
    await _qualify(db, attempt_id, "callback_requested", T0)
    [task] = await FollowupBoard(db).tasks(T0)
    assert task.kind is Kind.CALLBACK and task.due_at == T0 + HOUR and task.level is Level.OPEN
    if done:
        dial_at = T0 + timedelta(minutes=48)  # due then (1 h - 10 min grace - 2 min slack)
        assert await db.hopper.claim_leads(campaign.id, 1, dial_at - timedelta(seconds=1), "n") == []
        await _call(db, campaign, dial_at, result="no_answer")  # made: the answer is not the promise
        assert await _one(db, Kind.CALLBACK, T0 + 2 * HOUR) is Level.MET
    else:
        assert await _one(db, Kind.CALLBACK, T0 + HOUR) is Level.OPEN
        assert await _one(db, Kind.CALLBACK, T0 + HOUR + timedelta(seconds=1)) is Level.OVERDUE


async def test_a_callback_made_after_its_deadline_is_missed(db: Database, campaign: CampaignRecord) -> None:
    await add_leads(db, campaign.id, fr_numbers(1), T0)
    attempt_id = await _call(db, campaign, T0)
    await _qualify(db, attempt_id, "callback_requested", T0, callback_at=T0 + 3 * HOUR)
    [task] = await FollowupBoard(db).tasks(T0)
    assert task.due_at == T0 + 3 * HOUR + timedelta(minutes=12)  # the customer's time, grace, slack
    await _call(db, campaign, T0 + 4 * HOUR, result="no_answer")
    assert await _one(db, Kind.CALLBACK, T0 + 5 * HOUR) is Level.MISSED


@pytest.mark.parametrize("sent_after", [timedelta(minutes=90), None])
async def test_information_promised_by_email_is_sent_within_two_hours(
    db: Database, campaign: CampaignRecord, sent_after: timedelta | None
) -> None:
    await add_leads(db, campaign.id, fr_numbers(1), T0, email="lea@example.com", first_name="Léa")
    attempt_id = await _call(db, campaign, T0)
    await _qualify(db, attempt_id, "not_qualified", T0, information_template="brochure")
    async with db.read_session() as s:
        note = (await s.execute(select(Notification))).scalar_one()
    assert note.recipient == "lea@example.com" and note.status == "pending"
    assert "Hello Léa," in note.body and "https://example.com/brochure" in note.body
    [task] = await FollowupBoard(db).tasks(T0)
    assert task.kind is Kind.INFORMATION and task.due_at == T0 + 2 * HOUR and task.notification_id == note.id
    if sent_after is not None:
        async with SqlUnitOfWork(db) as uow:  # what the delivery worker does when the server took it
            await uow.session.execute(update(Notification).values(status="sent", sent_at=T0 + sent_after))
            assert await notification_sent(uow, note.id, T0 + sent_after)
            await uow.commit()
        assert await _one(db, Kind.INFORMATION, T0 + 3 * HOUR) is Level.MET
    else:
        assert await _one(db, Kind.INFORMATION, T0 + 2 * HOUR) is Level.OPEN
        assert await _one(db, Kind.INFORMATION, T0 + 2 * HOUR + timedelta(seconds=1)) is Level.OVERDUE


async def test_an_information_email_sent_without_the_hook_is_seen_when_levels_are_computed(
    db: Database, campaign: CampaignRecord
) -> None:
    await add_leads(db, campaign.id, fr_numbers(1), T0, email="lea@example.com")
    attempt_id = await _call(db, campaign, T0)
    await _qualify(db, attempt_id, "not_qualified", T0, information_template="configurator")
    async with db.session() as s, s.begin():
        await s.execute(update(Notification).values(status="sent", sent_at=T0 + 3 * HOUR))
    assert await _one(db, Kind.INFORMATION, T0 + 4 * HOUR) is Level.MISSED  # sent, but late


async def test_information_needs_a_known_template_and_an_address(
    db: Database, campaign: CampaignRecord
) -> None:
    await add_leads(db, campaign.id, fr_numbers(1), T0)
    attempt_id = await _call(db, campaign, T0)
    with pytest.raises(DispositionError, match="choose among: brochure, configurator"):
        await _qualify(db, attempt_id, "not_qualified", T0, information_template="leaflet")
    with pytest.raises(DispositionError, match="no email address"):
        await _qualify(db, attempt_id, "not_qualified", T0, information_template="brochure")
    async with db.read_session() as s:  # nothing of the refused disposition was written
        assert (await s.execute(select(FollowupTask))).first() is None
        assert (await s.execute(select(Notification))).first() is None


@pytest.mark.parametrize("answered_after", [timedelta(hours=47), None])
async def test_a_follow_up_by_phone_is_an_answered_call_within_48_hours(
    db: Database, campaign: CampaignRecord, answered_after: timedelta | None
) -> None:
    await add_leads(db, campaign.id, fr_numbers(1), T0)
    attempt_id = await _call(db, campaign, T0)
    await _qualify(db, attempt_id, "not_qualified", T0, follow_up=True)
    [task] = await FollowupBoard(db).tasks(T0)
    assert task.kind is Kind.FOLLOW_UP and task.channel == "phone" and task.due_at == T0 + 48 * HOUR
    await _dial_again(db, campaign, T0 + HOUR)  # not a contact: the task stays open
    assert await _one(db, Kind.FOLLOW_UP, T0 + 2 * HOUR) is Level.OPEN
    if answered_after is not None:
        await _due_again(db, T0)
        await _call(db, campaign, T0 + answered_after)
        assert await _one(db, Kind.FOLLOW_UP, T0 + 50 * HOUR) is Level.MET
    else:
        assert await _one(db, Kind.FOLLOW_UP, T0 + 48 * HOUR + timedelta(seconds=1)) is Level.OVERDUE


async def test_a_follow_up_by_email_is_a_message_sent_in_that_channel(
    db: Database, campaign: CampaignRecord
) -> None:
    await add_leads(db, campaign.id, fr_numbers(1), T0, email="lea@example.com")
    async with db.session() as s, s.begin():
        await s.execute(update(Lead).values(preferred_channel="email"))
    attempt_id = await _call(db, campaign, T0)
    await _qualify(db, attempt_id, "not_qualified", T0, follow_up=True, information_template="brochure")
    async with db.session() as s, s.begin():  # the promised information is not the follow-up
        await s.execute(update(Notification).values(status="sent", sent_at=T0 + HOUR))
    assert await _one(db, Kind.FOLLOW_UP, T0 + 2 * HOUR) is Level.OPEN
    [task] = await FollowupBoard(db).tasks(T0 + 2 * HOUR, kinds=[Kind.FOLLOW_UP])
    async with db.session() as s, s.begin():
        s.add(
            Notification(
                channel="email",
                recipient="lea@example.com",
                subject="Your offer",
                body="...",
                reason="campaign.follow_up",
                customer_id=(await s.get(FollowupTask, task.id)).customer_id,  # type: ignore[union-attr]
                status="sent",
                attempts=1,
                message_id="<f1@example.com>",
                created_at=T0 + 20 * HOUR,
                sent_at=T0 + 20 * HOUR,
            )
        )
    assert await _one(db, Kind.FOLLOW_UP, T0 + 21 * HOUR) is Level.MET


@pytest.mark.parametrize("called_after", [timedelta(minutes=40), None])
async def test_a_missed_customer_is_called_back_within_the_hour(
    db: Database, campaign: CampaignRecord, called_after: timedelta | None
) -> None:
    await add_leads(db, campaign.id, fr_numbers(1), T0)
    abandoned = await _call(db, campaign, T0, result="abandoned")
    [task] = await FollowupBoard(db).tasks(T0)
    assert task.kind is Kind.MISSED_CALL_BACK and task.due_at == T0 + HOUR
    assert task.source == f"attempt:{abandoned}"
    if called_after is not None:
        await _dial_again(db, campaign, T0 + called_after)
        assert await _one(db, Kind.MISSED_CALL_BACK, T0 + 2 * HOUR) is Level.MET
    else:
        assert await _one(db, Kind.MISSED_CALL_BACK, T0 + HOUR + timedelta(seconds=1)) is Level.OVERDUE


async def test_a_callback_whose_lead_was_closed_meanwhile_is_refused_not_overdue(
    db: Database, campaign: CampaignRecord
) -> None:
    await add_leads(db, campaign.id, fr_numbers(1), T0)
    await _qualify(db, await _call(db, campaign, T0), "callback_requested", T0)
    async with db.session() as s, s.begin():  # e.g. the person wrote in to refuse calls
        await s.execute(update(Lead).values(status="do_not_call"))
    [task] = await FollowupBoard(db).tasks(T0 + 2 * HOUR, kinds=[Kind.CALLBACK], include_done=True)
    assert (
        task.level is Level.REFUSED
        and task.detail == "not made: the callback is pending, the lead do_not_call"
    )
    assert (await FollowupBoard(db).summary(T0 + 2 * HOUR)).callbacks_overdue == 0
