"""An agent's shift through the API against a real Engine: log in, ready, a call, the record, one click."""

from __future__ import annotations

import time
from datetime import timedelta

from sqlalchemy import func, select

from dialer.domain.campaign import CampaignSettings, CampaignStatus
from dialer.store.models import DispositionRecord
from dialer.store.outbox_repo import OutboxRepository
from dialer.store.repositories import NewLead
from telephony.base import AnsweredCall, Connected, ConnectToAgent, HungUp
from tests.api.conftest import T0, Stack

NUMBER = "+33612345678"


async def _add_lead(stack: Stack, campaign_id: int, first_name: str) -> None:
    list_id = await stack.db.leads.create_list(campaign_id, "test", "test.csv", "FR", now=T0)
    await stack.db.leads.add(
        campaign_id,
        list_id,
        [NewLead(phone=NUMBER, timezones=("Europe/Paris",), first_name=first_name)],  # type: ignore[call-arg]
        now=T0,
    )


async def _earlier_comment(stack: Stack) -> None:
    """Another agent spoke to this customer in another campaign and left a comment."""
    other = await stack.db.campaigns.create(
        "autumn", CampaignSettings(dial_string="PJSIP/{digits}@trunk", caller_id="+33100000000"), now=T0
    )
    await _add_lead(stack, other.id, "Jeanne")
    (lead,) = [lead async for lead in stack.db.leads.iter_leads(other.id)]
    attempt = await stack.db.attempts.open_attempt(lead.id, other.id, NUMBER, "node-0", T0)
    await stack.db.dispositions.record_disposition(
        attempt,
        "busy",
        "agent9",
        now=T0,
        comments="prefers calls after 6 pm",
        identity={"first_name": "Jeanne"},
    )


async def _call_reaches(stack: Stack, agent_id: str) -> str:
    assert await stack.engine.tick() == 1
    attempt_id = stack.pbx.originates[-1].attempt_id
    decision = await stack.engine.on_answered(AnsweredCall(attempt_id, time.time()))
    assert decision == ConnectToAgent(agent_id)
    await stack.engine.handle(Connected(attempt_id, time.time(), agent_id))
    return attempt_id


