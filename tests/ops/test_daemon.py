"""The daemon under systemd: the unit passes ``systemd-analyze verify``; ``dialer run`` says READY,
pings the watchdog, reloads on SIGHUP (RELOADING, then READY) without a restart, says STOPPING on
SIGTERM; a second SIGTERM ends the drain at once; its log lines are JSON for the journal."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from dialer.compliance.gate import ComplianceConfig, build_gate
from dialer.domain.campaign import AmdPolicy, CampaignSettings, CampaignStatus, PacingMode
from dialer.runtime.demo import DEMO_PROFILE
from dialer.store.db import Database
from dialer.store.models import Attempt
from dialer.store.repositories import NewLead
from telephony.sim.asterisk import AsteriskSimulator
from telephony.sim.model import ScriptedCallee, WithAgentPhones

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "systemd/dialer.service"
DIALER = Path(sys.executable).parent / "dialer"
SECRET = "ops-secret"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- the unit ------------------------------------------------------------------------------------------


def _verify(unit_text: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    systemd_analyze = shutil.which("systemd-analyze")
    assert systemd_analyze, "systemd-analyze is missing: apt-get install systemd"
    # Installed, ExecStart is /opt/dialer/bin/dialer; here the one of this checkout stands for it.
    unit = tmp_path / "dialer.service"
    unit.write_text(unit_text.replace("/opt/dialer/bin/dialer", str(DIALER)), encoding="utf-8")
    return subprocess.run([systemd_analyze, "verify", str(unit)], capture_output=True, text=True)


def test_the_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    text = UNIT.read_text(encoding="utf-8")
    checked = _verify(text, tmp_path)
    assert checked.returncode == 0 and checked.stderr.strip() == "", checked.stderr
    for line in ("Type=notify", "WatchdogSec=", "ExecReload=/bin/kill -HUP $MAINPID", "KillSignal=SIGTERM"):
        assert line in text


def test_systemd_analyze_verify_catches_a_misspelled_key(tmp_path: Path) -> None:
    checked = _verify(UNIT.read_text(encoding="utf-8").replace("WatchdogSec=", "WatchdogSecs="), tmp_path)
    assert "Unknown key 'WatchdogSecs'" in checked.stderr


# -- a node on the simulated Asterisk -----------------------------------------------------------------


@dataclass
class Site:
    config: Path
    url: str
    campaign_id: int
    metrics_port: int
    sim: AsteriskSimulator


def _config(tmp: Path, url: str, sim: AsteriskSimulator, agi_port: int, metrics_port: int) -> str:
    return f"""
[database]
url = "{url}"
[node]
id = "ops-node"
[pbx.main]
type = "asterisk"
port = {sim.port}
secret = "{SECRET}"
fastagi_port = {agi_port}
max_lines = 60
[pacing]
tick_s = 0.1
[compliance]
profiles_file = "{tmp / "profiles.toml"}"
[shutdown]
drain_timeout_s = 60.0
[api]
port = {free_port()}
[metrics]
port = {metrics_port}
[logging]
format = "json"
"""


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    (tmp_path / "profiles.toml").write_text(DEMO_PROFILE, encoding="utf-8")
    url = f"sqlite+aiosqlite:///{tmp_path / 'dialer.db'}"
    async with Database(url) as db:
        await db.migrate()
        campaign = await db.campaigns.create(
            "ops",
            CampaignSettings(
                dial_string="PJSIP/{digits}@trunk",
                caller_id="+33100000000",
                pbx="main",
                pacing_mode=PacingMode.PROGRESSIVE,
                ring_timeout_s=60.0,
                amd_policy=AmdPolicy.OFF,
                jurisdiction="CUSTOM-DEMO",
            ),
        )
        list_id = await db.leads.create_list(campaign.id, "l", "test", "FR")
        # 4XXX: the simulated callee never answers; the call rings for the whole ring timeout.
        numbers = [f"+33612304{i:03d}" for i in range(5)]
        await db.leads.add(
            campaign.id,
            list_id,
            [NewLead(phone=n, timezones=("Europe/Paris",)) for n in numbers],
            now=datetime.now(UTC) - timedelta(minutes=1),
        )
        gate = await build_gate(
            ComplianceConfig(database_url=url, profile_files=(tmp_path / "profiles.toml",)), engine=db.engine
        )
        (tmp_path / "bloctel.txt").write_text("+33699999999\n")
        await gate.dnc.import_registry(tmp_path / "bloctel.txt", "bloctel", datetime.now(UTC).date())
        await gate.close()
        await db.campaigns.set_status(campaign.id, CampaignStatus.RUNNING)
    agi_port, metrics_port = free_port(), free_port()
    sim = AsteriskSimulator(
        model=WithAgentPhones(ScriptedCallee()), shape="sip", secret=SECRET, fastagi_port=agi_port
    )
    await sim.start()
    config = tmp_path / "dialer.toml"
    config.write_text(_config(tmp_path, url, sim, agi_port, metrics_port), encoding="utf-8")
    try:
        yield Site(config, url, campaign.id, metrics_port, sim)
    finally:
        await sim.stop()


class NotifySocket:
    """The datagram socket systemd gives a Type=notify service (NOTIFY_SOCKET)."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.setblocking(False)
        self.seen: list[str] = []

    async def expect(self, prefix: str, timeout_s: float = 30.0) -> str:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            try:
                message = (await asyncio.wait_for(loop.sock_recv(self.sock, 4096), 0.2)).decode()
            except TimeoutError:
                continue
            self.seen.append(message)
            if message.startswith(prefix):
                return message
        raise AssertionError(f"no {prefix!r} from the daemon within {timeout_s} s; got {self.seen}")

    def close(self) -> None:
        self.sock.close()


