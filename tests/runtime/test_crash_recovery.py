"""The daemon killed with SIGKILL at random points loses no attempt and sends no originate twice.

A real node process (``serve`` with simulated agents) dials a campaign on the
Asterisk simulator running in this test; it is killed at random moments and
restarted, then stopped with SIGTERM.  Afterwards every attempt has exactly one
row with one outcome (calls cut by a crash get ``lost`` from reconciliation),
no Originate reached the PBX twice, and every lead is in a consistent state.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import socket
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from dialer.compliance.gate import ComplianceConfig, build_gate
from dialer.domain.campaign import AmdPolicy, CampaignSettings, CampaignStatus, LeadStatus, PacingMode
from dialer.leads.importer import import_leads
from dialer.runtime.demo import DEMO_PROFILE, write_lead_list
from dialer.store.db import Database
from dialer.store.models import Attempt, Lead
from telephony.sim.asterisk import AsteriskSimulator
from telephony.sim.model import CalleeMix, RandomCallee, WithAgentPhones

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def prepare(url: str, tmp: Path, leads: int) -> tuple[int, Path]:
    profiles = tmp / "profiles.toml"
    profiles.write_text(DEMO_PROFILE)
    async with Database(url) as db:
        await db.migrate()
        campaign = await db.campaigns.create(
            "crash",
            CampaignSettings(
                dial_string="PJSIP/{digits}@trunk",
                caller_id="+33100000000",
                pbx="main",
                pacing_mode=PacingMode.RATIO,
                dial_ratio=2.0,
                amd_policy=AmdPolicy.HANGUP,
                wrap_up_limit_s=5.0,
                jurisdiction="CUSTOM-DEMO",
            ),
        )
        numbers = write_lead_list(tmp / "leads.csv", leads, random.Random(3))
        await import_leads(
            db, tmp / "leads.csv", campaign.id, "FR", {"phone": "Telephone"}, tmp / "rejects.csv"
        )
        gate = await build_gate(
            ComplianceConfig(database_url=url, profile_files=(profiles,)), engine=db.engine
        )
        (tmp / "bloctel.txt").write_text(f"{numbers[0]}\n")
        await gate.dnc.import_registry(tmp / "bloctel.txt", "bloctel", datetime.now(UTC).date())
        await gate.close()
        await db.campaigns.set_status(campaign.id, CampaignStatus.RUNNING)
    return campaign.id, profiles


def write_config(tmp: Path, url: str, ami_port: int, agi_port: int, profiles: Path) -> Path:
    config = tmp / "dialer.toml"
    config.write_text(
        f"""
[database]
url = "{url}"
[node]
id = "crash-node"
[pbx.main]
type = "asterisk"
port = {ami_port}
secret = "crash-secret"
fastagi_port = {agi_port}
action_timeout_s = 3.0
[pacing]
tick_s = 0.1
[compliance]
profiles_file = "{profiles}"
[shutdown]
drain_timeout_s = 30.0
[api]
port = {free_port()}
[metrics]
port = {free_port()}
"""
    )
    return config


async def start_node(config: Path, campaign_id: int, log: Path) -> asyncio.subprocess.Process:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.runtime.crash_node",
        str(config),
        "3",
        str(campaign_id),
        cwd=REPO,
        env=env,
        stdout=log.open("ab"),
        stderr=asyncio.subprocess.STDOUT,
    )


NODE_DIALING = re.compile(r"node \S+ dialing \d+ campaign")


async def dialing(node: asyncio.subprocess.Process, log: Path, timeout_s: float = 60.0) -> None:
    """Wait until this node says it dials: the kills then fall among calls, not among imports."""

    def text() -> str:
        return log.read_text(errors="replace") if log.exists() else ""

    def started() -> int:
        return len(NODE_DIALING.findall(text()))

    seen = started()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline and node.returncode is None:
        if started() > seen:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"the node never started dialing:\n{text()[-3000:]}")


def customer_originates(sim: AsteriskSimulator) -> list[str]:
    return [o for o in sim.originates_received if not o.startswith("agent-")]


async def calls_placed(sim: AsteriskSimulator, count: int, timeout_s: float = 60.0) -> None:
    """Wait until the PBX has received ``count`` customer calls, so a kill falls among calls."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while len(customer_originates(sim)) < count:
        if loop.time() > deadline:
            raise AssertionError(f"the node placed {len(customer_originates(sim))} calls, not {count}")
        await asyncio.sleep(0.05)


@pytest.mark.slow
async def test_sigkill_at_random_points_loses_no_attempt_and_sends_no_originate_twice(database_url, tmp_path):
    campaign_id, profiles = await prepare(database_url, tmp_path, leads=60)
    agi_port = free_port()
    model = WithAgentPhones(
        RandomCallee(
            seed=11,
            mix=CalleeMix(person=0.35, machine=0.15, no_answer=0.3, busy=0.12, congestion=0.03, invalid=0.05),
            talk_median_s=8.0,
        )
    )
    sim = AsteriskSimulator(
        model=model, shape="sip", time_scale=6.0, secret="crash-secret", fastagi_port=agi_port
    )
    await sim.start()
    config = write_config(tmp_path, database_url, sim.port, agi_port, profiles)
    log = tmp_path / "node.log"
    rng = random.Random(2026)
    try:
        for _ in range(4):
            node = await start_node(config, campaign_id, log)
            await dialing(node, log)
            await calls_placed(sim, 1 + len(customer_originates(sim)))  # on a loaded machine dialing lags
            await asyncio.sleep(rng.uniform(1.0, 3.5))
            node.kill()  # SIGKILL: no cleanup at all
            await node.wait()
        node = await start_node(config, campaign_id, log)
        await dialing(node, log)
        await asyncio.sleep(6.0)
        assert node.returncode is None, f"the node stopped by itself:\n{log.read_text()[-4000:]}"
        node.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(node.wait(), 60) == 0, log.read_text()[-3000:]
    finally:
        await sim.stop()

    everything = sim.originates_received
    assert len(everything) == len(set(everything)), "an Originate was sent twice"
    originates = customer_originates(sim)  # agent legs are not attempts
    assert originates, log.read_text()[-3000:]
    async with Database(database_url) as db, db.session() as s:
        attempts = (await s.execute(select(Attempt))).scalars().all()
        leads = (await s.execute(select(Lead))).scalars().all()
        per_lead = dict(
            (await s.execute(select(Attempt.lead_id, func.count()).group_by(Attempt.lead_id))).all()
        )
    ids = {a.id for a in attempts}
    assert set(originates) <= ids, "an Originate reached the PBX with no attempt row"
    for attempt in attempts:
        assert attempt.status == "closed" and attempt.outcome, f"attempt {attempt.id} has no outcome"
        assert attempt.ended_at is not None
        if attempt.id not in originates:  # the crash came between the row and the originate
            assert attempt.outcome in ("lost", "failed"), attempt.outcome
    assert any(a.outcome == "lost" for a in attempts), "no call was cut: the kills missed every call"
    for lead in leads:
        assert lead.status not in (LeadStatus.IN_FLIGHT.value, LeadStatus.WRAP_UP.value), lead.status
        assert lead.claimed_by is None
        assert lead.attempt_count == per_lead.get(lead.id, 0)