async def test_an_agent_takes_a_call_sees_the_record_and_qualifies_it_in_one_click(stack: Stack) -> None:
    await _earlier_comment(stack)
    await _add_lead(stack, stack.campaign_id, "Jeanne")
    me = await stack.token("agent1")
    other = await stack.token("agent2")

    reply = await stack.client.post("/api/me/login", headers=me)
    assert reply.status_code == 200 and reply.json()["state"] == "paused"
    assert (await stack.client.post("/api/me/ready", headers=me)).json()["state"] == "ready"

    attempt_id = await _call_reaches(stack, "agent1")
    call = (await stack.client.get("/api/me/call", headers=me)).json()
    assert call["attempt_id"] == attempt_id and call["phase"] == "talking"
    assert call["campaign_name"] == "spring" and call["lead"]["first_name"] == "Jeanne"
    assert NUMBER not in str(call) and call["number"].endswith("78")
    assert call["customer"]["identity"] == {"first_name": "Jeanne"}
    assert [c["comments"] for c in call["comments"]] == ["prefers calls after 6 pm"]
    assert call["comments"][0]["agent_id"] == "agent9"
    assert "sale" in [d["code"] for d in call["dispositions"]]

    # Another agent can neither read nor qualify nor hang up this call.
    assert (await stack.client.get("/api/me/call", headers=other)).status_code == 404
    for action, body in (("disposition", {"code": "sale"}), ("hangup", None)):
        reply = await stack.client.post(f"/api/calls/{attempt_id}/{action}", json=body, headers=other)
        assert reply.status_code == 404, reply.text

    # Still talking: the disposition waits for the hang-up.
    reply = await stack.client.post(f"/api/calls/{attempt_id}/disposition", json={"code": "sale"}, headers=me)
    assert reply.status_code == 409 and "hang up first" in reply.json()["detail"]
    assert (await stack.client.post(f"/api/calls/{attempt_id}/hangup", headers=me)).status_code == 204
    assert stack.pbx.hangups == [attempt_id]
    await stack.engine.handle(HungUp(attempt_id, time.time(), cause=16))
    assert (await stack.client.get("/api/me/call", headers=me)).json()["phase"] == "wrap_up"

    reply = await stack.client.post(
        f"/api/calls/{attempt_id}/disposition",
        json={
            "code": "not_interested",
            "identity": {"last_name": "Martin"},
            "objections": ["price"],
            "result": "has a contract until 2027",
            "next_actions": ["none"],
            "comments": "polite, firm no",
        },
        headers=me,
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["code"] == "not_interested" and body["gate_update_queued"] and body["agent_state"] == "ready"
    assert body["lead_status"] == "done"
    assert (await stack.client.get("/api/me", headers=me)).json()["desk"]["state"] == "ready"
    assert (await stack.client.get("/api/me/call", headers=me)).status_code == 404

    # The refusal went to the outbox with the disposition; the relay delivers it to the gate.
    assert [m.payload["kind"] for m in await OutboxRepository(stack.db).pending()] == ["refusal"]
    assert await stack.relay.deliver_pending() == 1
    assert (NUMBER, "refusal") in stack.gate.outcomes
    customer = await stack.db.customers.get(NUMBER)
    assert customer is not None and customer.identity == {"first_name": "Jeanne", "last_name": "Martin"}

    # A second click is refused and writes nothing.
    reply = await stack.client.post(f"/api/calls/{attempt_id}/disposition", json={"code": "sale"}, headers=me)
    assert reply.status_code == 409 and "already qualified 'not_interested'" in reply.json()["detail"]
    async with stack.db.read_session() as s:
        count = (await s.execute(select(func.count()).select_from(DispositionRecord))).scalar_one()
    assert count == 2  # the earlier campaign's and this one


async def test_a_disposition_after_the_wrap_up_limit_is_refused_not_recorded_twice(stack: Stack) -> None:
    await _add_lead(stack, stack.campaign_id, "Paul")
    me = await stack.token("agent1")
    await stack.client.post("/api/me/login", headers=me)
    await stack.client.post("/api/me/ready", headers=me)
    attempt_id = await _call_reaches(stack, "agent1")
    await stack.engine.handle(HungUp(attempt_id, time.time(), cause=16))
    await stack.engine.flush_wrap_ups()  # what the wrap-up limit does when it runs out
    reply = await stack.client.post(f"/api/calls/{attempt_id}/disposition", json={"code": "sale"}, headers=me)
    assert reply.status_code == 409
    assert (
        "already qualified 'not_qualified'" in reply.json()["detail"] and "wrap-up" in reply.json()["detail"]
    )


async def test_pause_with_a_reason_and_supervisor_views(stack: Stack) -> None:
    await _add_lead(stack, stack.campaign_id, "Paul")
    me, sup = await stack.token("agent1"), await stack.token("sup")
    await stack.client.post("/api/me/login", headers=me)
    await stack.client.post("/api/me/ready", headers=me)
    attempt_id = await _call_reaches(stack, "agent1")
    calls = (await stack.client.get("/api/calls", headers=sup)).json()
    assert [(c["attempt_id"], c["agent_id"], c["state"]) for c in calls] == [
        (attempt_id, "agent1", "connected")
    ]
    assert NUMBER not in str(calls)
    reply = await stack.client.post("/api/agents/agent1/logout", headers=sup)
    assert reply.status_code == 409 and "qualify the call first" in reply.json()["detail"]
    await stack.engine.handle(HungUp(attempt_id, time.time(), cause=16))
    # Asked during wrap-up, the pause is taken with the disposition.
    paused = (await stack.client.post("/api/me/pause", json={"reason": "lunch"}, headers=me)).json()
    assert paused["state"] == "wrap_up" and paused["pause_after_call"] == "lunch"
    callback_at = (T0 + timedelta(days=400)).isoformat()
    reply = await stack.client.post(f"/api/calls/{attempt_id}/callback", json={"at": callback_at}, headers=me)
    assert reply.status_code == 200 and reply.json()["callback_id"] is not None
    agents = (await stack.client.get("/api/agents", headers=sup)).json()
    assert [(a["agent_id"], a["state"], a["pause_reason"]) for a in agents] == [("agent1", "paused", "lunch")]
    rate = (await stack.client.get(f"/api/campaigns/{stack.campaign_id}/abandonment", headers=sup)).json()
    assert rate["cap"] == 0.03 and rate["abandoned"] == 0 and not rate["over_cap"]
    stopped = await stack.client.post(f"/api/campaigns/{stack.campaign_id}/pause", headers=sup)
    assert stopped.json()["status"] == "paused" and stack.desk.dialing_campaigns() == []
    assert (await stack.db.campaigns.get(stack.campaign_id)).status is CampaignStatus.PAUSED
    out = await stack.client.post("/api/agents/agent1/logout", headers=sup)
    assert out.json()["state"] == "logged_out"
