"""A campaign at work, built as ``dialer demo`` builds it, over TCP against a simulated PBX.

SQLite in a folder, the real importer, the compliance gate (a fresh registry
screened today), ``build_runtime`` with the engine and the pacer, the
Asterisk or FreeSWITCH simulator and its adapter (``demo._start_pbx``), the
HTTP API and the outbox relay (``start_services``), and agents who are API
clients with simulated softphones (``sign_in_simulated_agents``).

The API and the agents outlive the engine's stop: they keep serving while the
engine drains, so the agents qualify the calls that end during the drain (see
the report: ``start_services`` stops the API on the node's stop event).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import httpx
from sqlalchemy import select

from dialer.domain.campaign import AmdPolicy, CampaignSettings, CampaignStatus, PacingMode, RecordingPolicy
from dialer.leads.importer import import_leads
from dialer.runtime import demo
from dialer.runtime.bootstrap import Runtime, build_runtime
from dialer.runtime.demo_agents import ApiAgents, sign_in_simulated_agents
from dialer.runtime.services import NodeServices, start_services
from dialer.settings import Settings
from dialer.store.db import Database
from dialer.store.models import Attempt, DispositionRecord
from dialer.store.repositories import Role
from tests.e2e.pbx_probe import AmiProbe, EslProbe, PbxProbe

PbxKind = Literal["asterisk", "freeswitch"]
IDENTIFICATION = "dialer-identification"
DRAIN_TIMEOUT_S = 20.0


@dataclass
class Node:
    """Everything of one run; the test drives it and reads the database afterwards."""

    pbx_kind: PbxKind
    url: str
    campaign_id: int
    runtime: Runtime
    services: NodeServices
    bots: ApiAgents
    client: httpx.AsyncClient
    supervisor: dict[str, str]
    sim: Any  # AsteriskSimulator | FreeSwitchSimulator
    probe: PbxProbe
    stop: asyncio.Event  # the engine's: no new dials, calls in progress finish
    engine_task: asyncio.Task[None] | None = None
    drain_s: float = 0.0
    notes: list[str] = field(default_factory=list)

    async def agents(self) -> dict[str, str]:
        """``GET /api/agents`` as a supervisor sees it: agent id -> state."""
        reply = await self.client.get("/api/agents", headers=self.supervisor)
        reply.raise_for_status()
        return {a["agent_id"]: a["state"] for a in reply.json()}

    def channel_ids(self) -> list[str]:
        """The ids of the PBX's live channels (Asterisk's Uniqueid, FreeSWITCH's uuid)."""
        return [
            str(getattr(ch, "uniqueid", "") or getattr(ch, "uuid", "")) for ch in self.sim.live_channels()
        ]

    def agent_leg(self, agent_id: str) -> str:
        """The id of the agent's phone leg on the PBX, as the PBX lists its channels."""
        prefix = f"agent-{agent_id}-"
        ids = self.channel_ids()
        legs = [i for i in ids if i.startswith(prefix)]
        assert len(legs) == 1, f"agent {agent_id}: phone legs on the PBX {legs} (channels {ids})"
        return legs[0]

    async def drain(self) -> None:
        """The graceful stop: no new dials, the calls in progress finish and are qualified."""
        assert self.engine_task is not None
        self.stop.set()
        started = time.monotonic()
        await asyncio.wait_for(self.engine_task, DRAIN_TIMEOUT_S + 10.0)
        self.drain_s = time.monotonic() - started

    async def attempts(self) -> list[Attempt]:
        async with Database(self.url) as db, db.read_session() as s:
            return list((await s.execute(select(Attempt))).scalars())

    async def dispositions(self) -> list[DispositionRecord]:
        async with Database(self.url) as db, db.read_session() as s:
            return list((await s.execute(select(DispositionRecord))).scalars())


async def _campaign(
    url: str,
    workdir: Path,
    pbx_kind: PbxKind,
    leads: int,
    rng: random.Random,
    pacing: PacingMode,
    ratio: float,
    record: bool = False,
) -> tuple[int, list[str]]:
    """The demo's campaign and lead list, as ``demo.run_demo`` writes them."""
    async with Database(url) as db:
        await db.migrate()
        template = "PJSIP/{digits}@trunk" if pbx_kind == "asterisk" else "sofia/dialer/{digits}@trunk"
        record = await db.campaigns.create(
            "e2e",
            CampaignSettings(
                dial_string=template,
                caller_id="+33100000000",
                caller_id_name="E2E",
                pbx="default",
                pacing_mode=pacing,
                dial_ratio=ratio,
                amd_policy=AmdPolicy.HANGUP,
                identification_message=IDENTIFICATION,
                connect_limit_s=2.0,
                wrap_up_limit_s=20.0,
                jurisdiction="CUSTOM-DEMO",
                recording=RecordingPolicy.ALL if record else RecordingPolicy.NONE,
            ),
        )
        csv_path = workdir / "leads.csv"
        numbers = demo.write_lead_list(csv_path, leads, rng)
        report = await import_leads(
            db, csv_path, record.id, "FR", {"phone": "Telephone"}, rejects_path=workdir / "rejects.csv"
        )
        assert report.imported == leads
        await db.campaigns.set_status(record.id, CampaignStatus.RUNNING)
        return record.id, numbers


