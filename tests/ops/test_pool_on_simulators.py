"""Two simulated Asterisks on one node, built from the settings as ``dialer run`` builds them: each
campaign dials on its own PBX; one PBX killed holds only its campaign, the other dials on; when it
comes back its lost calls are closed and its campaign dials again."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from dialer.compliance.gate import ComplianceConfig, build_gate
from dialer.domain.agent import AgentState
from dialer.domain.campaign import AmdPolicy, CampaignSettings, CampaignStatus, PacingMode
from dialer.runtime.bootstrap import build_runtime
from dialer.runtime.demo import DEMO_PROFILE
from dialer.runtime.pbx_pool import PbxPool
from dialer.settings import parse
from dialer.store.db import Database
from dialer.store.models import Attempt
from dialer.store.repositories import NewLead
from telephony.sim.asterisk import AsteriskSimulator
from telephony.sim.model import ScriptedCallee, WithAgentPhones


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        assert loop.time() < deadline, what
        await asyncio.sleep(0.05)


async def _campaign(db: Database, name: str, pbx: str, numbers: list[str]) -> int:
    record = await db.campaigns.create(
        name,
        CampaignSettings(
            dial_string="PJSIP/{digits}@trunk",
            caller_id="+33100000000",
            pbx=pbx,
            pacing_mode=PacingMode.PROGRESSIVE,
            ring_timeout_s=60.0,
            amd_policy=AmdPolicy.OFF,
            jurisdiction="CUSTOM-DEMO",
        ),
    )
    list_id = await db.leads.create_list(record.id, "l", "test", "FR")
    await db.leads.add(
        record.id,
        list_id,
        [NewLead(phone=n, timezones=("Europe/Paris",)) for n in numbers],
        now=datetime.now(UTC) - timedelta(minutes=1),
    )
    await db.campaigns.set_status(record.id, CampaignStatus.RUNNING)
    return record.id


async def test_a_pbx_killed_holds_only_its_campaign_and_its_calls_are_closed_when_it_returns(
    tmp_path: Path,
) -> None:
    profiles = tmp_path / "profiles.toml"
    profiles.write_text(DEMO_PROFILE, encoding="utf-8")
    url = f"sqlite+aiosqlite:///{tmp_path / 'dialer.db'}"
    async with Database(url) as db:
        await db.migrate()
        # paris: callees who never answer (4XXX: the calls ring on); lyon: busy at once (3XXX).
        paris_id = await _campaign(db, "north", "paris", [f"+33612304{i:03d}" for i in range(20)])
        lyon_id = await _campaign(db, "south", "lyon", [f"+33612303{i:03d}" for i in range(200)])
        config = ComplianceConfig(database_url=url, profile_files=(profiles,))
        gate = await build_gate(config, engine=db.engine)
        (tmp_path / "bloctel.txt").write_text("+33699999999\n")
        await gate.dnc.import_registry(tmp_path / "bloctel.txt", "bloctel", datetime.now(UTC).date())
        await gate.close()
    sims = {}
    tables = {}
    for name in ("paris", "lyon"):
        agi = free_port()
        sim = AsteriskSimulator(WithAgentPhones(ScriptedCallee()), shape="sip", secret="s", fastagi_port=agi)
        await sim.start()
        sims[name] = sim
        tables[name] = {
            "type": "asterisk",
            "port": sim.port,
            "secret": "s",
            "fastagi_port": agi,
            "ping_interval_s": 0.5,
            "action_timeout_s": 2.0,
        }
    settings = parse(
        {"database": {"url": url}, "pacing": {"tick_s": 0.1}, "pbx": tables}, env={}, path=tmp_path / "x.toml"
    )
    runtime = await build_runtime(settings, profile_files=(profiles,))
    pool = runtime.pbx
    assert isinstance(pool, PbxPool) and [m.name for m in pool.members] == ["paris", "lyon"]
    stop = asyncio.Event()
    engine_task: asyncio.Task[None] | None = None
    paris, lyon = sims["paris"], sims["lyon"]
    try:
        await pool.start()
        assert sorted(await runtime.load_campaigns(datetime.now(UTC))) == ["north", "south"]
        for agent, campaign in (("1001", paris_id), ("1002", lyon_id)):
            runtime.agents.login(agent, [str(campaign)])
            await pool.login_agent(agent, f"PJSIP/{agent}@agents")  # called by its campaign's PBX
            runtime.agents.ready(agent)
        engine_task = asyncio.get_running_loop().create_task(runtime.engine.run(stop, drain_timeout_s=1.0))
        await until(lambda: len(paris.originates_received) >= 1, 15, "paris never dialed")
        await until(lambda: len(lyon.originates_received) >= 3, 15, "lyon never dialed")
        ringing_on_paris = set(paris.originates_received)
        assert all(a not in lyon.originates_received for a in ringing_on_paris)

        await paris.crash()  # killed: no events, the link drops
        await until(lambda: not pool.members[0].pbx.connected, 10, "the pool never saw paris go down")
        before = len(lyon.originates_received)
        await asyncio.sleep(1.5)
        assert len(lyon.originates_received) > before + 2  # lyon's campaign dials on
        assert runtime.engine.line_limit is not None
        assert runtime.engine.line_limit(runtime.engine.campaigns[str(paris_id)].plan) == 0

        await paris.start(port=tables["paris"]["port"])  # the same PBX, freshly booted: no channels
        await until(lambda: pool.members[0].pbx.connected, 20, "paris never came back")

        async def closed() -> dict[str, str | None]:
            async with Database(url) as db, db.read_session() as s:
                query = select(Attempt.id, Attempt.result).where(Attempt.id.in_(ringing_on_paris))
                rows = await s.execute(query)
                return {str(i): r for i, r in rows}

        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while loop.time() < deadline and None in (await closed()).values():
            await asyncio.sleep(0.2)
        assert set((await closed()).values()) == {"lost"}  # one outcome each, none left open
        # The agent's phone leg died with the PBX (the agent left dialing): called in again, it dials.
        if runtime.agents.state_of("1001") in (None, AgentState.LOGGED_OUT):
            runtime.agents.login("1001", [str(paris_id)])
        await pool.login_agent("1001", "PJSIP/1001@agents")
        runtime.agents.ready("1001")
        known = set(paris.originates_received)
        await until(lambda: len(set(paris.originates_received) - known) >= 1, 15, "paris never dialed again")
    finally:
        stop.set()
        if engine_task is not None:
            await asyncio.wait_for(engine_task, 20)
        await runtime.close()
        for sim in sims.values():
            await sim.crash()
