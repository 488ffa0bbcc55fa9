"""The node's Prometheus metrics: read from the engine at scrape time, served over HTTP, and the
dashboard and alert rules naming only what the node exports."""

from __future__ import annotations

import asyncio
import re
import socket
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from dialer.domain.agent import AgentState
from dialer.domain.call import CallInput
from dialer.runtime.agents import AgentRegistry
from dialer.runtime.bootstrap import build_runtime
from dialer.runtime.engine import Engine
from dialer.runtime.metrics import EXPORTED, node_registry
from dialer.runtime.ports import AmdPolicy, CampaignPlan, Lead
from dialer.runtime.services import start_services
from dialer.settings import Settings
from dialer.store.db import Database
from telephony.base import (
    AmdResult,
    Answered,
    AnsweredCall,
    Connected,
    ConnectToAgent,
    Failed,
    HungUp,
    Outcome,
    PlayMessageThenHangup,
    Ringing,
)
from tests.runtime.fakes import FakeGate, FakePbx, FixedPacer, MemoryRecord

PLAN = CampaignPlan(
    campaign_id="c1",
    name="spring",
    dial_string_template="PJSIP/{digits}@trunk",
    caller_id_number="0100000000",
    answer_to_agent_limit_s=0.05,
    wrap_up_limit_s=30.0,
    amd_policy=AmdPolicy.HANGUP,
)


class TrackingPacer(FixedPacer):
    """FixedPacer whose tracker counts the persons the engine reports, as every real pacer's does."""

    def observe_person_handled(self, call_id: object, at: float, abandoned: bool) -> None:
        super().observe_person_handled(call_id, at, abandoned)
        self.tracker.record(at, True, abandoned)


class DownPbx(FakePbx):
    connected = False  # type: ignore[assignment]


def lead(n: int) -> Lead:
    return Lead(f"L{n}", "c1", f"+3361234{n:04d}")


def scrape(registry) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Sample name -> {sorted labels: value}, through prometheus-client's own text parser."""
    text = generate_latest(registry).decode()
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def value(samples, name: str, **labels: str) -> float:
    return samples[name][tuple(sorted(labels.items()))]


async def run_small_campaign():
    """Two ticks: one lead blocked, a connected call, a busy one, an abandoned one, one still ringing."""
    pbx, gate, pacer = FakePbx(), FakeGate(), TrackingPacer(lines=3)
    record = MemoryRecord([lead(i) for i in range(5)])
    gate.block[lead(0).number] = "dnc"
    agents = AgentRegistry(time.monotonic)
    engine = Engine(pbx, record, gate, agents)
    engine.add_campaign(PLAN, pacer)
    registry = node_registry(engine, agents, process_wide=False)  # listens for connects from now on
    agents.login("1001", ["c1"])
    agents.ready("1001")
    agents.login("1002", ["c1"])  # logged in, paused

    assert await engine.tick() == 2  # L0 blocked, L1 and L2 dialed
    connected, busy = (r.attempt_id for r in pbx.originates)
    await engine.handle(Answered(connected, time.time()))
    decision = await engine.on_answered(AnsweredCall(connected, time.time(), amd=AmdResult.PERSON))
    assert decision == ConnectToAgent("1001")
    await engine.handle(Connected(connected, time.time(), "1001"))
    await engine.handle(HungUp(connected, time.time(), cause=16))
    await engine.dispose("1001", connected, "sale")
    await engine.handle(Ringing(busy, time.time()))
    await engine.handle(Failed(busy, time.time(), outcome=Outcome.BUSY, cause=17))

    agents.pause("1001")
    assert await engine.tick() == 2  # L3 and L4
    abandoned, ringing = (r.attempt_id for r in pbx.originates[2:])
    await engine.handle(Answered(abandoned, time.time()))
    decision = await engine.on_answered(AnsweredCall(abandoned, time.time(), amd=AmdResult.PERSON))
    assert isinstance(decision, PlayMessageThenHangup)
    await engine.handle(HungUp(abandoned, time.time(), cause=16))
    await engine.handle(Ringing(ringing, time.time()))
    engine._advance(engine.calls[ringing], CallInput.CONNECTED)  # a refused call transition (not bridged)
    agents.ready("1001")
    agents.ready("nobody")  # not logged in: a refused agent transition
    await asyncio.sleep(0)  # the writes queued after the answer decisions
    return engine, agents, record, pacer, registry