async def _metrics(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        reply = await client.get(f"http://127.0.0.1:{port}/metrics")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(reply.text)
        for s in family.samples
    }


def _log_lines(path: Path) -> list[dict[str, str]]:
    lines = [line for line in path.read_text(errors="replace").splitlines() if line.startswith("{")]
    return [json.loads(line) for line in lines]


async def test_dialer_run_sends_ready_watchdog_reloading_and_stopping(site: Site, tmp_path: Path) -> None:
    notify = NotifySocket(tmp_path / "notify.sock")
    log = tmp_path / "node.log"
    env = {
        **os.environ,
        "NOTIFY_SOCKET": notify.path,
        "WATCHDOG_USEC": "400000",
        "INVOCATION_ID": "0123456789abcdef",  # as systemd sets it: the journal stamps the lines
    }
    with log.open("wb") as out:
        node = await asyncio.create_subprocess_exec(
            str(DIALER), "run", "--config", str(site.config), env=env, stdout=out, stderr=out, cwd=tmp_path
        )
    try:
        ready = await notify.expect("READY=1")
        assert "STATUS=dialing 1 campaign(s)" in ready
        await notify.expect("WATCHDOG=1")
        await notify.expect("WATCHDOG=1", timeout_s=2.0)  # again: the loop keeps pinging

        # SIGHUP: one key applies live (the trunk's lines), one needs a restart (the API port).
        text = site.config.read_text(encoding="utf-8")
        site.config.write_text(
            text.replace("max_lines = 60", "max_lines = 30").replace("[api]\nport = ", "[api]\nport = 1"),
            encoding="utf-8",
        )
        node.send_signal(signal.SIGHUP)
        reloading = await notify.expect("RELOADING=1")
        assert "MONOTONIC_USEC=" in reloading
        assert (await notify.expect("READY=1")).endswith("STATUS=reloaded")
        metrics = await _metrics(site.metrics_port)
        assert metrics[("dialer_pbx_max_lines", (("pbx", "main"),))] == 30
        assert metrics[("dialer_config_reloads_total", (("result", "partial"),))] == 1
        assert node.returncode is None  # reloaded, not restarted

        node.send_signal(signal.SIGTERM)
        await notify.expect("STOPPING=1")
        assert await asyncio.wait_for(node.wait(), 30) == 0
    finally:
        if node.returncode is None:
            node.kill()
            await node.wait()
        notify.close()
    lines = _log_lines(log)
    assert lines, log.read_text()[-2000:]
    assert all("time" not in line for line in lines)  # under systemd the journal stamps the lines
    messages = [line["message"] for line in lines]
    assert any("api.port changed but cannot change live" in m for m in messages), messages
    assert any("applied live: pbx.main.max_lines" in m for m in messages), messages
    assert any(m.startswith("stopping: no new dials") for m in messages), messages


async def test_a_second_sigterm_ends_the_drain_at_once(site: Site, tmp_path: Path) -> None:
    log = tmp_path / "node.log"
    with log.open("wb") as out:
        node = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.runtime.crash_node",  # ``serve`` with one simulated agent: the campaign dials
            str(site.config),
            "1",
            str(site.campaign_id),
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            stdout=out,
            stderr=out,
        )
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30.0
        while "dialing +33" not in log.read_text(errors="replace") and '"dialing' not in log.read_text():
            assert loop.time() < deadline, log.read_text()[-3000:]
            assert node.returncode is None, log.read_text()[-3000:]
            await asyncio.sleep(0.1)
        node.send_signal(signal.SIGTERM)
        await asyncio.sleep(1.5)
        assert node.returncode is None  # draining: the call rings for a minute
        started = loop.time()
        node.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(node.wait(), 15) == 1
        assert loop.time() - started < 10.0
    finally:
        if node.returncode is None:
            node.kill()
            await node.wait()
    text = log.read_text(errors="replace")
    assert "second stop signal: exiting now" in text
    assert "+33612304" not in text  # numbers masked in every line
    async with Database(site.url) as db, db.read_session() as s:
        still_open = (await s.execute(select(func.count()).where(Attempt.status == "open"))).scalar_one()
    assert still_open >= 1  # left to the next start's reconciliation
