"""The operations collector: the adapters' own error counters, the hopper, the reloads."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from dialer.runtime.agents import AgentRegistry
from dialer.runtime.bootstrap import pbx_of
from dialer.runtime.engine import Engine
from dialer.runtime.ops_metrics import OPS_EXPORTED, HopperSampler, OpsCollector, Reloads, link_errors
from dialer.runtime.ports import AmdPolicy, CampaignPlan
from dialer.settings import parse
from tests.runtime.fakes import FakeGate, FakePbx, FixedPacer, MemoryRecord


def _adapters():
    settings = parse(
        {
            "pbx": {
                "ast": {"type": "asterisk", "secret": "x"},
                "fs": {"type": "freeswitch", "secret": "y"},
            }
        },
        env={},
    )
    return [pbx_of(table) for table in settings.pbxs]


def test_the_adapters_error_counters_are_read_where_they_keep_them() -> None:
    asterisk, freeswitch = _adapters()
    asterisk.client.stats.malformed = 3  # type: ignore[attr-defined]
    asterisk.fastagi.stats.errors = 2  # type: ignore[attr-defined]
    freeswitch.client.handler_errors = 4  # type: ignore[attr-defined]
    freeswitch.router_errors = 1  # type: ignore[attr-defined]
    ast = link_errors(asterisk)
    assert ast["malformed"] == 3 and ast["fastagi_error"] == 2
    assert {"handler_error", "action_timeout", "ping_failure", "disconnect", "fastagi_timeout"} <= set(ast)
    fs = link_errors(freeswitch)
    assert fs["handler_error"] == 4 and fs["router_error"] == 1
    assert {"action_timeout", "action_error"} <= set(fs) and "malformed" not in fs
    assert link_errors(FakePbx()) == {}


class _Campaigns:
    def __init__(self, due: dict[int, int]) -> None:
        self.due = due

    async def count_due(self, campaign_id: int, now: object) -> int:
        return self.due[campaign_id]


class _Db:
    def __init__(self, due: dict[int, int]) -> None:
        self.hopper = _Campaigns(due)


async def test_hopper_reloads_and_link_errors_are_served_with_bounded_labels() -> None:
    engine = Engine(FakePbx(), MemoryRecord(), FakeGate(), AgentRegistry(time.monotonic))
    plan = CampaignPlan("7", "spring", "PJSIP/{digits}@t", "0100000000", amd_policy=AmdPolicy.OFF)
    engine.add_campaign(plan, FixedPacer())
    hopper = HopperSampler(_Db({7: 42}), engine)  # type: ignore[arg-type]
    await hopper.refresh()
    reloads = Reloads()
    reloads.counts["partial"] += 1
    registry = CollectorRegistry()
    registry.register(OpsCollector(engine, hopper=hopper, reloads=reloads))
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(generate_latest(registry).decode())
        for s in f.samples
    }
    assert samples[("dialer_hopper_leads", (("campaign", "spring"),))] == 42
    assert samples[("dialer_config_reloads_total", (("result", "partial"),))] == 1
    assert samples[("dialer_config_reloads_total", (("result", "failed"),))] == 0
    assert {name for name, _ in samples} <= OPS_EXPORTED
