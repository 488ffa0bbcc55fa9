"""A campaign whose identification message is not on the PBX is not dialed; where the PBX cannot
be asked, the daemon says which file must be where."""

from __future__ import annotations

import logging
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from dialer.domain.campaign import CampaignSettings
from dialer.runtime.prompts import prompt_problem
from telephony.asterisk.adapter import AsteriskPbx
from telephony.asterisk.settings import AsteriskSettings
from telephony.freeswitch.adapter import FreeSwitchPbx, FreeSwitchSettings
from telephony.sim.freeswitch import SOUNDS_DIR, FreeSwitchSimulator
from tests.runtime.fakes import FakePbx

SHIPPED = Path(__file__).resolve().parents[2] / "config" / "sounds"


def campaign(**changes: object) -> CampaignSettings:
    values: dict[str, object] = {"dial_string": "PJSIP/{number}@trunk", "caller_id": "+33123456789"}
    values.update(changes)
    return CampaignSettings.from_dict(values)


@pytest.fixture
async def freeswitch() -> AsyncIterator[tuple[FreeSwitchSimulator, FreeSwitchPbx]]:
    sim = FreeSwitchSimulator()
    await sim.start()
    pbx = FreeSwitchPbx(FreeSwitchSettings(port=sim.port, password=sim.password))
    await pbx.start()
    try:
        yield sim, pbx
    finally:
        await pbx.stop()
        await sim.stop()


async def test_freeswitch_is_asked_with_file_exists_where_playback_looks(
    freeswitch: tuple[FreeSwitchSimulator, FreeSwitchPbx],
) -> None:
    sim, pbx = freeswitch
    # the shipped prompt, installed under the vanilla sound_prefix
    assert await pbx.has_sound("dialer-identification") is True
    assert await pbx.has_sound("acme-id") is False
    sim.files.add("/opt/prompts/acme-id.wav")
    assert await pbx.has_sound("/opt/prompts/acme-id") is True
    # no sound_prefix: playback looks under sounds_dir
    del sim.global_vars["sound_prefix"]
    sim.files.add(f"{SOUNDS_DIR}/acme-id.wav")
    assert await pbx.has_sound("acme-id") is True
    assert await pbx.has_sound("../etc/passwd") is False


async def test_campaign_whose_message_freeswitch_lacks_is_refused(
    freeswitch: tuple[FreeSwitchSimulator, FreeSwitchPbx],
) -> None:
    _, pbx = freeswitch
    assert await prompt_problem(pbx, campaign(), "spring") is None
    problem = await prompt_problem(pbx, campaign(identification_message="acme-id"), "spring")
    assert problem is not None and "identification message 'acme-id'" in problem
    assert "sound_prefix" in problem  # says where it must go


async def test_machine_message_is_checked_only_when_it_is_played(
    freeswitch: tuple[FreeSwitchSimulator, FreeSwitchPbx],
) -> None:
    _, pbx = freeswitch
    assert await prompt_problem(pbx, campaign(machine_message="acme-vm"), "spring") is None
    leave = campaign(amd_policy="leave_message", machine_message="acme-vm", identification_message="acme-id")
    problem = await prompt_problem(pbx, leave, "spring")
    assert problem is not None
    assert "identification message 'acme-id' and no machine message 'acme-vm'" in problem


def asterisk(sounds_dir: str = "") -> AsteriskPbx:
    return AsteriskPbx(AsteriskSettings(secret="s", sounds_dir=sounds_dir))


async def test_asterisk_on_this_host_is_checked_in_its_sounds_dir(tmp_path: Path) -> None:
    pbx = asterisk(str(tmp_path))
    assert await pbx.has_sound("dialer-identification") is False
    assert await prompt_problem(pbx, campaign(), "spring") is not None
    shutil.copy(SHIPPED / "en" / "dialer-identification.wav", tmp_path)
    assert await pbx.has_sound("dialer-identification") is True
    assert await prompt_problem(pbx, campaign(), "spring") is None
    (tmp_path / "custom").mkdir()
    (tmp_path / "custom" / "acme-id.gsm").write_bytes(b"\0" * 33)
    assert await pbx.has_sound("custom/acme-id") is True
    assert await pbx.has_sound(str(tmp_path / "custom" / "acme-id")) is True


