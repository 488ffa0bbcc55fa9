"""``dialer demo``: a whole campaign on the embedded defaults, with nothing to install.

It creates a SQLite database in a fresh folder, imports a built-in lead list
through the real importer (a few bad rows show the rejects file), puts a few
numbers on the do-not-call list, starts the built-in PBX simulator (Asterisk
AMI + FastAGI, or FreeSWITCH ESL), logs simulated agents in, and dials for
the given time through the real compliance gate, pacer and engine.  The
simulated agents qualify each call after a short wrap-up.  It ends with the
count of each outcome, the gate's refusals, and the answer-to-agent times.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import logging
import random
import socket
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, TextIO

import httpx

from dialer.domain.campaign import AmdPolicy, CampaignSettings, CampaignStatus, PacingMode, RecordingPolicy
from dialer.followup.report import print_deadlines
from dialer.leads.importer import import_leads
from dialer.notify.sink import LocalInboxes
from dialer.notify.worker import DeliveryWorker
from dialer.quality.scorecards import print_scorecards
from dialer.recordings.report import recordings_summary
from dialer.runtime.bootstrap import Runtime, build_runtime
from dialer.runtime.demo_agents import sign_in_simulated_agents
from dialer.runtime.demo_calendar import seed_field_calendar
from dialer.runtime.services import start_services
from dialer.sales.report import print_sales
from dialer.settings import SellerSettings, Settings
from dialer.store.db import Database
from telephony.asterisk.adapter import AsteriskPbx
from telephony.asterisk.settings import AsteriskSettings
from telephony.base import Pbx
from telephony.freeswitch.adapter import FreeSwitchPbx, FreeSwitchSettings
from telephony.sim.asterisk import AsteriskSimulator
from telephony.sim.freeswitch import FreeSwitchSimulator
from telephony.sim.model import CalleeMix, RandomCallee, WithAgentPhones

log = logging.getLogger(__name__)

# The demo's own jurisdiction profile: every hour of every day, so the demo dials whenever it is run.
# A real campaign picks FR, US, UK, ... (dialer/compliance/profiles.toml).
DEMO_PROFILE = """\
[profiles.CUSTOM-DEMO]
# Demonstration only: no real person is ever called (the PBX is the built-in simulator).
holiday_country = "FR"
window.mon = ["00:00-24:00"]
window.tue = ["00:00-24:00"]
window.wed = ["00:00-24:00"]
window.thu = ["00:00-24:00"]
window.fri = ["00:00-24:00"]
window.sat = ["00:00-24:00"]
window.sun = ["00:00-24:00"]
window.holidays = ["00:00-24:00"]
max_attempts = 10
pressure_period = "1d"
pressure_counts = "attempts"
# A minute: a callback the customer asks for "in a minute" may be made (the demo's deadlines are short).
min_gap = "1m"
abandon_rate_cap = 0.03
abandon_window = "1d"
"""


@dataclass(frozen=True)
class DemoOptions:
    seconds: float = 30.0
    api_port: int = 0  # 0: a free port
    agents: int = 6
    leads: int = 400
    pbx: Literal["asterisk", "freeswitch"] = "asterisk"
    pacing: Literal["progressive", "ratio", "predictive"] = "predictive"
    time_scale: float = 4.0
    seed: int = 7
    workdir: Path | None = None


def write_lead_list(path: Path, count: int, rng: random.Random) -> list[str]:
    """A French lead list of fictitious mobile numbers, with a few rows that must be rejected."""
    numbers = [f"+3361{rng.randrange(10**7):07d}" for _ in range(count)]
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out, delimiter=";")
        writer.writerow(["Telephone", "Prenom", "Nom"])
        for i, number in enumerate(numbers):
            writer.writerow(
                [
                    f"0{number[3:4]} {number[4:6]} {number[6:8]} {number[8:10]} {number[10:]}",
                    f"Client{i}",
                    "Demo",
                ]
            )
        writer.writerow(["01 23", "Short", "Number"])  # not a valid number: rejected
        writer.writerow([f"0{numbers[0][3:]}", "Twice", "Listed"])  # a duplicate: rejected
        writer.writerow(["", "No", "Phone"])  # no number at all: rejected
    return numbers


class Progress:
    """One status line a second: on a terminal it rewrites itself, elsewhere it scrolls."""

    def __init__(self, runtime: Runtime, out: TextIO, started: float) -> None:
        self.runtime = runtime
        self.out = out
        self.started = started
        self.tty = out.isatty()

    def line(self) -> str:
        engine = self.runtime.engine
        states = [c.call.state.value for c in engine.calls.values()]
        agents = [a.state.value for a in self.runtime.agents.view()]
        done = sum(engine.outcomes.values())
        dialing = states.count("dialing") + states.count("ringing")
        return (
            f"{time.monotonic() - self.started:5.1f}s  dialing {dialing:3d}"
            f"  talking {agents.count('on_call'):2d}/{len(agents)}  wrap-up {agents.count('wrap_up'):2d}"
            f"  finished {done:4d}  connected {engine.outcomes['connected']:3d}"
            f"  abandoned {engine.outcomes['abandoned']:2d}  blocked {sum(engine.blocked.values()):3d}"
        )

    def show(self) -> None:
        if self.tty:
            self.out.write("\r" + self.line())
        else:
            self.out.write(self.line() + "\n")
        self.out.flush()

    def end(self) -> None:
        if self.tty:
            self.out.write("\n")


def _free_port() -> int:
    """A loopback port nobody listens on now, for the FastAGI server the simulator will call."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _start_pbx(
    options: DemoOptions, rng_seed: int, recordings_dir: Path | None = None
) -> tuple[Pbx, Callable[[], Awaitable[None]]]:
    """Start the simulator and the adapter that talks to it; returns the adapter and a stopper."""
    model = WithAgentPhones(
        RandomCallee(
            seed=rng_seed,
            mix=CalleeMix(
                person=0.30, machine=0.15, no_answer=0.35, busy=0.12, congestion=0.03, invalid=0.05
            ),
            person_ring_median_s=6.0,
            talk_median_s=25.0,
            machine_ring_min_s=8.0,
            machine_ring_max_s=14.0,
        )
    )
    if options.pbx == "asterisk":
        agi_port = _free_port()
        asterisk = AsteriskSimulator(
            model=model, shape="sip", time_scale=options.time_scale, secret="demo", fastagi_port=agi_port
        )
        asterisk.recordings.directory = recordings_dir  # the calls' WAV files (MixMonitor)
        await asterisk.start()
        pbx = AsteriskPbx(
            AsteriskSettings(port=asterisk.port, secret="demo", fastagi_port=agi_port, name="demo-asterisk")
        )
        await pbx.start()
        return pbx, asterisk.stop
    switch = FreeSwitchSimulator(model=model, time_scale=options.time_scale, password="demo")
    switch.recordings.directory = recordings_dir  # the calls' WAV files (uuid_record)
    await switch.start()
    fs = FreeSwitchPbx(FreeSwitchSettings(port=switch.port, password="demo"))
    await fs.start()
    return fs, switch.stop


