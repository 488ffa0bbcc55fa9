"""``/api/notifications``: supervisors see every message's status and can retry or mark letters posted."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import update

from dialer.notify.messages import Notification, Status
from dialer.store.db import Database
from tests.api.conftest import Stack, build_stack
from tests.notify.helpers import queue


@pytest.fixture
async def stack(lite_db: Database) -> AsyncIterator[Stack]:
    async for s in build_stack(lite_db):
        yield s


async def test_supervisor_lists_filters_and_retries(stack: Stack) -> None:
    await queue(stack.db, "bob@example.org", body="See you on Monday.")
    await queue(stack.db, "+33612345678", channel="sms")
    await queue(stack.db, "Ann Smith, 1 High St", channel="post")
    async with stack.db.session() as s, s.begin():
        await s.execute(
            update(Notification).where(Notification.id == 1).values(status="failed", last_error="550 refused")
        )
    sup = await stack.token("sup")

    listed = await stack.client.get("/api/notifications", headers=sup)
    assert listed.status_code == 200, listed.text
    assert [(n["id"], n["channel"], n["status"]) for n in listed.json()] == [
        (3, "post", "to_mail"),
        (2, "sms", "pending"),
        (1, "email", "failed"),
    ]
    assert [n["recipient"] for n in listed.json()][1:] == ["+33******678", "b***@example.org"]
    failed = await stack.client.get("/api/notifications", params={"status": "failed"}, headers=sup)
    assert [n["id"] for n in failed.json()] == [1]
    by_ref = await stack.client.get("/api/notifications", params={"ref": "appointment:1"}, headers=sup)
    assert {n["ref"] for n in by_ref.json()} == {"appointment:1"}

    one = await stack.client.get("/api/notifications/1", headers=sup)
    assert one.json()["body"] == "See you on Monday." and one.json()["last_error"] == "550 refused"
    assert one.json()["message_id"].endswith("@dialer.invalid>")

    retried = await stack.client.post("/api/notifications/1/retry", headers=sup)
    assert retried.status_code == 200 and retried.json()["status"] == "pending"
    again = await stack.client.post("/api/notifications/1/retry", headers=sup)
    assert again.status_code == 409 and "not failed" in again.json()["detail"]
    posted = await stack.client.post("/api/notifications/3/mailed", headers=sup)
    assert posted.status_code == 200 and posted.json()["status"] == Status.MAILED
    assert (await stack.client.get("/api/notifications/99", headers=sup)).status_code == 404


async def test_agents_do_not_see_notifications(stack: Stack) -> None:
    agent = await stack.token("agent1")
    assert (await stack.client.get("/api/notifications", headers=agent)).status_code == 403
    assert (await stack.client.get("/api/notifications")).status_code == 401
    bad = await stack.client.get(
        "/api/notifications", params={"status": "lost"}, headers=await stack.token("sup")
    )
    assert bad.status_code == 422 and "status" in bad.json()["detail"]
