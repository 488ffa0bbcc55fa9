"""The calendar's HTTP API: an agent offers slots for the customer on the call and books one; roles hold."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from dialer.store.db import Database
from dialer.store.models import Attempt, Lead
from tests.api.conftest import Stack, build_stack
from tests.store.helpers import add_leads

ALICE = {
    "id": "alice",
    "name": "Alice Martin",
    "email": "alice@example.com",
    "timezone": "Europe/Paris",
    "home_postcode": "75001",
    "areas": ["75"],
    "hours": "mon-sun 00:00-23:59",
}


@pytest.fixture
async def stack(db: Database) -> AsyncIterator[Stack]:
    async for s in build_stack(db):
        yield s


async def connected_call(stack: Stack, agent_id: str, postcode: str | None = "75011") -> str:
    now = datetime.now(UTC)
    (lead_id,) = await add_leads(stack.db, stack.campaign_id, [f"+3314{uuid.uuid4().int % 10**7:07d}"], now)
    attempt_id = str(uuid.uuid4())
    async with stack.db.session() as s, s.begin():
        lead = await s.get(Lead, lead_id)
        assert lead is not None
        lead.postcode = postcode
        s.add(
            Attempt(
                id=attempt_id,
                campaign_id=stack.campaign_id,
                lead_id=lead_id,
                number=lead.phone,
                node_id="node-1",
                status="closed",
                created_at=now,
                ended_at=now,
                agent_id=agent_id,
            )
        )
    return attempt_id


async def test_an_agent_offers_slots_for_the_call_and_books_one(stack: Stack) -> None:
    root, agent, sup = await stack.token("root"), await stack.token("agent1"), await stack.token("sup")
    reply = await stack.client.post("/api/calendar/salespeople", json=ALICE, headers=root)
    assert reply.status_code == 201, reply.text
    assert reply.json()["hours"] == "mon-sun 00:00-23:59"
    assert (
        await stack.client.post("/api/calendar/salespeople", json=ALICE, headers=agent)
    ).status_code == 403
    call = await connected_call(stack, "agent1")

    reply = await stack.client.get(
        "/api/calendar/slots", params={"attempt_id": call, "count": 3}, headers=agent
    )
    assert reply.status_code == 200, reply.text
    offered = reply.json()
    assert offered["postcode"] == "75011" and len(offered["slots"]) == 3
    slot = offered["slots"][0]
    assert slot["salesperson_id"] == "alice"

    book = {"attempt_id": call, "salesperson_id": "alice", "starts_at": slot["starts_at"]}
    reply = await stack.client.post("/api/calendar/appointments", json=book, headers=agent)
    assert reply.status_code == 201, reply.text
    appointment = reply.json()
    assert appointment["status"] == "booked" and appointment["booked_by"] == "agent1"

    other = await connected_call(stack, "agent2")
    agent2 = await stack.token("agent2")
    taken = {**book, "attempt_id": other}
    reply = await stack.client.post("/api/calendar/appointments", json=taken, headers=agent2)
    assert reply.status_code == 409 and reply.json()["detail"].startswith("taken: Alice Martin already has")
    # agent2 cannot book on agent1's call, nor move agent1's visit
    reply = await stack.client.post("/api/calendar/appointments", json=book, headers=agent2)
    assert reply.status_code == 404
    later = (datetime.fromisoformat(slot["starts_at"]) + timedelta(days=1)).isoformat()
    path = f"/api/calendar/appointments/{appointment['id']}"
    assert (await stack.client.patch(path, json={"starts_at": later}, headers=agent2)).status_code == 404

    reply = await stack.client.patch(path, json={"starts_at": later}, headers=agent)
    assert reply.status_code == 200 and reply.json()["sequence"] == 1
    day = later[:10]
    listed = await stack.client.get("/api/calendar/appointments", params={"day": day}, headers=sup)
    assert [a["id"] for a in listed.json()] == [appointment["id"]]
    assert (await stack.client.get("/api/calendar/appointments", headers=agent)).status_code == 403
    reply = await stack.client.delete(path, headers=sup)
    assert reply.status_code == 200 and reply.json()["status"] == "cancelled"


async def test_bad_requests_say_what_to_fix(stack: Stack) -> None:
    root, agent = await stack.token("root"), await stack.token("agent1")
    await stack.client.post("/api/calendar/salespeople", json=ALICE, headers=root)
    reply = await stack.client.get("/api/calendar/slots", headers=agent)
    assert reply.status_code == 422 and "attempt_id" in reply.json()["detail"]
    reply = await stack.client.get("/api/calendar/slots", params={"postcode": "13001"}, headers=agent)
    assert reply.status_code == 409 and "no salesperson covers postcode 13001" in reply.json()["detail"]
    call = await connected_call(stack, "agent1", postcode=None)
    reply = await stack.client.get("/api/calendar/slots", params={"attempt_id": call}, headers=agent)
    assert reply.status_code == 422 and "no postcode" in reply.json()["detail"]
    past = {"attempt_id": call, "salesperson_id": "alice", "starts_at": "2020-01-06T10:00:00+01:00"}
    reply = await stack.client.post(
        "/api/calendar/appointments", json={**past, "postcode": "75011"}, headers=agent
    )
    assert reply.status_code == 409 and reply.json()["detail"].startswith("in_past")
    bad = {**ALICE, "id": "bob", "timezone": "Mars/Olympus"}
    reply = await stack.client.post("/api/calendar/salespeople", json=bad, headers=root)
    assert reply.status_code == 422 and "time zone" in reply.json()["detail"]
    reply = await stack.client.put(
        "/api/calendar/config", json={"config": {"travel": {"speed": 3}}}, headers=root
    )
    assert reply.status_code == 422 and "unknown [travel] setting" in reply.json()["detail"]
    good = {
        "config": {"notice_minutes": 30, "travel": {"times": [{"from": "75", "to": "92", "minutes": 35}]}}
    }
    reply = await stack.client.put("/api/calendar/config", json=good, headers=root)
    assert reply.status_code == 200 and reply.json()["notice_minutes"] == 30
