"""Several PBXs on one node: trunk limits shared by the campaigns of a PBX, a campaign on a PBX or a
group, a PBX that goes down holding only its own campaigns, its calls reconciled when it returns."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from datetime import datetime

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from dialer.runtime.agents import AgentRegistry
from dialer.runtime.bootstrap import build_runtime, pbx_of
from dialer.runtime.engine import Engine
from dialer.runtime.metrics import node_registry
from dialer.runtime.ops_metrics import OpsCollector
from dialer.runtime.pbx_pool import Member, PbxPool, pool_of
from dialer.runtime.ports import AmdPolicy, CampaignPlan, Lead
from dialer.settings import SettingsError, parse
from dialer.store.db import Database
from telephony.base import HungUp, PbxUnavailable
from tests.runtime.fakes import FakeGate, FakePbx, FixedPacer, MemoryRecord


class SwitchablePbx(FakePbx):
    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.up = True

    @property
    def connected(self) -> bool:
        return self.up


class CampaignRecord(MemoryRecord):
    async def claim_leads(self, campaign_id: str, limit: int, now: datetime) -> list[Lead]:
        mine = [lead for lead in self.leads if lead.campaign_id == campaign_id][:limit]
        self.leads = [lead for lead in self.leads if lead not in mine]
        return mine


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def plan(campaign_id: str, pbx: str) -> CampaignPlan:
    return CampaignPlan(
        campaign_id=campaign_id,
        name=f"camp-{campaign_id}",
        dial_string_template="PJSIP/{digits}@trunk",
        caller_id_number="0100000000",
        amd_policy=AmdPolicy.OFF,
        pbx_name=pbx,
    )


def leads(campaign_id: str, count: int) -> list[Lead]:
    return [
        Lead(f"{campaign_id}-{i}", campaign_id, f"+336{int(campaign_id):02d}{i:06d}") for i in range(count)
    ]


def node(
    members: list[Member], campaigns: dict[str, str], *, lines: int = 10
) -> tuple[Engine, PbxPool, CampaignRecord, Clock]:
    clock = Clock()
    pool = PbxPool(members, clock=clock)
    record = CampaignRecord([lead for cid in campaigns for lead in leads(cid, 40)])
    engine = Engine(pool, record, FakeGate(), AgentRegistry(time.monotonic))
    pool.attach(engine)
    for campaign_id, pbx in campaigns.items():
        engine.add_campaign(plan(campaign_id, pbx), FixedPacer(lines=lines))
    return engine, pool, record, clock


def placed(pbx: FakePbx) -> list[str]:
    return [r.campaign_id for r in pbx.originates]


async def test_campaigns_of_one_pbx_share_its_lines_and_other_pbxs_keep_theirs() -> None:
    paris, lyon = SwitchablePbx("paris"), SwitchablePbx("lyon")
    engine, pool, _, _ = node(
        [Member("paris", paris, max_lines=4, calls_per_second=100), Member("lyon", lyon, 6, 100)],
        {"1": "paris", "2": "paris", "3": "lyon"},
    )
    await engine.tick()
    assert len(paris.originates) == 4  # both campaigns of paris together, never more than its trunk
    assert set(placed(paris)) <= {"1", "2"}
    assert placed(lyon) == ["3"] * 6
    assert [m.lines_in_use for m in pool.members] == [4, 6]
    await engine.tick()
    assert len(paris.originates) == 4 and len(lyon.originates) == 6  # full: nothing more

    # A call ending on the PBX frees its line for either campaign of the PBX.
    await pool.start()
    try:
        paris.queue.put_nowait(HungUp(paris.originates[0].attempt_id, time.time(), cause=16))
        for _ in range(50):
            if pool.members[0].lines_in_use == 3:
                break
            await asyncio.sleep(0.01)
        assert pool.members[0].lines_in_use == 3
        await engine.tick()
        assert len(paris.originates) == 5
    finally:
        await pool.stop()


async def test_calls_per_second_limit_spreads_the_dials_over_time() -> None:
    paris = SwitchablePbx("paris")
    engine, _, _, clock = node([Member("paris", paris, max_lines=50, calls_per_second=2)], {"1": "paris"})
    await engine.tick()
    assert len(paris.originates) == 2
    await engine.tick()
    assert len(paris.originates) == 2  # no time passed: no new budget
    clock.now += 1.0
    await engine.tick()
    assert len(paris.originates) == 4


async def test_a_campaign_naming_a_group_dials_on_the_group_pbx_with_most_free_lines() -> None:
    a, b, other = SwitchablePbx("paris-1"), SwitchablePbx("paris-2"), SwitchablePbx("lyon")
    engine, pool, _, _ = node(
        [
            Member("paris-1", a, 2, 100, ("paris",)),
            Member("paris-2", b, 5, 100, ("paris",)),
            Member("lyon", other, 5, 100),
        ],
        {"1": "paris"},
    )
    assert [m.name for m in pool.members_for("paris")] == ["paris-1", "paris-2"]
    await engine.tick()
    assert len(a.originates) + len(b.originates) == 7 and other.originates == []
    assert len(a.originates) == 2 and len(b.originates) == 5


async def test_a_pbx_down_holds_only_its_own_campaigns() -> None:
    paris, lyon = SwitchablePbx("paris"), SwitchablePbx("lyon")
    engine, pool, _, _ = node(
        [Member("paris", paris, 10, 100), Member("lyon", lyon, 10, 100)], {"1": "paris", "2": "lyon"}, lines=2
    )
    paris.up = False
    await engine.tick()
    assert paris.originates == [] and len(lyon.originates) == 2
    registry = node_registry(engine, process_wide=False)
    registry.register(OpsCollector(engine))
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(generate_latest(registry).decode())
        for s in f.samples
    }
    assert samples[("dialer_pbx_up", (("pbx", "paris"),))] == 0
    assert samples[("dialer_pbx_up", (("pbx", "lyon"),))] == 1
    assert samples[("dialer_campaign_pbx_down", (("campaign", "camp-1"),))] == 1
    assert samples[("dialer_campaign_pbx_down", (("campaign", "camp-2"),))] == 0
    assert samples[("dialer_pbx_lines_in_use", (("pbx", "lyon"),))] == 2
    assert samples[("dialer_calls_in_flight", (("pbx", "lyon"), ("state", "dialing")))] == 2
    assert samples[("dialer_pbx_roundtrip_seconds_count", (("pbx", "lyon"),))] == 2
    paris.up = True
    await engine.tick()
    assert len(paris.originates) == 2


async def test_calls_gone_while_a_pbx_was_down_are_closed_lost_when_it_returns() -> None:
    paris = SwitchablePbx("paris")
    engine, pool, record, _ = node([Member("paris", paris, 10, 100)], {"1": "paris"}, lines=3)
    await pool.start()
    consumer = asyncio.get_running_loop().create_task(engine.consume())
    try:
        await engine.tick()
        kept, gone, also_gone = (r.attempt_id for r in paris.originates)
        paris.up = False
        await pool.check_links()
        assert await engine.tick() == 0
        paris.live = {kept}  # the PBX still has this call after the reconnect
        paris.up = True
        await pool.check_links(reconcile_after_s=0)
        for _ in range(50):
            if record.attempts[gone]["result"] and record.attempts[also_gone]["result"]:
                break
            await asyncio.sleep(0.01)
        for attempt in (gone, also_gone):
            result = record.attempts[attempt]["result"]
            assert result is not None and result.outcome == "lost", attempt
            assert "when its link came back" in result.detail
        assert record.attempts[kept]["result"] is None and kept in engine.calls
        assert pool.members[0].attempts == {kept}
    finally:
        consumer.cancel()
        await pool.stop()


async def test_actions_go_to_the_pbx_that_placed_the_call_and_a_full_trunk_refuses() -> None:
    paris, lyon = SwitchablePbx("paris"), SwitchablePbx("lyon")
    engine, pool, _, _ = node(
        [Member("paris", paris, 1, 100), Member("lyon", lyon, 1, 100)], {"1": "paris", "2": "lyon"}, lines=1
    )
    await engine.tick()
    on_lyon = lyon.originates[0].attempt_id
    await pool.hangup(on_lyon)
    await pool.play_then_hangup(on_lyon, "dialer-identification")
    await pool.connect_to_agent(on_lyon, "7")
    assert lyon.hangups == [on_lyon] and lyon.connects == [(on_lyon, "7")] and paris.hangups == []
    assert pool.pbx_of_attempt(on_lyon) == "lyon"
    request = paris.originates[0]
    with pytest.raises(PbxUnavailable, match="no free line"):
        await pool.originate(request)


def test_settings_take_several_pbxs_and_groups_and_a_campaign_may_name_a_group() -> None:
    toml = {
        "pbx": {
            "paris-1": {"type": "asterisk", "secret": "x", "group": "paris", "max_lines": 30},
            "paris-2": {"type": "freeswitch", "secret": "y", "group": "paris", "max_calls_per_second": 4.0},
            "lyon": {"type": "asterisk", "secret": "z", "port": 5039},
        }
    }
    settings = parse(toml, env={})
    assert settings.pbx_names == ("paris-1", "paris-2", "lyon")
    assert settings.pbx_problem("paris") is None and settings.pbx_problem("lyon") is None
    problem = settings.pbx_problem("nice")
    assert problem is not None and "groups: paris" in problem
    pool = pool_of(settings.pbxs, pbx_of)
    assert [(m.name, m.max_lines, m.calls_per_second, m.groups) for m in pool.members] == [
        ("paris-1", 30, 10.0, ("paris",)),
        ("paris-2", 100, 4.0, ("paris",)),
        ("lyon", 100, 10.0, ()),
    ]
    with pytest.raises(SettingsError, match="group 'lyon' is also the name"):
        parse({"pbx": {**toml["pbx"], "x": {"type": "asterisk", "secret": "s", "group": "lyon"}}}, env={})


async def test_a_campaigns_pacer_is_limited_by_the_trunks_it_may_use(tmp_path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'dialer.db'}"
    async with Database(url) as db:
        await db.migrate()
    settings = replace(
        parse(
            {
                "pbx": {
                    "paris-1": {"type": "asterisk", "secret": "x", "group": "paris", "max_lines": 30},
                    "paris-2": {
                        "type": "asterisk",
                        "secret": "y",
                        "group": "paris",
                        "max_calls_per_second": 4.0,
                    },
                    "lyon": {"type": "asterisk", "secret": "z", "max_lines": 8, "max_calls_per_second": 2.0},
                }
            },
            env={},
        ),
        database_url=url,
    )
    runtime = await build_runtime(settings, pbx=FakePbx())
    try:
        paris, lyon, default = (runtime.limits_for(n) for n in ("paris", "lyon", "default"))
        assert (paris.max_lines, paris.calls_per_second) == (130, 14.0)
        assert (lyon.max_lines, lyon.calls_per_second) == (8, 2.0)
        assert (default.max_lines, default.calls_per_second) == (30, 10.0)  # the first table
    finally:
        await runtime.close()


async def test_a_call_the_engine_closed_without_a_last_event_frees_its_line() -> None:
    paris = SwitchablePbx("paris")
    engine, pool, _, _ = node([Member("paris", paris, 2, 100)], {"1": "paris"}, lines=5)
    await engine.tick()
    assert len(paris.originates) == 2 and pool.members[0].lines_in_use == 2
    del engine.calls[paris.originates[0].attempt_id]  # closed by the engine, no HungUp from the PBX
    await engine.tick()
    assert len(paris.originates) == 3 and pool.members[0].lines_in_use == 2


class SoundsPbx(SwitchablePbx):
    def __init__(self, name: str, has: bool | None) -> None:
        super().__init__(name)
        self.has = has

    async def has_sound(self, name: str) -> bool | None:
        return self.has


async def test_only_the_pbxs_a_campaign_dials_on_are_asked_for_its_sounds() -> None:
    pool = PbxPool(
        [
            Member("paris", SoundsPbx("paris", False), 5, 5),
            Member("lyon", SoundsPbx("lyon", True), 5, 5, ("south",)),
            Member("nice", SoundsPbx("nice", None), 5, 5, ("south",)),
        ]
    )
    assert await pool.sounds_of("lyon").has_sound("dialer-identification") is True
    assert await pool.sounds_of("paris").has_sound("dialer-identification") is False
    assert await pool.sounds_of("south").has_sound("dialer-identification") is None  # nice cannot tell
    assert await pool.has_sound("dialer-identification") is False
