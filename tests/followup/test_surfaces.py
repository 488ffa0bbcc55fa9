"""The overdue counts agree: the API the supervisor page reads, the command line and /metrics."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from dialer.cli import main
from dialer.domain.campaign import CampaignSettings, CampaignStatus
from dialer.followup.metrics import FollowupGauges
from dialer.followup.report import print_deadlines
from dialer.notify.messages import Notification
from dialer.runtime.metrics import EXPORTED, node_registry
from dialer.store.db import Database
from dialer.store.repositories import NewLead
from telephony.base import AnsweredCall, Connected, ConnectToAgent, HungUp
from tests.api.conftest import T0, Stack, build_stack
from tests.followup.test_deadlines import _call, _due_again, _qualify
from tests.store.helpers import add_leads, fr_numbers

NUMBER = "+33612345678"


@pytest.fixture
async def stack(db: Database) -> AsyncIterator[Stack]:
    async for s in build_stack(db):
        yield s


async def seed(db: Database, campaign_id: int) -> None:
    """Two tasks overdue (a callback, a missed customer), two follow-ups (one met, one open)."""
    campaign = await db.campaigns.get(campaign_id)
    now = datetime.now(UTC)
    past = now - timedelta(hours=5)
    [met, callback, missed, later] = fr_numbers(4)
    await add_leads(db, campaign.id, [met], past)  # first: _due_again makes every lead due
    await _qualify(db, await _call(db, campaign, past), "not_qualified", past, follow_up=True)
    await _due_again(db, past)
    await _call(db, campaign, past + timedelta(hours=1))
    await add_leads(db, campaign.id, [callback], past)
    await _qualify(db, await _call(db, campaign, past), "callback_requested", past)
    await add_leads(db, campaign.id, [missed], past)
    await _call(db, campaign, past, result="abandoned")
    await add_leads(db, campaign.id, [later], past)
    await _qualify(db, await _call(db, campaign, past), "not_qualified", past, follow_up=True)


def metric_values(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_overdue_counts_are_the_same_on_the_api_the_command_line_and_the_metrics(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    await seed(stack.db, stack.campaign_id)
    sup = await stack.token("sup")
    summary = (await stack.client.get("/api/followup/summary", headers=sup)).json()
    kinds = {k["kind"]: k for k in summary["kinds"]}
    assert summary["overdue"] == 2 and summary["callbacks_overdue"] == 1
    assert kinds["callback"]["overdue"] == 1 and kinds["missed_call_back"]["overdue"] == 1
    assert kinds["follow_up"]["met"] == 1 and kinds["follow_up"]["open"] == 1
    overdue = (await stack.client.get("/api/followup/tasks?overdue=1", headers=sup)).json()
    assert sorted(t["kind"] for t in overdue) == ["callback", "missed_call_back"]
    assert all(t["level"] == "overdue" and "****" in t["number_masked"] for t in overdue)
    callbacks = (await stack.client.get("/api/callbacks/overdue", headers=sup)).json()
    assert [t["callback_id"] for t in callbacks] == [
        next(t["callback_id"] for t in overdue if t["callback_id"])
    ]

    agent = await stack.token("agent1")  # the deadlines are the supervisors'
    assert (await stack.client.get("/api/followup/tasks", headers=agent)).status_code == 403
    templates = (await stack.client.get("/api/followup/templates", headers=agent)).json()
    assert [t["name"] for t in templates] == ["brochure", "configurator"]

    gauges = FollowupGauges(stack.db)
    await gauges.refresh()
    registry = node_registry(stack.engine, stack.agents, process_wide=False, followup=gauges)
    values = metric_values(generate_latest(registry).decode())
    overdue_metric = {
        dict(labels)["kind"]: v for (name, labels), v in values.items() if name == "dialer_followup_overdue"
    }
    assert sum(overdue_metric.values()) == summary["overdue"] == len(overdue)
    assert overdue_metric["callback"] == kinds["callback"]["overdue"]
    assert values[("dialer_callbacks_overdue", ())] == summary["callbacks_overdue"] == len(callbacks)
    assert values[("dialer_followup_tasks", (("kind", "follow_up"), ("level", "met")))] == 1
    assert {"dialer_followup_overdue", "dialer_callbacks_overdue", "dialer_followup_tasks"} <= EXPORTED

    code = await asyncio.to_thread(main, ["followup", "summary", "--db", stack.db.url])
    out = capsys.readouterr().out
    assert code == 0 and "overdue: 2 (callbacks: 1)" in out
    code = await asyncio.to_thread(main, ["callbacks", "overdue", "--db", stack.db.url])
    lines = capsys.readouterr().out.splitlines()
    assert code == 0 and len(lines) == 2 and lines[1].split()[1] == "callback"
    code = await asyncio.to_thread(main, ["followup", "list", "--overdue", "--db", stack.db.url])
    assert code == 0 and len(capsys.readouterr().out.splitlines()) == 3


async def test_an_agent_promises_information_by_email_in_the_disposition(stack: Stack) -> None:
    list_id = await stack.db.leads.create_list(stack.campaign_id, "t", "t.csv", "FR", now=T0)
    await stack.db.leads.add(
        stack.campaign_id,
        list_id,
        [NewLead(phone=NUMBER, timezones=("Europe/Paris",), first_name="Léa")],
        now=T0,
    )
    me = await stack.token("agent1")
    await stack.client.post("/api/me/login", headers=me)
    await stack.client.post("/api/me/ready", headers=me)
    assert await stack.engine.tick() == 1
    attempt_id = stack.pbx.originates[-1].attempt_id
    assert await stack.engine.on_answered(AnsweredCall(attempt_id, time.time())) == ConnectToAgent("agent1")
    await stack.engine.handle(Connected(attempt_id, time.time(), "agent1"))
    await stack.engine.handle(HungUp(attempt_id, time.time(), cause=16))
    url = f"/api/calls/{attempt_id}/disposition"

    reply = await stack.client.post(
        url, json={"code": "not_qualified", "information_template": "leaflet"}, headers=me
    )
    assert reply.status_code == 422 and "choose among: brochure, configurator" in reply.json()["detail"]
    reply = await stack.client.post(
        url, json={"code": "not_qualified", "information_template": "brochure"}, headers=me
    )
    assert reply.status_code == 422 and "no email address" in reply.json()["detail"]
    reply = await stack.client.post(
        url,
        json={
            "code": "not_qualified",
            "identity": {"email": "lea@example.com"},
            "information_template": "brochure",
            "follow_up": True,
        },
        headers=me,
    )
    assert reply.status_code == 200, reply.text
    async with stack.db.read_session() as s:
        note = (await s.execute(select(Notification))).scalar_one()
    assert note.recipient == "lea@example.com" and note.reason == "followup.information"
    sup = await stack.token("sup")
    tasks = (await stack.client.get("/api/followup/tasks", headers=sup)).json()
    assert sorted((t["kind"], t["level"], t["agent_id"]) for t in tasks) == [
        ("follow_up", "open", "agent1"),
        ("information", "open", "agent1"),
    ]
    assert next(t for t in tasks if t["kind"] == "information")["notification_id"] == note.id


async def test_the_demo_report_shows_each_kind_met_missed_and_open(db: Database) -> None:
    record = await db.campaigns.create(
        "report", CampaignSettings(dial_string="PJSIP/{digits}@trunk", caller_id="+33100000000"), now=T0
    )
    await db.campaigns.set_status(record.id, CampaignStatus.RUNNING, now=T0)
    await seed(db, record.id)
    out = io.StringIO()
    summary = await print_deadlines(db, datetime.now(UTC), out)
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["Follow-up", "deadlines", "met", "missed", "(overdue)", "open", "refused"]
    rows = {line[:26].strip(): line[26:].split() for line in lines[1:5]}
    assert rows == {
        "callback": ["0", "1", "(1)", "0", "0"],
        "information": ["0", "0", "(0)", "0", "0"],
        "follow up": ["1", "0", "(0)", "1", "0"],
        "missed call back": ["0", "1", "(1)", "0", "0"],
    }
    assert summary.overdue == 2
    assert lines[5].startswith("  the next open task falls due in ")  # the second follow-up, in 43 h


async def test_the_gauges_refresh_on_their_own_and_survive_a_database_that_stops_answering(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    gauges = FollowupGauges(db)
    registry = CollectorRegistry()
    registry.register(gauges)
    assert registry.get_sample_value("dialer_callbacks_overdue") is None  # nothing read yet: no sample
    stop = asyncio.Event()
    runner = asyncio.create_task(gauges.run(stop, every_s=0.05))
    for _ in range(100):
        if gauges.summary is not None:
            break
        await asyncio.sleep(0.02)
    assert registry.get_sample_value("dialer_callbacks_overdue") == 0
    assert registry.get_sample_value("dialer_followup_overdue", {"kind": "information"}) == 0
    await db.close()  # the database goes away: the last counts stay served, one warning is logged
    await asyncio.sleep(0.3)
    stop.set()
    await runner
    assert gauges.failures >= 2
    warned = [r for r in caplog.records if "follow-up metrics not refreshed" in r.getMessage()]
    assert len(warned) == 1 and "retried every 0 s" in warned[0].getMessage()
    assert registry.get_sample_value("dialer_callbacks_overdue") == 0
