"""The quality API: the agent's script, evaluations and scorecards by role and team, complaints."""

from __future__ import annotations

from tests.api.conftest import Stack
from tests.quality.calls import add_lead, call_reaches, hang_up

SCRIPT = {"opening": "Hello {customer_name}, I am {agent_name} from Garage Martin.", "closing": "Bye"}
ANSWERS = {
    "brand_and_town": {"answer": "yes"},
    "agent_introduced": {"answer": "yes"},
    "customer_by_name": {"answer": "no", "comment": "never said the name"},
    "budget_asked": {"answer": "yes"},
    "usage_asked": {"answer": "yes"},
    "test_drive_offered": {"answer": "na"},
}


async def _qualified_call(stack: Stack, agent: str, h: dict[str, str], name: str) -> str:
    await add_lead(stack, name)
    await stack.client.post("/api/me/login", headers=h)
    await stack.client.post("/api/me/ready", headers=h)
    attempt = await call_reaches(stack, agent)
    await hang_up(stack, attempt)
    reply = await stack.client.post(
        f"/api/calls/{attempt}/disposition",
        headers=h,
        json={"code": "not_interested", "identity": {"first_name": name}},
    )
    assert reply.status_code == 200, reply.text
    return attempt


async def test_the_agent_sees_the_script_filled_and_the_version_is_kept_with_the_call(stack: Stack) -> None:
    sup, agent = await stack.token("sup"), await stack.token("agent1")
    c = stack.client
    assert (
        await c.put(f"/api/campaigns/{stack.campaign_id}/script", headers=agent, json={"sections": SCRIPT})
    ).status_code == 403
    bad = await c.put(
        f"/api/campaigns/{stack.campaign_id}/script", headers=sup, json={"sections": {"opening": "{x}"}}
    )
    assert bad.status_code == 422 and "unknown placeholder" in bad.json()["detail"]
    saved = await c.put(f"/api/campaigns/{stack.campaign_id}/script", headers=sup, json={"sections": SCRIPT})
    assert saved.json()["version"] == 1
    await add_lead(stack, "Jeanne")
    await c.post("/api/me/login", headers=agent)
    await c.post("/api/me/ready", headers=agent)
    attempt = await call_reaches(stack, "agent1")
    shown = (await c.get("/api/me/script", headers=agent)).json()
    assert shown["version"] == 1 and shown["attempt_id"] == attempt
    assert shown["sections"][0]["text"] == "Hello Jeanne Martin, I am Agent1 from Garage Martin."
    await hang_up(stack, attempt)
    await c.post(f"/api/calls/{attempt}/disposition", headers=agent, json={"code": "not_interested"})
    form = (await c.get(f"/api/quality/calls/{attempt}/form", headers=sup)).json()
    assert form["call"]["script_version"] == 1 and form["call"]["recording"] is None
    assert (await c.get("/api/me/script", headers=agent)).status_code == 404  # no call on the desk


async def test_agents_see_only_their_evaluations_and_team_supervisors_only_their_team(stack: Stack) -> None:
    c = stack.client
    sup, root = await stack.token("sup"), await stack.token("root")
    a1, a2 = await stack.token("agent1"), await stack.token("agent2")
    first = await _qualified_call(stack, "agent1", a1, "Jeanne")
    await c.post("/api/me/logout", headers=a1)
    second = await _qualified_call(stack, "agent2", a2, "Paul")
    for attempt in (first, second):
        reply = await c.post(
            f"/api/quality/calls/{attempt}/evaluations", headers=sup, json={"answers": ANSWERS}
        )
        assert reply.status_code == 201, reply.text
        assert reply.json()["grid_version"] == 1
    mine = (await c.get("/api/quality/evaluations", headers=a1)).json()
    assert [e["attempt_id"] for e in mine] == [first]
    assert (await c.get("/api/quality/evaluations?agent=agent2", headers=a1)).status_code == 404
    assert (await c.get(f"/api/quality/calls/{second}/form", headers=a1)).status_code == 403
    assert [s["key"] for s in (await c.get("/api/quality/scorecards", headers=a1)).json()] == ["agent1"]

    # Teams: the supervisor of north sees north only.
    for user, team in (("sup", "north"), ("agent1", "north"), ("agent2", "south")):
        assert (
            await c.put(f"/api/users/{user}/team", headers=root, json={"team": team})
        ).status_code == 204
    assert (await c.put("/api/users/agent1/team", headers=sup, json={"team": "x"})).status_code == 403
    seen = (await c.get("/api/quality/evaluations", headers=sup)).json()
    assert {e["agent_id"] for e in seen} == {"agent1"}
    assert (await c.get(f"/api/quality/calls/{second}/form", headers=sup)).status_code == 404
    refused = await c.post(f"/api/quality/calls/{second}/evaluations", headers=sup, json={"answers": ANSWERS})
    assert refused.status_code == 404
    assert [s["key"] for s in (await c.get("/api/quality/scorecards", headers=sup)).json()] == ["agent1"]
    assert {x["agent_id"] for x in (await c.get("/api/quality/calls", headers=sup)).json()} == {"agent1"}
    teams = (await c.get("/api/quality/scorecards?by=team", headers=root)).json()
    assert {t["key"]: t["evaluations"] for t in teams} == {"north": 1, "south": 1}


async def test_a_complaint_recorded_by_an_agent_is_handled_by_a_supervisor(stack: Stack) -> None:
    c = stack.client
    sup, a1 = await stack.token("sup"), await stack.token("agent1")
    attempt = await _qualified_call(stack, "agent1", a1, "Jeanne")
    body = {
        "complainant": "Jeanne Martin",
        "what": "Called during dinner",
        "attempt_id": attempt,
        "channel": "sms",
    }
    made = await c.post("/api/complaints", headers=a1, json={**body, "contact": "+33612000000"})
    assert made.status_code == 201, made.text
    cid = made.json()["id"]
    assert made.json()["agent_id"] == "agent1" and made.json()["status"] == "open"
    assert (await c.get("/api/complaints", headers=a1)).status_code == 403
    listed = (await c.get("/api/complaints", headers=sup)).json()
    assert listed["overdue"] == 0 and [x["id"] for x in listed["complaints"]] == [cid]
    early = await c.post(f"/api/complaints/{cid}/answer", headers=sup, json={"text": "Sorry"})
    assert early.status_code == 409 and "you can assign" in early.json()["detail"]
    assert (
        await c.post(f"/api/complaints/{cid}/assign", headers=sup, json={"assignee": "sup"})
    ).status_code == 200
    assert (
        await c.post(f"/api/complaints/{cid}/investigate", headers=sup, json={"text": "Checked"})
    ).status_code == 200
    empty = await c.post(f"/api/complaints/{cid}/answer", headers=sup, json={"text": " "})
    assert empty.status_code == 422 and "the answer is empty" in empty.json()["detail"]
    answered = (
        await c.post(f"/api/complaints/{cid}/answer", headers=sup, json={"text": "We apologise"})
    ).json()
    assert answered["status"] == "answered" and answered["notification_id"] is not None
    assert (await c.post("/api/complaints/999/close", headers=sup)).status_code == 404
