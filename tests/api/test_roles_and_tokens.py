"""Who may call what: tokens, expiry, roles, and an agent never sees another agent's call."""

from __future__ import annotations

from datetime import timedelta

from dialer.service.accounts import Accounts
from tests.api.conftest import FAST, PASSWORD, Stack

SUPERVISOR_AND_ADMIN = [
    ("GET", "/api/agents", None),
    ("GET", "/api/calls", None),
    ("POST", "/api/campaigns/{c}/start", None),
    ("POST", "/api/campaigns/{c}/pause", None),
    ("POST", "/api/campaigns/{c}/stop", None),
    ("GET", "/api/campaigns/{c}/abandonment", None),
    ("POST", "/api/agents/agent2/logout", None),
    ("GET", "/api/users", None),
    ("POST", "/api/users", {"id": "eve", "name": "Eve", "role": "admin", "password": "long enough"}),
    ("PATCH", "/api/users/agent1", {"role": "admin"}),
    ("GET", "/api/campaigns/{c}", None),
    ("PATCH", "/api/campaigns/{c}", {"abandon_cap": 0.01}),
]


async def test_health_is_the_only_endpoint_without_a_token(stack: Stack) -> None:
    assert (await stack.client.get("/api/health")).status_code == 200
    paths = stack.app.openapi()["paths"]
    for path, methods in paths.items():
        for method in methods:
            if path in ("/api/health", "/api/login"):
                continue
            url = path.replace("{campaign_id}", str(stack.campaign_id)).replace("{attempt_id}", "x")
            url = url.replace("{agent_id}", "agent1").replace("{user_id}", "agent1")
            reply = await stack.client.request(method.upper(), url, json={})
            assert reply.status_code == 401, (method, path, reply.text)
            assert "POST /api/login" in reply.json()["detail"]


async def test_an_agent_token_is_refused_on_every_supervisor_and_admin_endpoint(stack: Stack) -> None:
    headers = await stack.token("agent1")
    for method, path, body in SUPERVISOR_AND_ADMIN:
        url = path.replace("{c}", str(stack.campaign_id))
        reply = await stack.client.request(method, url, json=body, headers=headers)
        assert reply.status_code == 403, (method, path, reply.text)
        assert "role" in reply.json()["detail"]
    # Nothing changed behind the refusals.
    assert (await stack.db.campaigns.get(stack.campaign_id)).status.value == "running"
    assert (await stack.accounts.get_user("agent1")).role.value == "agent"


async def test_a_supervisor_is_refused_on_admin_endpoints_but_sees_agents(stack: Stack) -> None:
    headers = await stack.token("sup")
    assert (await stack.client.get("/api/agents", headers=headers)).status_code == 200
    for method, path, body in SUPERVISOR_AND_ADMIN[7:]:
        url = path.replace("{c}", str(stack.campaign_id))
        assert (await stack.client.request(method, url, json=body, headers=headers)).status_code == 403


async def test_wrong_password_is_401_and_says_nothing_about_which_part_was_wrong(stack: Stack) -> None:
    wrong = await stack.client.post("/api/login", json={"user": "agent1", "password": "not it at all"})
    unknown = await stack.client.post("/api/login", json={"user": "ghost", "password": PASSWORD})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json() == {"detail": "unknown user or wrong password"}
    assert "token" not in wrong.text


async def test_an_expired_token_is_refused(stack: Stack) -> None:
    short = Accounts(stack.db, token_lifetime=timedelta(seconds=-1), hasher=FAST)
    issued = await short.login("agent1", PASSWORD)
    reply = await stack.client.get("/api/me", headers={"Authorization": f"Bearer {issued.token}"})
    assert reply.status_code == 401
    assert "expired" in reply.json()["detail"]
    garbage = await stack.client.get("/api/me", headers={"Authorization": "Bearer nonsense"})
    assert garbage.status_code == 401


async def test_bad_requests_get_a_4xx_that_names_the_field(stack: Stack) -> None:
    headers = await stack.token("agent1")
    reply = await stack.client.post("/api/me/pause", json={"reason": "nap"}, headers=headers)
    assert reply.status_code == 422 and reply.json()["detail"].startswith("reason:")
    reply = await stack.client.post("/api/me/ready", headers=headers)
    assert reply.status_code == 409 and "log in first" in reply.json()["detail"]
    reply = await stack.client.post(
        "/api/calls/att-1/disposition",
        json={"code": "sale", "callback_at": "2030-01-01T10:00:00"},
        headers=headers,
    )
    assert reply.status_code == 422 and "callback_at" in reply.json()["detail"]
