"""The bootstrap's adapters on a real database (SQLite and PostgreSQL) and the real gate."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from dialer.domain.campaign import CampaignSettings, CampaignStatus, LeadStatus, PacingMode
from dialer.runtime.bootstrap import build_runtime, pacer_of, plan_of, rules_of
from dialer.runtime.demo import DEMO_PROFILE
from dialer.runtime.ports import AttemptResult, GateVerdict
from dialer.settings import Settings
from dialer.store.repositories import NewLead
from tests.runtime.fakes import FakePbx


async def _campaign(db, name="boot"):
    record = await db.campaigns.create(
        name,
        CampaignSettings(
            dial_string="PJSIP/{digits}@trunk",
            caller_id="+33100000000",
            pacing_mode=PacingMode.PREDICTIVE,
            jurisdiction="CUSTOM-DEMO",
        ),
    )
    return await db.campaigns.set_status(record.id, CampaignStatus.RUNNING)


async def _leads(db, campaign_id, numbers):
    list_id = await db.leads.create_list(campaign_id, "l", "test", "FR")
    await db.leads.add(
        campaign_id,
        list_id,
        [NewLead(phone=n, timezones=("Europe/Paris",)) for n in numbers],
        now=datetime.now(UTC) - timedelta(minutes=1),
    )


async def _runtime(database_url, tmp_path):
    profiles = tmp_path / "profiles.toml"
    profiles.write_text(DEMO_PROFILE)
    return await build_runtime(
        Settings(database_url=database_url, node_id="n1"), pbx=FakePbx(), profile_files=(profiles,)
    )


async def test_abandonment_history_of_the_window_survives_a_restart(db, database_url, tmp_path):
    campaign = await _campaign(db)
    await _leads(db, campaign.id, [f"+3361234{i:04d}" for i in range(4)])
    runtime = await _runtime(database_url, tmp_path)
    try:
        now = datetime.now(UTC)
        claimed = await runtime.engine.record.claim_leads(str(campaign.id), 4, now)
        for i, lead in enumerate(claimed):
            attempt = await runtime.engine.record.open_attempt(lead, now)
            await runtime.engine.record.attempt_event(attempt, "answered", now)
            result = AttemptResult(
                "abandoned" if i == 0 else "machine" if i == 3 else "connected" if i == 1 else "dropped",
                now,
                abandoned=i == 0,
                person_answered=i != 3,
            )
            assert await runtime.engine.record.close_attempt(attempt, result)
            assert not await runtime.engine.record.close_attempt(attempt, result)  # idempotent
        pacer = await pacer_of(runtime.db, runtime.gate, campaign, runtime.limits, now + timedelta(seconds=1))
        answered, abandoned = pacer.tracker.counts(time.time())
        assert abandoned == 1 and answered == 3
    finally:
        await runtime.close()


async def test_lead_blocked_for_good_leaves_the_list_and_a_window_block_is_postponed(
    db, database_url, tmp_path
):
    campaign = await _campaign(db)
    await _leads(db, campaign.id, ["+33612340001", "+33612340002"])
    runtime = await _runtime(database_url, tmp_path)
    try:
        now = datetime.now(UTC)
        first, second = await runtime.engine.record.claim_leads(str(campaign.id), 2, now)
        await runtime.engine.record.release_lead(first, GateVerdict(False, "dnc", "on the list"), now)
        later = now + timedelta(hours=3)
        await runtime.engine.record.release_lead(
            second, GateVerdict(False, "calling_window", "closed", later), now
        )
        a = await runtime.db.leads.get(int(first.lead_id))
        b = await runtime.db.leads.get(int(second.lead_id))
        assert a.status is LeadStatus.DO_NOT_CALL
        assert b.status is LeadStatus.NEW and b.next_attempt_at >= later - timedelta(seconds=1)
        assert await runtime.engine.record.claim_leads(str(campaign.id), 2, now) == []
    finally:
        await runtime.close()


# -- a campaign this node cannot dial is refused alone; the others dial ----------------------------


async def test_a_campaign_with_an_unknown_profile_is_refused_and_the_others_dial(db, database_url, tmp_path):
    good = await _campaign(db, "good")
    bad = await db.campaigns.create(
        "bad",
        CampaignSettings(dial_string="PJSIP/{digits}@trunk", caller_id="+33100000000", jurisdiction="XX"),
    )
    await db.campaigns.set_status(bad.id, CampaignStatus.RUNNING)
    runtime = await _runtime(database_url, tmp_path)
    try:
        names = await runtime.load_campaigns(datetime.now(UTC))
        assert names == ["good"] and str(good.id) in runtime.engine.campaigns
        assert str(bad.id) not in runtime.engine.campaigns
        refused = await runtime.db.campaigns.get(bad.id)
        assert refused.status is CampaignStatus.PAUSED
        when, node, reason = await runtime.db.campaigns.refusal(bad.id)
        assert node == "n1" and "no compliance profile 'XX'" in reason
        assert await runtime.load_campaigns(datetime.now(UTC)) == []  # not retried every refresh
    finally:
        await runtime.close()


async def test_a_campaign_naming_a_pbx_the_node_lacks_is_refused_at_start(db, database_url, tmp_path):
    from dataclasses import replace

    from dialer.settings import PbxSettings

    await _campaign(db, "on-main")
    other = await db.campaigns.create(
        "on-b",
        CampaignSettings(
            dial_string="PJSIP/{digits}@trunk", caller_id="+33100000000", jurisdiction="CUSTOM-DEMO", pbx="b"
        ),
    )
    await db.campaigns.set_status(other.id, CampaignStatus.RUNNING)
    runtime = await _runtime(database_url, tmp_path)
    runtime.settings = replace(runtime.settings, pbxs=(PbxSettings("main", "asterisk", secret="x"),))
    try:
        assert await runtime.load_campaigns(datetime.now(UTC)) == ["on-main"]
        _, _, reason = await runtime.db.campaigns.refusal(other.id)
        assert "PBX 'b' is not configured" in reason and "configured: main" in reason
    finally:
        await runtime.close()


# -- the daemon hashes numbers with the configured key, like the CLI --------------------------------


async def test_the_daemon_uses_the_number_hash_key_of_the_environment(db, database_url, tmp_path):
    from dialer.compliance.history import NumberKeyer
    from dialer.settings import parse

    settings = parse(
        {"database": {"url": database_url}},
        env={"DIALER_NUMBER_HASH_KEY": "k3y-of-the-site-0123456789"},
    )
    profiles = tmp_path / "profiles.toml"
    profiles.write_text(DEMO_PROFILE)
    runtime = await build_runtime(settings, pbx=FakePbx(), profile_files=(profiles,))
    try:
        number = "+33612345678"
        assert runtime.gate.keyer(number) == NumberKeyer(b"k3y-of-the-site-0123456789")(number)
    finally:
        await runtime.close()


# -- Redis killed mid-run: a committed disposition is not a failure, the agent is not stuck ----------


async def test_redis_dying_mid_run_neither_fails_a_committed_disposition_nor_strands_the_agent(
    db, database_url, tmp_path, redis_url, redis_namespace
):
    from redis.asyncio import Redis

    from dialer.domain.agent import AgentState
    from dialer.runtime.ports import Lead

    campaign = await _campaign(db)
    await _leads(db, campaign.id, ["+33612340007"])
    profiles = tmp_path / "profiles.toml"
    profiles.write_text(DEMO_PROFILE)
    settings = Settings(
        database_url=database_url, node_id="n1", redis_url=redis_url, redis_namespace=redis_namespace
    )
    runtime = await build_runtime(settings, pbx=FakePbx(), profile_files=(profiles,))
    dead = Redis.from_url("redis://127.0.0.1:1", socket_connect_timeout=0.2)
    history, index = runtime.gate.history, runtime.gate.dnc.redis_index
    live = history.redis
    try:
        assert runtime.leases is not None  # with Redis, attempts are written under the campaign's lease
        await runtime.leases.refresh([str(campaign.id)])
        now = datetime.now(UTC)
        [lead] = await runtime.engine.record.claim_leads(str(campaign.id), 1, now)
        attempt = await runtime.engine.record.open_attempt(lead, now)
        await runtime.db.attempts.record_event(attempt, "connected", now, agent_id="a1")
        await runtime.db.attempts.close_attempt(attempt, "connected", 16, "person", now)
        runtime.agents.login("a1", [str(campaign.id)])
        runtime.agents.ready("a1")
        assert runtime.agents.reserve(str(campaign.id)) == "a1"
        runtime.agents.connected("a1")
        runtime.agents.call_ended("a1")
        assert runtime.agents.state_of("a1") is AgentState.WRAP_UP

        history.redis = dead  # Redis is killed
        index.redis = dead
        await runtime.engine.dispose("a1", attempt, "do_not_call")  # does not raise
        assert runtime.agents.state_of("a1") is AgentState.READY
        assert runtime.engine.errors == {} or "dispose" not in str(runtime.engine.errors)
        await runtime.relay.deliver_pending()  # the node's relay carries it from the outbox to the gate
        listed = await runtime.gate.dnc.check(lead.number)
        assert [h.source for h in listed] == ["agent"]  # the database has it
        plan = plan_of(await runtime.db.campaigns.get(campaign.id))
        runtime.gate_port.rules[str(campaign.id)] = rules_of(
            (await runtime.db.campaigns.get(campaign.id)).settings
        )
        verdict = await runtime.gate_port.check(Lead("x", str(campaign.id), "+33612340008"), plan, now)
        assert not verdict.allowed and "Redis is down" in verdict.reason

        history.redis = live  # Redis is back: the history is copied into it again
        index.redis = live
        assert await runtime.gate_port.resync_history()
        events = await history.events(runtime.gate.keyer(lead.number), lead.lead_id, now - timedelta(days=1))
        assert [e.kind for e in events if e.kind == "refusal"] == ["refusal"]
    finally:
        await dead.aclose()
        await runtime.close()


async def test_a_refusal_committed_by_a_node_that_dies_before_the_gate_hears_it_blocks_the_number(
    db, database_url, tmp_path, redis_url, redis_namespace
):
    """The disposition and its outbox message are one commit; the next node's relay delivers it."""
    from dialer.runtime.ports import DispositionDetails, Lead

    campaign = await _campaign(db)
    number = "+33612340042"
    await _leads(db, campaign.id, [number])
    profiles = tmp_path / "profiles.toml"
    profiles.write_text(DEMO_PROFILE)

    def settings(node: str) -> Settings:
        return Settings(
            database_url=database_url, node_id=node, redis_url=redis_url, redis_namespace=redis_namespace
        )

    first = await build_runtime(settings("n1"), pbx=FakePbx(), profile_files=(profiles,))
    try:
        assert first.leases is not None  # with Redis, attempts are written under the campaign's lease
        await first.leases.refresh([str(campaign.id)])
        now = datetime.now(UTC)
        [lead] = await first.engine.record.claim_leads(str(campaign.id), 1, now)
        attempt = await first.engine.record.open_attempt(lead, now)
        await first.db.attempts.record_event(attempt, "connected", now, agent_id="a1")
        await first.db.attempts.close_attempt(attempt, "connected", 16, "person", now)
        # No relay task runs on this node: it is killed right after the disposition's commit.
        await first.engine.record.dispose(attempt, "a1", "do_not_call", now, DispositionDetails())
    finally:
        await first.close()

    second = await build_runtime(settings("n2"), pbx=FakePbx(), profile_files=(profiles,))
    try:
        plan = plan_of(await second.db.campaigns.get(campaign.id))
        rules = rules_of((await second.db.campaigns.get(campaign.id)).settings)
        second.gate_port.rules[str(campaign.id)] = rules
        assert await second.relay.deliver_pending() == 1
        assert await second.relay.deliver_pending() == 0  # delivered once, acknowledged
        verdict = await second.gate_port.check(Lead("x", str(campaign.id), number), plan, datetime.now(UTC))
        assert not verdict.allowed and verdict.rule == "dnc", verdict
    finally:
        await second.close()