@contextlib.asynccontextmanager
async def campaign_node(
    workdir: Path,
    pbx_kind: PbxKind,
    *,
    agents: int = 4,
    leads: int = 300,
    time_scale: float = 20.0,
    seed: int = 7,
    pacing: PacingMode = PacingMode.PREDICTIVE,
    ratio: float = 2.0,
    record: bool = False,
) -> AsyncIterator[Node]:
    """Build the node, sign the agents in over the API; the test starts the engine with ``start``."""
    rng = random.Random(seed)
    url = f"sqlite+aiosqlite:///{workdir / 'dialer.db'}"
    profiles = workdir / "profiles.toml"
    profiles.write_text(demo.DEMO_PROFILE, encoding="utf-8")
    campaign_id, numbers = await _campaign(url, workdir, pbx_kind, leads, rng, pacing, ratio, record)
    recordings_dir = workdir / "recordings"  # where the simulator writes the calls' WAV files
    options = demo.DemoOptions(pbx=pbx_kind, time_scale=time_scale, seed=seed, agents=agents, leads=leads)
    pbx, stop_sim = await demo._start_pbx(options, seed, recordings_dir)
    sim = stop_sim.__self__  # type: ignore[attr-defined]  # the simulator whose stop _start_pbx hands back
    probe: PbxProbe = AmiProbe() if pbx_kind == "asterisk" else EslProbe()
    await probe.connect(sim.port, "demo")
    runtime = await build_runtime(
        Settings(
            database_url=url,
            node_id="e2e-node",
            tick_s=0.2,
            seller=demo.DEMO_SELLER,
            recordings_dir=recordings_dir,
        ),
        pbx=pbx,
        profile_files=(profiles,),
    )
    stop = asyncio.Event()
    serving = asyncio.Event()  # the API and the agents: they stop after the engine's drain
    services: NodeServices | None = None
    bots: ApiAgents | None = None
    client: httpx.AsyncClient | None = None
    node: Node | None = None
    try:
        registry = workdir / "bloctel.txt"
        registry.write_text("".join(f"{n}\n" for n in numbers[3 :: max(1, leads // 10)]), "utf-8")
        await runtime.gate.dnc.import_registry(registry, "bloctel", datetime.now(UTC).date())
        await runtime.load_campaigns(datetime.now(UTC))
        services = await start_services(runtime, serving, host="127.0.0.1", port=demo._free_port())
        client = httpx.AsyncClient(base_url=services.api_url or "", timeout=10.0)
        password = secrets.token_urlsafe(12)
        await services.accounts.add_user("sup", "Supervisor", Role.SUPERVISOR, password, actor="e2e")
        reply = await client.post("/api/login", json={"user": "sup", "password": password})
        reply.raise_for_status()
        supervisor = {"Authorization": f"Bearer {reply.json()['token']}"}
        bots = await sign_in_simulated_agents(
            services.accounts, client, pbx_kind, agents, str(campaign_id), rng, serving
        )
        node = Node(pbx_kind, url, campaign_id, runtime, services, bots, client, supervisor, sim, probe, stop)
        yield node
    finally:
        stop.set()
        if node is not None and node.engine_task is not None and not node.engine_task.done():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(node.engine_task, DRAIN_TIMEOUT_S + 10.0)
        serving.set()
        if bots is not None:
            await bots.stop()
        if client is not None:
            await client.aclose()
        if services is not None:
            await services.stop()
        await runtime.close()
        await probe.close()
        with contextlib.suppress(Exception):
            await stop_sim()


def start(node: Node) -> None:
    node.engine_task = asyncio.get_running_loop().create_task(
        node.runtime.engine.run(node.stop, drain_timeout_s=DRAIN_TIMEOUT_S)
    )


async def wait_for_phones(node: Node, count: int, timeout_s: float = 10.0) -> None:
    """Every agent shows ready and has its phone leg up on the PBX.

    The API says ready as soon as the login call is queued; a refused phone leg is only seen
    when the engine runs: so the PBX's channel list is asked too.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        states = await node.agents()
        ids = node.channel_ids()
        phones = {a for a in states if any(i.startswith(f"agent-{a}-") for i in ids)}
        if len(states) == count and all(s == "ready" for s in states.values()) and phones == set(states):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"agents not ready after {timeout_s} s: {states}, phones up {phones}")
        await asyncio.sleep(0.1)