async def test_scrape_reports_the_engines_own_counts():
    engine, agents, record, pacer, registry = await run_small_campaign()
    samples = scrape(registry)

    closed = Counter(row["result"].outcome for row in record.attempts.values() if row["result"] is not None)
    assert closed == Counter({"connected": 1, "busy": 1, "abandoned": 1})
    run = engine.campaigns["c1"]
    for outcome, count in closed.items():
        assert value(samples, "dialer_calls_total", campaign="spring", outcome=outcome) == count
        assert run.counts[outcome] == count
    assert len(samples["dialer_calls_total"]) == 3
    assert (
        value(samples, "dialer_gate_blocked_total", campaign="spring", rule="dnc")
        == 1
        == engine.blocked["dnc"]
    )

    in_flight = {dict(k)["state"]: v for k, v in samples["dialer_calls_in_flight"].items()}
    assert in_flight["ringing"] == 1 and sum(in_flight.values()) == len(engine.calls) == 1
    assert {dict(k)["pbx"] for k in samples["dialer_calls_in_flight"]} == {"fake"}
    assert value(samples, "dialer_pbx_up", pbx="fake") == 1

    assert value(samples, "dialer_agents", state="ready") == 1
    assert value(samples, "dialer_agents", state="paused") == 1
    assert value(samples, "dialer_agents", state="on_call") == 0
    assert value(samples, "dialer_dial_level", campaign="spring") == 1.0  # one line ringing, one agent ready
    assert value(samples, "dialer_campaign_running", campaign="spring") == 1

    now = time.time()
    assert value(samples, "dialer_abandonment_ratio", campaign="spring") == pytest.approx(0.5)
    assert pacer.tracker.rate(now) == pytest.approx(0.5)
    assert value(samples, "dialer_abandonment_cap_ratio", campaign="spring") == pacer.tracker.cap
    assert value(samples, "dialer_abandonment_window_seconds", campaign="spring") == pacer.tracker.window_s

    assert value(samples, "dialer_answer_to_agent_seconds_count") == len(engine.connect_delays) == 1
    assert value(samples, "dialer_answer_to_agent_seconds_sum") == pytest.approx(sum(engine.connect_delays))
    assert value(samples, "dialer_answer_to_agent_seconds_bucket", le="+Inf") == 1

    assert engine.errors["transition"] >= 1
    errors = {dict(k)["kind"]: v for k, v in samples["dialer_engine_errors_total"].items()}
    assert errors == dict(engine.errors)
    refused = {dict(k)["input"]: v for k, v in samples["dialer_agent_transitions_refused_total"].items()}
    assert refused == dict(agents.refused) and refused["ready"] >= 1


async def test_each_connect_delay_is_observed_once_across_scrapes():
    engine, *_, registry = await run_small_campaign()
    first = scrape(registry)
    second = scrape(registry)
    assert value(first, "dialer_answer_to_agent_seconds_count") == 1
    assert value(second, "dialer_answer_to_agent_seconds_count") == 1


async def test_labels_carry_no_number_nor_lead_or_attempt_id_and_names_follow_the_conventions():
    engine, agents, record, _, registry = await run_small_campaign()
    numbers = {row["lead"].number for row in record.attempts.values()} | {lead(0).number}
    ids = {row["lead"].lead_id for row in record.attempts.values()} | set(record.attempts)
    text = generate_latest(registry).decode()
    families = list(text_string_to_metric_families(text))
    assert families
    for family in families:
        assert family.name.startswith("dialer_")
        for sample in family.samples:
            assert sample.name in EXPORTED
            if family.type == "counter":
                assert sample.name.endswith(("_total", "_created"))
            for label_value in sample.labels.values():
                assert not re.search(r"\d{6,}", label_value), (sample.name, label_value)
                assert label_value not in numbers and label_value not in ids
    for number in numbers:
        assert number not in text and number.lstrip("+") not in text


async def test_a_paused_campaign_and_a_down_pbx_show():
    engine, agents, _, _, registry = await run_small_campaign()
    engine.pause_campaign("c1")
    engine.pbx = DownPbx()
    samples = scrape(registry)
    assert value(samples, "dialer_campaign_running", campaign="spring") == 0
    assert value(samples, "dialer_pbx_up", pbx="fake") == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def migrated(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'dialer.db'}"
    async with Database(url) as db:
        await db.migrate()
    return url


async def test_start_services_serves_the_metrics_on_the_api_and_on_the_metrics_port(tmp_path):
    url = await migrated(tmp_path)
    runtime = await build_runtime(Settings(database_url=url, node_id="metrics-node"), pbx=FakePbx())
    stop = asyncio.Event()
    services = None
    try:
        api_port, metrics_port = _free_port(), _free_port()
        services = await start_services(
            runtime, stop, host="127.0.0.1", port=api_port, metrics=("127.0.0.1", metrics_port)
        )
        assert services.metrics_url == f"http://127.0.0.1:{metrics_port}/metrics"
        runtime.agents.login("7", ["1"])
        runtime.agents.ready("7")
        async with httpx.AsyncClient(timeout=10.0) as client:
            for where in (services.metrics_url, f"http://127.0.0.1:{api_port}/metrics"):
                reply = await client.get(where)
                assert reply.status_code == 200, where
                assert reply.headers["content-type"].startswith("text/plain")
                families = {f.name: f for f in text_string_to_metric_families(reply.text)}
                assert families["dialer_pbx_up"].samples[0].value == 1
                ready = [s for s in families["dialer_agents"].samples if s.labels["state"] == "ready"]
                assert ready[0].value == 1
                # The process-wide compliance counter is served beside the node's metrics.
                assert "dialer_compliance_decisions" in families
                assert families["dialer_outbox_failed_passes"].samples[0].value == 0
    finally:
        stop.set()
        if services is not None:
            await services.stop()
        await runtime.close()


async def test_a_metrics_port_in_use_stops_the_start_with_the_section_to_change(tmp_path):
    url = await migrated(tmp_path)
    runtime = await build_runtime(Settings(database_url=url, node_id="metrics-node"), pbx=FakePbx())
    stop = asyncio.Event()
    try:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            with pytest.raises(OSError, match=r"\[metrics\] bind/port"):
                await start_services(
                    runtime, stop, host="127.0.0.1", port=_free_port(), metrics=("127.0.0.1", port)
                )
    finally:
        stop.set()
        await asyncio.sleep(0)
        await runtime.close()


def test_agent_states_shown_are_the_registrys():
    engine = Engine(FakePbx(), MemoryRecord(), FakeGate(), AgentRegistry(time.monotonic))
    samples = scrape(node_registry(engine, process_wide=False))
    shown = {dict(k)["state"] for k in samples["dialer_agents"]}
    assert shown == {s.value for s in AgentState} - {"logged_out"}
