"""SIGHUP's reload on a real runtime: profiles and live keys applied, restart keys named, a bad file
changes nothing, a campaign the new profiles refuse is blocked by the gate (fail closed)."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dialer.domain.campaign import CampaignSettings, CampaignStatus, PacingMode
from dialer.runtime.bootstrap import build_runtime
from dialer.runtime.demo import DEMO_PROFILE
from dialer.runtime.ops_metrics import Reloads
from dialer.runtime.pbx_pool import Member, PbxPool
from dialer.runtime.ports import Lead
from dialer.runtime.reload import Reloader, differences
from dialer.settings import PbxSettings, Settings, SettingsError
from tests.runtime.fakes import FakePbx


def _pbx(**changes: object) -> PbxSettings:
    return replace(PbxSettings("main", "asterisk", secret="s", max_lines=60), **changes)  # type: ignore[arg-type]


def test_differences_sort_live_keys_from_restart_keys() -> None:
    old = Settings(pbxs=(_pbx(),))
    new = replace(
        old,
        tick_s=0.5,
        log_format="json",
        api_port=9000,
        database_url="postgresql+asyncpg://x/y",
        pbxs=(_pbx(max_lines=30, host="10.0.0.2"), PbxSettings("lyon", "asterisk")),
    )
    live, restart = differences(old, new)
    assert sorted(live) == ["logging.format", "pacing.tick_s", "pbx.main.max_lines"]
    assert sorted(restart) == ["api.port", "database.url", "pbx.lyon (added)", "pbx.main.host"]
    assert differences(old, old) == ([], [])


async def _runtime(tmp_path: Path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'dialer.db'}"
    profiles = tmp_path / "profiles.toml"
    profiles.write_text(DEMO_PROFILE, encoding="utf-8")
    from dialer.store.db import Database

    async with Database(url) as db:
        await db.migrate()
        record = await db.campaigns.create(
            "spring",
            CampaignSettings(
                dial_string="PJSIP/{digits}@trunk",
                caller_id="+33100000000",
                pacing_mode=PacingMode.PROGRESSIVE,
                jurisdiction="CUSTOM-DEMO",
                abandon_cap=0.03,
            ),
        )
        await db.campaigns.set_status(record.id, CampaignStatus.RUNNING)
    settings = Settings(database_url=url, node_id="reload-node", profiles_file=profiles, pbxs=(_pbx(),))
    pool = PbxPool([Member("main", FakePbx(), 60, 10.0)])
    runtime = await build_runtime(settings, pbx=pool)
    pool.attach(runtime.engine)
    assert await runtime.load_campaigns(datetime.now(UTC)) == ["spring"]
    return runtime, settings, profiles, str(record.id)


async def test_reload_applies_profiles_and_live_keys_and_names_the_restart_keys(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    runtime, settings, profiles, campaign_id = await _runtime(tmp_path)
    try:
        run = runtime.engine.campaigns[campaign_id]
        assert run.pacer.tracker.cap == 0.03
        profiles.write_text(DEMO_PROFILE.replace("abandon_rate_cap = 0.03", "abandon_rate_cap = 0.02"))
        wanted = replace(settings, tick_s=0.5, api_port=9999, pbxs=(_pbx(max_lines=25),))
        reloads = Reloads()
        configured: list[Settings] = []
        reloader = Reloader(
            runtime, settings, read=lambda: wanted, configure_logging=configured.append, reloads=reloads
        )
        with caplog.at_level(logging.INFO):
            report = await reloader.reload(datetime.now(UTC))
        assert report.result == "partial" and report.needs_restart == ["api.port"]
        assert sorted(report.applied) == ["pacing.tick_s", "pbx.main.max_lines"]
        assert run.pacer.tracker.cap == 0.02  # the campaign's cap follows its tightened profile
        assert runtime.gate.profiles.get("CUSTOM-DEMO").abandon_rate_cap == 0.02
        assert runtime.engine.tick_s == 0.5
        assert isinstance(runtime.pbx, PbxPool) and runtime.pbx.members[0].max_lines == 25
        assert configured and configured[-1].tick_s == 0.5
        assert reloader.settings.api_port == settings.api_port  # still the port it listens on
        assert "api.port changed but cannot change live" in caplog.text
        assert reloads.counts == {"partial": 1}

        # Asked again with the same file: the key that needs a restart is still named.
        assert (await reloader.reload(datetime.now(UTC))).needs_restart == ["api.port"]
    finally:
        await runtime.close()


async def test_a_bad_file_or_loosening_profiles_change_nothing(tmp_path: Path) -> None:
    runtime, settings, profiles, campaign_id = await _runtime(tmp_path)
    try:
        before = runtime.gate.profiles
        reloads = Reloads()

        def unreadable() -> Settings:
            raise SettingsError("dialer.toml: pacing.tick_s: 9.0 is outside 0.05..5 seconds")

        reloader = Reloader(
            runtime, settings, read=unreadable, configure_logging=lambda s: None, reloads=reloads
        )
        report = await reloader.reload(datetime.now(UTC))
        assert report.result == "failed" and "tick_s" in report.error
        profiles.write_text("[profiles.CUSTOM-DEMO]\nmax_attempts = 10\n")  # a custom profile missing figures
        reloader = Reloader(
            runtime, settings, read=lambda: settings, configure_logging=lambda s: None, reloads=reloads
        )
        report = await reloader.reload(datetime.now(UTC))
        assert report.result == "failed"
        assert runtime.gate.profiles is before
        assert reloads.counts == {"failed": 2}
    finally:
        await runtime.close()


async def test_a_campaign_the_new_profiles_refuse_is_blocked_by_the_gate(tmp_path: Path) -> None:
    runtime, settings, profiles, campaign_id = await _runtime(tmp_path)
    try:
        profiles.write_text(DEMO_PROFILE.replace("CUSTOM-DEMO", "CUSTOM-OTHER"))
        reloader = Reloader(runtime, settings, read=lambda: settings, configure_logging=lambda s: None)
        report = await reloader.reload(datetime.now(UTC))
        assert report.refused_campaigns == ["spring"]
        run = runtime.engine.campaigns[campaign_id]
        verdict = await runtime.gate_port.check(
            Lead("1", campaign_id, "+33612345678", timezones=("Europe/Paris",)), run.plan, datetime.now(UTC)
        )
        assert not verdict.allowed and verdict.rule == "profile"
    finally:
        await runtime.close()
