"""Monitoring over the API: the supervisor's phone into an agent's call, refusals as 409 with the reason,
what the agent screen is told, and recordings on demand."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from dialer.domain.campaign import RecordingPolicy
from dialer.recordings.service import Recordings
from dialer.store.db import Database
from dialer.store.models import Attempt
from telephony.base import PbxError
from telephony.supervision import MonitorMode, MonitorRefused
from tests.api.conftest import T0, Stack, build_stack
from tests.recordings.helpers import recorded_calls


@dataclass
class SupervisedPbx:
    """The supervision side of a PBX, as the adapters offer it."""

    name: str = "lab"
    refuse: str | None = None
    legs: dict[str, tuple[str, MonitorMode, str]] = field(default_factory=dict)
    muted: dict[str, bool] = field(default_factory=dict)

    async def set_recording_muted(self, attempt_id: str, muted: bool) -> None:
        if attempt_id not in self.muted:
            raise PbxError("Cannot set mute flag")
        self.muted[attempt_id] = muted

    async def monitor(self, agent_id: str, mode: MonitorMode, endpoint: str) -> str:
        if self.refuse:
            raise MonitorRefused(self.refuse)
        leg = f"spy-{len(self.legs) + 1}"
        self.legs[leg] = (agent_id, mode, endpoint)
        return leg

    async def end_monitor(self, leg_id: str) -> None:
        self.legs.pop(leg_id, None)

    async def live_attempts(self) -> set[str]:
        return set(self.legs)


@pytest.fixture
async def stack(db: Database, tmp_path: Path) -> AsyncIterator[Stack]:
    async for s in build_stack(db):
        s.app.state.recordings = Recordings(db, tmp_path)
        s.app.state.pbx = SupervisedPbx()
        yield s


async def _visible(stack: Stack, visible: bool, recording: RecordingPolicy = RecordingPolicy.NONE) -> None:
    record = await stack.db.campaigns.get(stack.campaign_id)
    changed = record.settings.with_changes(monitoring_visible=visible, recording=recording)
    await stack.db.campaigns.update_settings(stack.campaign_id, changed, now=T0)


async def test_a_supervisor_listens_whispers_and_barges_from_their_own_phone(
    stack: Stack, tmp_path: Path
) -> None:
    pbx: SupervisedPbx = stack.app.state.pbx
    await recorded_calls(stack.db, SimpleNamespace(id=stack.campaign_id), tmp_path, [("agent1", T0, 2.0)])  # type: ignore[arg-type]
    sup = await stack.token("sup")
    for mode in ("listen", "whisper", "barge"):
        body = {"agent_id": "agent1", "mode": mode, "phone": "PJSIP/2001"}
        reply = await stack.client.post("/api/monitoring", json=body, headers=sup)
        assert reply.status_code == 201, reply.text
        leg = reply.json()["leg_id"]
        assert pbx.legs[leg] == ("agent1", MonitorMode(mode), "PJSIP/2001")
        listed = (await stack.client.get("/api/monitoring", headers=sup)).json()
        assert [m["leg_id"] for m in listed] == [leg]
        assert (await stack.client.delete(f"/api/monitoring/{leg}", headers=sup)).status_code == 204
        assert leg not in pbx.legs
    bad = await stack.client.post(
        "/api/monitoring", json={"agent_id": "agent1", "mode": "shout", "phone": "PJSIP/2001"}, headers=sup
    )
    assert bad.status_code == 422 and "listen, whisper, barge" in bad.json()["detail"]


async def test_a_refusal_by_the_pbx_is_a_409_that_says_why(stack: Stack) -> None:
    stack.app.state.pbx.refuse = "Permission denied (the AMI user needs the originate write class)"
    sup = await stack.token("sup")
    body = {"agent_id": "agent1", "mode": "listen", "phone": "PJSIP/2001"}
    reply = await stack.client.post("/api/monitoring", json=body, headers=sup)
    assert reply.status_code == 409
    assert reply.json()["detail"] == (
        "the PBX refused to listen agent agent1: "
        "Permission denied (the AMI user needs the originate write class)"
    )
    stack.app.state.pbx = stack.pbx  # a PBX without supervision
    reply = await stack.client.post("/api/monitoring", json=body, headers=sup)
    assert reply.status_code == 409 and "cannot monitor calls" in reply.json()["detail"]


async def test_agents_cannot_monitor_and_team_supervisors_only_their_team(stack: Stack) -> None:
    body = {"agent_id": "agent2", "mode": "listen", "phone": "PJSIP/2001"}
    agent = await stack.token("agent1")
    assert (await stack.client.post("/api/monitoring", json=body, headers=agent)).status_code == 403
    root = await stack.token("root")
    for user, team in (("sup", "north"), ("agent1", "north"), ("agent2", "south")):
        await stack.client.put(f"/api/users/{user}/team", json={"team": team}, headers=root)
    sup = await stack.token("sup")
    reply = await stack.client.post("/api/monitoring", json=body, headers=sup)
    assert reply.status_code == 404 and not stack.app.state.pbx.legs


@pytest.mark.parametrize("visible", [True, False])
async def test_the_agent_screen_is_told_only_when_the_campaign_says_so(
    stack: Stack, tmp_path: Path, visible: bool
) -> None:
    await _visible(stack, visible)
    await recorded_calls(stack.db, SimpleNamespace(id=stack.campaign_id), tmp_path, [("agent1", T0, 2.0)])  # type: ignore[arg-type]
    agent = await stack.token("agent1")
    assert (await stack.client.get("/api/monitoring/me", headers=agent)).json()["listening"] is False
    sup = await stack.token("sup")
    body = {"agent_id": "agent1", "mode": "listen", "phone": "PJSIP/2001"}
    leg = (await stack.client.post("/api/monitoring", json=body, headers=sup)).json()["leg_id"]
    assert (await stack.client.get("/api/monitoring/me", headers=agent)).json()["listening"] is visible
    stack.app.state.pbx.legs.pop(leg)  # the supervisor hung up their phone
    assert (await stack.client.get("/api/monitoring/me", headers=agent)).json()["listening"] is False


async def test_an_agent_starts_the_recording_of_their_own_call_on_demand(
    stack: Stack, tmp_path: Path
) -> None:
    await _visible(stack, False, RecordingPolicy.ON_DEMAND)
    [mine, theirs] = await recorded_calls(
        stack.db,
        SimpleNamespace(id=stack.campaign_id),  # type: ignore[arg-type]
        tmp_path,
        [("agent1", T0, 2.0), ("agent2", T0 + timedelta(minutes=1), 2.0)],
    )
    async with stack.db.session() as s, s.begin():
        for attempt in (mine, theirs):
            row = await s.get(Attempt, attempt)
            assert row is not None
            row.status = "open"  # calls in progress
    pbx: SupervisedPbx = stack.app.state.pbx
    pbx.muted = {mine: True, theirs: True}
    agent = await stack.token("agent1")
    screen = (await stack.client.get("/api/monitoring/me", headers=agent)).json()
    assert screen == {"listening": False, "record_on_demand": mine}  # the agent screen offers the button
    reply = await stack.client.post(f"/api/calls/{mine}/recording", json={"on": True}, headers=agent)
    assert reply.status_code == 204, reply.text
    assert pbx.muted[mine] is False
    reply = await stack.client.post(f"/api/calls/{theirs}/recording", json={"on": True}, headers=agent)
    assert reply.status_code == 404 and pbx.muted[theirs] is True
    await _visible(stack, False, RecordingPolicy.ALL)
    assert (await stack.client.get("/api/monitoring/me", headers=agent)).json()["record_on_demand"] is None
    reply = await stack.client.post(f"/api/calls/{mine}/recording", json={"on": False}, headers=agent)
    assert reply.status_code == 409 and "does not record on demand" in reply.json()["detail"]
