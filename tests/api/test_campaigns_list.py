"""GET /api/campaigns: each campaign as the supervisor page shows it (pacing, dial level, outcomes)."""

from __future__ import annotations

import asyncio
import time

from dialer.domain.campaign import CampaignSettings
from dialer.store.repositories import NewLead
from telephony.base import AnsweredCall, Connected, HungUp
from tests.api.conftest import T0, Stack


async def test_campaigns_with_this_nodes_figures(stack: Stack) -> None:
    await stack.db.campaigns.create(
        "autumn", CampaignSettings(dial_string="PJSIP/{digits}@trunk", caller_id="+33100000000"), now=T0
    )
    list_id = await stack.db.leads.create_list(stack.campaign_id, "test", "test.csv", "FR", now=T0)
    lead = NewLead(phone="+33612345678", timezones=("Europe/Paris",))  # type: ignore[call-arg]
    await stack.db.leads.add(stack.campaign_id, list_id, [lead], now=T0)
    sup, me = await stack.token("sup"), await stack.token("agent1")

    assert (await stack.client.get("/api/campaigns", headers=me)).status_code == 403
    await stack.client.post("/api/me/login", headers=me)
    await stack.client.post("/api/me/ready", headers=me)
    assert await stack.engine.tick() == 1
    attempt_id = stack.pbx.originates[-1].attempt_id
    await stack.engine.on_answered(AnsweredCall(attempt_id, time.time()))
    await stack.engine.handle(Connected(attempt_id, time.time(), "agent1"))

    spring, autumn = (await stack.client.get("/api/campaigns", headers=sup)).json()
    assert (spring["name"], spring["status"], spring["dialing"], spring["pacing"]) == (
        "spring",
        "running",
        True,
        "fixed",
    )
    assert (spring["lines"], spring["agents"], spring["dial_level"]) == (1, 1, 1.0)
    assert (autumn["name"], autumn["status"], autumn["dialing"], autumn["pacing"]) == (
        "autumn",
        "draft",
        False,
        None,
    )
    assert autumn["dial_level"] is None and autumn["outcomes"] == {}

    await stack.engine.handle(HungUp(attempt_id, time.time(), cause=16))
    for _ in range(100):  # the outcome is written after the event
        spring = (await stack.client.get("/api/campaigns", headers=sup)).json()[0]
        if spring["outcomes"]:
            break
        await stack.engine.tick()
        await asyncio.sleep(0.01)
    assert spring["lines"] == 0 and spring["outcomes"] == {"connected": 1}
    call = (await stack.client.get("/api/me/call", headers=me)).json()
    assert call["phase"] == "wrap_up" and call["wrap_up_limit_s"] == 60.0

    await stack.client.post(f"/api/campaigns/{stack.campaign_id}/pause", headers=sup)
    spring = (await stack.client.get("/api/campaigns", headers=sup)).json()[0]
    assert spring["status"] == "paused" and not spring["dialing"]
