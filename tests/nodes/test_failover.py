"""Two ``dialer run`` processes on one PostgreSQL, one Redis and one simulated FreeSWITCH.

Node A paces the campaign; it is killed (SIGKILL) mid-campaign and node B
takes the campaign within the lease time.  A is started again (agents sign in
to it with the tokens they already have) and waits; B is paused (SIGSTOP)
past its lease, A takes the campaign back, and B, resumed (SIGCONT), dials
nothing more for it.  Then: no lead dialed twice (originates counted at the
simulator and attempts in the record), no attempt lost (every originate has its
attempt row, every attempt its one result), and every originate carries the
token of the node that held the lease at that moment.

    pytest -s tests/nodes/test_failover.py    # prints the two takeover times
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import select

from dialer.compliance.gate import ComplianceConfig, build_gate
from dialer.domain.campaign import CampaignSettings, CampaignStatus, PacingMode
from dialer.runtime.demo import DEMO_PROFILE
from dialer.runtime.lease import RedisLeaseStore
from dialer.service.accounts import Accounts
from dialer.store.db import Database
from dialer.store.models import Attempt
from dialer.store.repositories import Role
from tests.conftest import PG_ADMIN_DSN, REDIS_URL, _pg_admin
from tests.nodes.sim_process import PASSWORD
from tests.store.helpers import add_leads

LEASE_S = 3.0
# B asks for the lease every third of it: a takeover comes at most a third after the lease ran out.
TAKEOVER_LIMIT_S = LEASE_S + LEASE_S / 3 + 1.5  # + the event loops of busy cores
SIM = Path(__file__).with_name("sim_process.py")
DIALER = [sys.executable, "-c", "import sys; from dialer.cli import main; sys.exit(main())"]
AGENTS = ("1001", "1002", "1003", "1004")
LEADS = 600

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _until(what: str, check: Callable[[], Awaitable[bool]], timeout_s: float) -> float:
    """Poll ``check`` every 50 ms; returns the monotonic time it first held."""
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {what}")
        await asyncio.sleep(0.05)
    return time.monotonic()


@dataclass
class NodeProcess:
    name: str
    config: Path
    log: Path
    api_port: int
    metrics_port: int
    proc: asyncio.subprocess.Process | None = None
    runs: int = 0

    async def start(self) -> None:
        self.runs += 1
        with self.log.open("ab") as out:
            self.proc = await asyncio.create_subprocess_exec(
                *DIALER, "run", "--config", str(self.config), stdout=out, stderr=out
            )

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    async def wait(self, timeout_s: float = 30.0) -> int:
        assert self.proc is not None
        return await asyncio.wait_for(self.proc.wait(), timeout_s)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    async def metrics(self) -> str:
        async with httpx.AsyncClient(timeout=5.0) as client:
            reply = await client.get(f"http://127.0.0.1:{self.metrics_port}/metrics")
            reply.raise_for_status()
            return reply.text


@dataclass
class Cluster:
    db_url: str
    campaign_id: int
    numbers: dict[str, int]  # dial digits -> lead id
    passwords: dict[str, str]
    sim_log: Path
    leases: RedisLeaseStore
    nodes: dict[str, NodeProcess] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)  # agent -> bearer token

    def originates(self) -> list[dict[str, object]]:
        """The customers' originates the simulator received, in order (agents' phones left out)."""
        if not self.sim_log.exists():
            return []
        lines = self.sim_log.read_text().splitlines()
        calls = [json.loads(line) for line in lines if line.strip()]
        return [c for c in calls if str(c["dial"]).endswith("@trunk")]

    async def holder(self) -> str | None:
        return await self.leases.holder(str(self.campaign_id))

    async def sign_in(self, node: NodeProcess, agents: tuple[str, ...]) -> None:
        """Agents take their softphone on ``node``; the token comes from any node's API (the record)."""
        async with httpx.AsyncClient(base_url=node.url, timeout=10.0) as client:
            for agent in agents:
                if agent not in self.tokens:
                    reply = await client.post(
                        "/api/login", json={"user": agent, "password": self.passwords[agent]}
                    )
                    reply.raise_for_status()
                    self.tokens[agent] = reply.json()["token"]
                headers = {"Authorization": f"Bearer {self.tokens[agent]}"}
                body = {"campaigns": [str(self.campaign_id)], "endpoint": f"sofia/dialer/{agent}@agents"}
                (await client.post("/api/me/login", json=body, headers=headers)).raise_for_status()
                (await client.post("/api/me/ready", headers=headers)).raise_for_status()

    async def not_ready(self, node: NodeProcess, agents: tuple[str, ...]) -> tuple[str, ...]:
        """The agents whose desk on ``node`` is not ready (their phone leg was lost meanwhile)."""
        missing = []
        async with httpx.AsyncClient(base_url=node.url, timeout=10.0) as client:
            for agent in agents:
                headers = {"Authorization": f"Bearer {self.tokens[agent]}"}
                desk = (await client.get("/api/me", headers=headers)).json().get("desk") or {}
                if desk.get("state") != "ready":
                    missing.append(agent)
        return tuple(missing)

    async def api_up(self, node: NodeProcess) -> bool:
        try:
            async with httpx.AsyncClient(base_url=node.url, timeout=1.0) as client:
                return (await client.get("/api/health")).status_code == 200
        except httpx.HTTPError:
            return False

    async def attempts(self) -> list[Attempt]:
        async with Database(self.db_url) as db, db.read_session() as s:
            return list((await s.execute(select(Attempt))).scalars())