class DemoError(Exception):
    """The demo cannot run as asked; the message says what to do."""


# Who sells in the demo: printed on the confirmations of its sales.
DEMO_SELLER = SellerSettings(
    name="Demo Energy Ltd",
    address="1 Demo Street, 75001 Paris",
    email="sales@demo.invalid",
    phone="+33100000000",
)

# Every file the demo writes in its folder: none of them may be there before (never overwrite).
DEMO_FILES = (
    "dialer.db",
    "dialer.db-wal",
    "dialer.db-shm",
    "profiles.toml",
    "leads.csv",
    "rejects.csv",
    "bloctel.txt",
    "recordings",
)


def prepare_workdir(workdir: Path | None) -> Path:
    """A fresh folder for the demo, or the given one if it holds none of the demo's files.

    The demo never touches a database (or any file) it did not create: an existing one is refused.
    """
    if workdir is None:
        return Path(tempfile.mkdtemp(prefix="dialer-demo-"))
    if workdir.exists() and not workdir.is_dir():
        raise DemoError(f"--workdir {workdir} is a file; give a folder (new or empty)")
    found = [name for name in DEMO_FILES if (workdir / name).exists()]
    if found:
        raise DemoError(
            f"--workdir {workdir} already holds {', '.join(found)}; the demo never touches files it did "
            "not create: give a new or empty folder, or leave --workdir out for a fresh temporary one"
        )
    try:
        workdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DemoError(f"cannot create --workdir {workdir}: {exc.strerror}") from None
    return workdir