async def test_where_the_pbx_cannot_be_asked_the_file_is_named_in_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "dialer.runtime.prompts")
    for pbx in (asterisk(), FakePbx()):
        caplog.clear()
        assert await prompt_problem(pbx, campaign(), "spring") is None
        (record,) = caplog.records
        assert record.levelno == logging.WARNING
        text = record.getMessage()
        assert "CANNOT CHECK" in text and "'dialer-identification'" in text and "campaign spring" in text
        assert "/var/lib/asterisk/sounds/en/" in text


def test_shipped_prompts_are_short_8khz_16bit_mono_wav() -> None:
    import wave

    files = sorted(SHIPPED.glob("*/dialer-identification.wav"))
    assert [f.parent.name for f in files] == ["en", "fr"]
    for path in files:
        with wave.open(str(path)) as w:
            assert (w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getcomptype()) == (
                1,
                2,
                8000,
                "NONE",
            )
            assert 2.0 < w.getnframes() / w.getframerate() < 8.0
        assert path.with_suffix(".txt").is_file()  # the text it is made from (scripts/make-prompts)


async def test_daemon_refuses_a_running_campaign_whose_message_the_pbx_lacks(
    db, database_url: str, tmp_path: Path, freeswitch: tuple[FreeSwitchSimulator, FreeSwitchPbx]
) -> None:
    from dialer.domain.campaign import CampaignStatus
    from dialer.runtime.bootstrap import build_runtime
    from dialer.runtime.demo import DEMO_PROFILE
    from dialer.settings import Settings

    _, pbx = freeswitch
    ids = {}
    for name, message in (("shipped", "dialer-identification"), ("acme", "acme-id")):
        record = await db.campaigns.create(
            name, campaign(jurisdiction="CUSTOM-DEMO", identification_message=message)
        )
        ids[name] = (await db.campaigns.set_status(record.id, CampaignStatus.RUNNING)).id
    profiles = tmp_path / "profiles.toml"
    profiles.write_text(DEMO_PROFILE)
    runtime = await build_runtime(
        Settings(database_url=database_url, node_id="n1"), pbx=pbx, profile_files=(profiles,)
    )
    try:
        from datetime import UTC, datetime

        assert await runtime.load_campaigns(datetime.now(UTC)) == ["shipped"]
        refusal = await db.campaigns.refusal(ids["acme"])
        assert refusal is not None and "identification message 'acme-id'" in refusal[2]
        assert await db.campaigns.refusal(ids["shipped"]) is None
    finally:
        await runtime.db.close()
        await runtime.gate.close()


def test_sounds_dir_is_an_absolute_directory_of_an_asterisk_pbx() -> None:
    from dialer.runtime.bootstrap import pbx_of
    from dialer.settings import SettingsError, parse

    def pbx(**raw: object) -> dict[str, object]:
        return {"pbx": {"main": {"type": "asterisk", "secret": "s", **raw}}}

    settings = parse(pbx(sounds_dir="/var/lib/asterisk/sounds/en"), env={})
    made = pbx_of(settings.pbxs[0])
    assert isinstance(made, AsteriskPbx) and made.settings.sounds_dir == "/var/lib/asterisk/sounds/en"
    with pytest.raises(SettingsError, match="sounds_dir: 'sounds' must be an absolute path"):
        parse(pbx(sounds_dir="sounds"), env={})
    with pytest.raises(SettingsError, match="sounds_dir: only for Asterisk"):
        parse(pbx(type="freeswitch", sounds_dir="/usr/share/freeswitch/sounds"), env={})


def test_campaign_create_sets_and_checks_the_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from dialer.cli import main

    db = f"sqlite+aiosqlite:///{tmp_path / 'dialer.db'}"
    assert main(["migrate", "--db", db]) == 0
    create = ["campaign", "create", "--dial-string", "PJSIP/{number}@t", "--caller-id", "+33123456789"]
    assert main([*create, "bad", "--message", "acme-id.wav", "--db", db]) == 1
    assert "identification message 'acme-id.wav' is not a sound name" in capsys.readouterr().err
    assert main([*create, "good", "--message", "custom/acme-id", "--db", db]) == 0
    assert "identification message custom/acme-id: it must be on the PBX" in capsys.readouterr().out
    assert main(["campaign", "show", "good", "--db", db]) == 0
    assert "custom/acme-id" in capsys.readouterr().out
