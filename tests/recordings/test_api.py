"""The recordings API: who may list, play and download which calls; signed links; Range; missing files."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from dialer.recordings.service import Recordings
from dialer.store.db import Database
from dialer.store.repositories import Role
from tests.api.conftest import PASSWORD, T0, Stack, build_stack
from tests.recordings.helpers import recorded_calls


@pytest.fixture
async def stack(db: Database, tmp_path: Path) -> AsyncIterator[Stack]:
    async for s in build_stack(db):
        s.app.state.recordings = Recordings(db, tmp_path)
        for user, role in (("agent3", Role.AGENT), ("sup2", Role.SUPERVISOR)):
            await s.accounts.add_user(user, user, role, PASSWORD, actor="test")
        yield s


async def _calls(stack: Stack, directory: Path) -> dict[str, str]:
    campaign = SimpleNamespace(id=stack.campaign_id)
    ids = await recorded_calls(
        stack.db,
        campaign,  # type: ignore[arg-type]
        directory,
        [
            ("agent1", T0, 2.0),
            ("agent2", T0 + timedelta(minutes=1), 3.0),
            ("agent3", T0 + timedelta(minutes=2), 1.0),
        ],
    )
    return dict(zip(("agent1", "agent2", "agent3"), ids, strict=True))


async def test_an_agent_lists_plays_and_downloads_only_their_own_calls(stack: Stack, tmp_path: Path) -> None:
    calls = await _calls(stack, tmp_path)
    agent1 = await stack.token("agent1")
    listed = (await stack.client.get("/api/recordings", headers=agent1)).json()
    assert [r["attempt_id"] for r in listed] == [calls["agent1"]]
    assert listed[0]["seconds"] == pytest.approx(2.0)
    assert (await stack.client.get("/api/recordings?agent_id=agent2", headers=agent1)).json() == []
    other = calls["agent2"]
    for path in (
        f"/api/recordings/{other}",
        f"/api/recordings/{other}/audio",
        f"/api/recordings/{other}/download",
    ):
        reply = await stack.client.get(path, headers=agent1)
        assert reply.status_code == 404, path
        assert "you may hear" in reply.json()["detail"]
    own = await stack.client.get(f"/api/recordings/{calls['agent1']}/audio", headers=agent1)
    assert own.status_code == 200 and own.headers["content-type"] == "audio/wav"
    assert len(own.content) == 44 + 2 * 8000 * 2


async def test_a_supervisor_of_a_team_sees_only_that_teams_agents(stack: Stack, tmp_path: Path) -> None:
    calls = await _calls(stack, tmp_path)
    root = await stack.token("root")
    for user, team in (("sup", "north"), ("agent1", "north"), ("agent3", "north"), ("agent2", "south")):
        reply = await stack.client.put(f"/api/users/{user}/team", json={"team": team}, headers=root)
        assert reply.status_code == 204, reply.text
    sup = await stack.token("sup")
    listed = {r["attempt_id"] for r in (await stack.client.get("/api/recordings", headers=sup)).json()}
    assert listed == {calls["agent1"], calls["agent3"]}
    reply = await stack.client.get(f"/api/recordings/{calls['agent2']}/audio", headers=sup)
    assert reply.status_code == 404
    # a supervisor with no team, and an admin, see every call
    for user in ("sup2", "root"):
        token = await stack.token(user)
        assert len((await stack.client.get("/api/recordings", headers=token)).json()) == 3
    # only an admin puts people in teams
    refused = await stack.client.put("/api/users/agent2/team", json={"team": "north"}, headers=sup)
    assert refused.status_code == 403


async def test_a_signed_link_plays_without_a_token_with_ranges_and_only_for_its_call(
    stack: Stack, tmp_path: Path
) -> None:
    calls = await _calls(stack, tmp_path)
    agent1 = await stack.token("agent1")
    [mine] = (await stack.client.get("/api/recordings", headers=agent1)).json()
    whole = await stack.client.get(mine["audio_url"])
    assert whole.status_code == 200 and whole.headers["accept-ranges"] == "bytes"
    part = await stack.client.get(mine["audio_url"], headers={"Range": "bytes=0-99"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 0-99/{len(whole.content)}"
    assert part.content == whole.content[:100]
    tail = await stack.client.get(mine["audio_url"], headers={"Range": "bytes=-10"})
    assert tail.content == whole.content[-10:]
    bad = await stack.client.get(mine["audio_url"], headers={"Range": "bytes=999999-"})
    assert bad.status_code == 422
    download = await stack.client.get(mine["download_url"])
    assert download.headers["content-disposition"] == f'attachment; filename="{calls["agent1"]}.wav"'
    # the same signature for another call, or altered, is refused
    forged = mine["audio_url"].replace(calls["agent1"], calls["agent2"])
    assert (await stack.client.get(forged)).status_code == 401
    assert (await stack.client.get(mine["audio_url"].replace("r=agent", "r=admin"))).status_code == 401
    assert (await stack.client.get(f"/api/recordings/{calls['agent1']}/audio")).status_code == 401
    odd = mine["audio_url"].split("&s=")[0] + "&s=%C3%AA%C2%B4"  # not even hexadecimal
    assert (await stack.client.get(odd)).status_code == 401


async def test_a_missing_or_unreadable_file_is_reported_never_served(stack: Stack, tmp_path: Path) -> None:
    calls = await _calls(stack, tmp_path)
    (tmp_path / f"{calls['agent1']}.wav").unlink()
    (tmp_path / f"{calls['agent2']}.wav").write_bytes(b"not a wav file")
    root = await stack.token("root")
    listed = {r["attempt_id"]: r for r in (await stack.client.get("/api/recordings", headers=root)).json()}
    assert listed[calls["agent1"]]["problem"] == "missing"
    assert listed[calls["agent1"]]["audio_url"] is None
    assert listed[calls["agent2"]]["problem"].startswith("unreadable")
    reply = await stack.client.get(f"/api/recordings/{calls['agent1']}/audio", headers=root)
    assert reply.status_code == 409 and "the file is missing" in reply.json()["detail"]
    reply = await stack.client.get(f"/api/recordings/{calls['agent2']}/download", headers=root)
    assert reply.status_code == 409 and "unreadable" in reply.json()["detail"]