async def run_demo(options: DemoOptions, out: TextIO = sys.stdout) -> dict[str, int]:
    """Run the demo; returns the count of each outcome (the same table it prints)."""
    rng = random.Random(options.seed)
    workdir = prepare_workdir(options.workdir)
    db_path = workdir / "dialer.db"
    url = f"sqlite+aiosqlite:///{db_path}"
    profiles = workdir / "profiles.toml"
    profiles.write_text(DEMO_PROFILE, encoding="utf-8")
    print(f"dialer demo: database {db_path}", file=out)

    async with Database(url) as db:
        await db.migrate()
        template = "PJSIP/{digits}@trunk" if options.pbx == "asterisk" else "sofia/dialer/{digits}@trunk"
        record = await db.campaigns.create(
            "demo",
            CampaignSettings(
                dial_string=template,
                caller_id="+33100000000",
                caller_id_name="Demo",
                pbx="default",  # the PBX the demo's runtime is given: the built-in simulator
                pacing_mode=PacingMode(options.pacing),
                dial_ratio=2.0,
                amd_policy=AmdPolicy.HANGUP,
                identification_message="dialer-identification",
                connect_limit_s=2.0,
                wrap_up_limit_s=20.0,
                jurisdiction="CUSTOM-DEMO",
                # Follow-up deadlines at the shortest the settings allow, so a demo run sees them fall due.
                callback_default_delay_s=60.0,
                callback_grace_s=0.0,
                info_email_within_s=60.0,
                missed_call_back_within_s=60.0,
                recording=RecordingPolicy.ALL,
            ),
        )
        leads_csv = workdir / "leads.csv"
        numbers = write_lead_list(leads_csv, options.leads, rng)
        report = await import_leads(
            db, leads_csv, record.id, "FR", {"phone": "Telephone"}, rejects_path=workdir / "rejects.csv"
        )
        rejected = sum(report.rejected.values())
        print(
            f"dialer demo: imported {report.imported} leads, rejected {rejected} "
            f"({', '.join(f'{k} {v}' for k, v in sorted(report.rejected.items()))}) -> {report.rejects_path}",
            file=out,
        )
        await seed_field_calendar(db, record.id, rng)  # salespeople the agents book visits for
        await db.campaigns.set_status(record.id, CampaignStatus.RUNNING)

    recordings_dir = workdir / "recordings"
    # A local mail server and SMS gateway: the confirmations and invitations are really sent.
    inboxes = await LocalInboxes.start(workdir / "inboxes")
    pbx, stop_sim = await _start_pbx(options, options.seed, recordings_dir)
    runtime = await build_runtime(
        Settings(
            database_url=url,
            node_id="demo-node",
            tick_s=0.2,
            seller=DEMO_SELLER,
            recordings_dir=recordings_dir,
            notify=inboxes.notify_settings(),
        ),
        pbx=pbx,
        profile_files=(profiles,),
    )
    try:
        # As an operator does: the national registry (Bloctel for French numbers) screened today,
        # and a few numbers on our own list.  Without a fresh registry the gate dials nobody.
        registry = workdir / "bloctel.txt"
        registry.write_text("".join(f"{n}\n" for n in numbers[3 :: max(1, options.leads // 10)]), "utf-8")
        await runtime.gate.dnc.import_registry(registry, "bloctel", datetime.now(UTC).date())
        for number in numbers[1 :: max(1, options.leads // 8)]:
            await runtime.gate.dnc.add(number, source="demo")
        await runtime.load_campaigns(datetime.now(UTC))
        stop = asyncio.Event()  # no new dials; calls in progress finish
        serving = asyncio.Event()  # set after the drain: agents qualify their last calls meanwhile
        services = await start_services(
            runtime, serving, host="127.0.0.1", port=options.api_port or _free_port()
        )
        api = services.api_url
        # The engine runs before the agents sign in: a phone the PBX cannot call logs its agent out.
        engine_task = asyncio.get_running_loop().create_task(runtime.engine.run(stop, drain_timeout_s=20.0))
        client = httpx.AsyncClient(base_url=api or "", timeout=10.0)
        bots = await sign_in_simulated_agents(
            services.accounts, client, options.pbx, options.agents, str(record.id), rng, serving
        )
        print(
            f"dialer demo: supervisor page {api}/supervisor, agent screen {api}/agent "
            f"(sign in as a user: `dialer user add ID --db {url}`), API {api}/openapi.json",
            file=out,
        )
        print(f"dialer demo: Prometheus metrics {services.metrics_url}", file=out)
        print(
            f"dialer demo: {options.agents} agents, {options.pacing} pacing, {options.pbx} simulator "
            f"(x{options.time_scale:g} speed), dialing for {options.seconds:g} s",
            file=out,
        )
        started = time.monotonic()
        progress = Progress(runtime, out, started)
        while time.monotonic() - started < options.seconds and not engine_task.done():
            await asyncio.sleep(1.0)
            progress.show()
        stop.set()
        progress.end()
        print("dialer demo: stopping: no new dials, calls in progress finish", file=out)
        await engine_task
        serving.set()
        await bots.stop()
        await client.aclose()
        await services.stop()
        _summary(runtime, out)
        visits = sum(a.visits for a in bots.agents)
        print(f"Field visits booked: {visits} (see `dialer calendar appointments --db {url}`)", file=out)
        await print_sales(services.desk.sales, out)
        await _deliver_the_rest(runtime, inboxes, out)
        await print_deadlines(runtime.db, datetime.now(UTC), out)
        await recordings_summary(runtime.db, recordings_dir, out, time_scale=options.time_scale)
        await services.desk.state_log.flush()  # the agents' last intervals, for their scorecards
        note = "time in seconds"
        if options.time_scale != 1:
            note = (
                f"time in wall-clock seconds; the simulated PBX runs x{options.time_scale:g}, "
                "so its calls and recordings above last that much longer"
            )
        await print_scorecards(runtime.db, out, time_note=note)
        return dict(runtime.engine.outcomes)
    finally:
        await runtime.close()
        await inboxes.stop()
        with contextlib.suppress(Exception):
            await stop_sim()


async def _deliver_the_rest(runtime: Runtime, inboxes: LocalInboxes, out: TextIO) -> None:
    """Send what the last calls queued (the worker stopped with the node), then say where it went."""
    worker = DeliveryWorker.from_settings(runtime.db, inboxes.notify_settings())
    for _ in range(5):
        if not await worker.send_due():
            break
    mails = inboxes.received.emails()
    invitations = sum(1 for m in mails if any(p.get_content_type() == "text/calendar" for p in m.walk()))
    pdfs = sum(1 for m in mails if any(p.get_content_type() == "application/pdf" for p in m.walk()))
    print(
        f"Messages delivered: {len(mails)} emails ({pdfs} sale confirmations with the withdrawal form, "
        f"{invitations} visit invitations), {len(inboxes.received.sms)} SMS -> {inboxes.folder}",
        file=out,
    )


def _summary(runtime: Runtime, out: TextIO) -> None:
    engine = runtime.engine
    total = sum(engine.outcomes.values())
    print(f"\nOutcome of {total} attempts", file=out)
    for outcome, count in engine.outcomes.most_common():
        print(f"  {outcome:<16}{count:6d}  {count / total:6.1%}" if total else "", file=out)
    if engine.blocked:
        print("Refused by the compliance gate (not dialed)", file=out)
        for rule, count in engine.blocked.most_common():
            print(f"  {rule:<16}{count:6d}", file=out)
    persons = engine.outcomes["connected"] + engine.outcomes["abandoned"]
    abandoned = engine.outcomes["abandoned"]
    if persons:
        print(f"Abandonment: {abandoned}/{persons} = {abandoned / persons:.1%}", file=out)
    if engine.connect_delays:
        delays = sorted(engine.connect_delays)
        median, worst = delays[len(delays) // 2] * 1000, delays[-1] * 1000
        print(f"Answer to agent: median {median:.0f} ms, worst {worst:.0f} ms", file=out)
    if engine.errors:
        print(f"Errors: {dict(engine.errors)}", file=out)