async def _prepare(db_url: str, tmp: Path, namespace: str) -> tuple[int, dict[str, int], dict[str, str]]:
    async with Database(db_url) as db:
        await db.migrate()
        # France's registry, screened today (the gate blocks French numbers without it).
        gate = await build_gate(
            ComplianceConfig(db_url, REDIS_URL, namespace, (tmp / "profiles.toml",)), engine=db.engine
        )
        registry = tmp / "bloctel.txt"
        registry.write_text("+33149999999\n", encoding="utf-8")
        try:
            await gate.dnc.import_registry(registry, "bloctel", datetime.now(UTC).date())
        finally:
            await gate.close()
        record = await db.campaigns.create(
            "failover",
            CampaignSettings(
                dial_string="sofia/dialer/{digits}@trunk",
                caller_id="+33100000000",
                pbx="default",
                pacing_mode=PacingMode.RATIO,
                dial_ratio=2.0,
                max_attempts=1,  # every lead is dialed once: a second originate would be a double dial
                jurisdiction="CUSTOM-DEMO",
            ),
        )
        numbers = [f"+3314{i:07d}" for i in range(LEADS)]
        ids = await add_leads(db, record.id, numbers, datetime.now(UTC) - timedelta(minutes=1))
        accounts = Accounts(db)
        passwords = {a: uuid.uuid4().hex for a in AGENTS}
        for agent, password in passwords.items():
            await accounts.add_user(agent, f"Agent {agent}", Role.AGENT, password, actor="test")
        await db.campaigns.set_status(record.id, CampaignStatus.RUNNING)
        return record.id, {n[1:]: i for n, i in zip(numbers, ids, strict=True)}, passwords


def _config(
    tmp: Path, name: str, db_url: str, namespace: str, sim_port: int, api_port: int, metrics_port: int
) -> Path:
    path = tmp / f"{name}.toml"
    path.write_text(
        f"""
[database]
url = "{db_url}"
[redis]
url = "{REDIS_URL}"
namespace = "{namespace}"
[node]
id = "{name}"
lease_s = {LEASE_S}
[pbx.sim]
type = "freeswitch"
host = "127.0.0.1"
port = {sim_port}
secret = "{PASSWORD}"
[pacing]
tick_s = 0.2
[api]
port = {api_port}
[metrics]
port = {metrics_port}
[compliance]
profiles_file = "{tmp / 'profiles.toml'}"
[shutdown]
drain_timeout_s = 8.0
""",
        encoding="utf-8",
    )
    return path


@contextlib.asynccontextmanager
async def cluster(tmp: Path) -> AsyncIterator[Cluster]:
    name = f"dialer_nodes_{uuid.uuid4().hex[:10]}"
    await _pg_admin(f'CREATE DATABASE "{name}"')
    host = PG_ADMIN_DSN.split("://", 1)[1].rsplit("/", 1)[0]
    db_url = f"postgresql://{host}/{name}"
    namespace = f"dialer-nodes:{uuid.uuid4().hex[:10]}:"
    redis = Redis.from_url(REDIS_URL)
    sim: asyncio.subprocess.Process | None = None
    result: Cluster | None = None
    try:
        (tmp / "profiles.toml").write_text(DEMO_PROFILE, encoding="utf-8")
        campaign_id, numbers, passwords = await _prepare(db_url, tmp, namespace)
        sim_log = tmp / "originates.jsonl"
        sim = await asyncio.create_subprocess_exec(
            sys.executable, str(SIM), "--log", str(sim_log), stdout=asyncio.subprocess.PIPE
        )
        assert sim.stdout is not None
        sim_port = int(json.loads(await asyncio.wait_for(sim.stdout.readline(), 30.0))["port"])
        result = Cluster(db_url, campaign_id, numbers, passwords, sim_log, RedisLeaseStore(redis, namespace))
        for node in ("node-a", "node-b"):
            api, metrics = _free_port(), _free_port()
            config = _config(tmp, node, db_url, namespace, sim_port, api, metrics)
            result.nodes[node] = NodeProcess(node, config, tmp / f"{node}.log", api, metrics)
        try:
            yield result
        except BaseException:
            for node in result.nodes.values():  # what the nodes said, for the failure's report
                if node.log.exists():
                    tail = node.log.read_text(errors="replace").splitlines()[-25:]
                    print(f"\n--- {node.name} (last lines)\n" + "\n".join(tail))
            raise
    finally:
        if result is not None:
            for node in result.nodes.values():
                if node.proc is not None and node.proc.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        node.proc.send_signal(signal.SIGCONT)
                        node.proc.kill()
                    await node.proc.wait()
        if sim is not None and sim.returncode is None:
            sim.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(sim.wait(), 10.0)
            except TimeoutError:
                sim.kill()
                await sim.wait()
        keys = [k async for k in redis.scan_iter(f"{namespace}*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()
        await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_two_nodes_hand_a_campaign_over_without_dialing_a_lead_twice_or_losing_an_attempt(
    tmp_path: Path,
) -> None:
    async with cluster(tmp_path) as c:
        a, b = c.nodes["node-a"], c.nodes["node-b"]

        async def held_by(node: str) -> bool:
            return (await c.holder() or "").startswith(f"{node}/")

        async def dialed(at_least: int) -> bool:
            return len(c.originates()) >= at_least

        # A takes the campaign once its agents sign in; B waits beside it with agents of its own.
        await a.start()
        await b.start()
        await _until("node-a's API answers", lambda: c.api_up(a), 30.0)
        await _until("node-b's API answers", lambda: c.api_up(b), 30.0)
        await asyncio.sleep(LEASE_S / 2)  # the nodes' first lease rounds are over
        assert await c.holder() is None  # no agents anywhere: no node takes the campaign
        await c.sign_in(a, AGENTS[:2])
        await _until("node-a holds the lease", lambda: held_by("node-a"), 3 * LEASE_S)
        await c.sign_in(b, AGENTS[2:])  # with tokens node-a's API gave them
        await _until("node-a dials", lambda: dialed(10), 30.0)

        # A is killed mid-campaign: B takes over within the lease time.
        a.signal(signal.SIGKILL)
        killed = time.monotonic()
        await a.wait()
        took = await _until("node-b takes the campaign", lambda: held_by("node-b"), 3 * LEASE_S)
        first_takeover = took - killed
        before = len(c.originates())
        await _until("node-b dials", lambda: dialed(before + 8), 30.0)

        # A comes back (systemd restarts it); its agents sign in again with the tokens they hold.
        await a.start()
        await _until("node-a's API answers again", lambda: c.api_up(a), 30.0)
        assert await held_by("node-b")
        await c.sign_in(a, AGENTS[:2])
        # Their old legs (from the killed A) are cleared as the new ones are seated; an agent whose
        # desk lost its new leg in that exchange signs in again, as a person at the screen would.
        await asyncio.sleep(1.0)
        again = await c.not_ready(a, AGENTS[:2])
        if again:
            print(f"\nagents {', '.join(again)} signed in again on the restarted node-a")
            await c.sign_in(a, again)

        # B is paused past its lease: A takes the campaign back.
        b.signal(signal.SIGSTOP)
        paused_at, paused_wall = time.monotonic(), time.time()
        took = await _until("node-a takes the campaign back", lambda: held_by("node-a"), 3 * LEASE_S)
        second_takeover = took - paused_at
        before = len(c.originates())
        await _until("node-a dials again", lambda: dialed(before + 8), 30.0)

        # B wakes up: it holds nothing and dials nothing for the campaign.
        resumed_wall = time.time()
        b.signal(signal.SIGCONT)
        await asyncio.sleep(2.0)  # ten of its pacing ticks, two lease rounds
        assert 'dialer_campaign_lease_held{campaign="failover"} 0.0' in await b.metrics()
        assert 'dialer_campaign_lease_held{campaign="failover"} 1.0' in await a.metrics()
        a.signal(signal.SIGTERM)
        b.signal(signal.SIGTERM)
        assert await a.wait() == 0
        assert await b.wait() == 0
        print(
            f"\ntakeover after SIGKILL: {first_takeover:.2f} s; after SIGSTOP: {second_takeover:.2f} s "
            f"(lease {LEASE_S:g} s, renewed every {LEASE_S / 3:g} s); {len(c.originates())} originates"
        )

        attempts = await c.attempts()
        originates = c.originates()
        by_id = {row.id: row for row in attempts}
        # No lead dialed twice: at the PBX and in the record.
        per_number = Counter(str(o["dial"]).split("/")[2].split("@")[0] for o in originates)
        assert per_number and max(per_number.values()) == 1, per_number.most_common(3)
        per_lead = Counter(row.lead_id for row in attempts)
        assert max(per_lead.values()) == 1, per_lead.most_common(3)
        # No attempt lost: each originate has its attempt row, each attempt its one result.
        assert all(str(o["uuid"]) in by_id for o in originates)
        assert [row.id for row in attempts if row.status != "closed" or row.result is None] == []
        # Each node dialed under its own token: A 1, B 2, A again 3; and a token only while it held it.
        tokens = {(row.node_id, row.fencing_token) for row in attempts}
        assert tokens == {("node-a", 1), ("node-b", 2), ("node-a", 3)}, tokens
        sent = [(float(str(o["at"])), by_id[str(o["uuid"])].fencing_token) for o in originates]
        assert all(token == 3 for at, token in sent if at >= resumed_wall), "B dialed after it woke up"
        assert all(at < paused_wall + 0.5 for at, token in sent if token == 2)
        assert "lease lost (token 2)" in b.text()
        assert "lease taken by node node-a (token 3)" in a.text()
        lost = [row for row in attempts if row.result == "lost"]
        assert {row.node_id for row in lost} <= {"node-a", "node-b"}
        assert first_takeover <= TAKEOVER_LIMIT_S, first_takeover
        assert second_takeover <= TAKEOVER_LIMIT_S, second_takeover
