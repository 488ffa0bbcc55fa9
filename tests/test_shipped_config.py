"""Every example file we ship loads with the code that reads it, and names what the code expects.

An operator copies these files as they are: a key the loader refuses, a profile a campaign
cannot use, a context the adapter redirects to that is missing, all show up here first.
"""

from __future__ import annotations

import configparser
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from dialer import settings as dialer_settings
from dialer.cli import main
from dialer.compliance.profiles import load_profiles
from dialer.domain.campaign import CampaignSettings
from dialer.domain.compliance import CampaignRules
from telephony.asterisk import adapter as asterisk_adapter
from telephony.freeswitch.adapter import FreeSwitchSettings

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "config"


def _installed_dialer_toml(tmp_path: Path) -> Path:
    """config/dialer.toml as installed, with the profiles example beside it (where the loader looks)
    and its database a SQLite file here (not the example's /var/lib/dialer or PostgreSQL server)."""
    text = (CONFIG / "dialer.toml").read_text(encoding="utf-8")
    (tmp_path / "profiles.toml").write_text((CONFIG / "compliance" / "profiles.toml").read_text("utf-8"))
    database = re.search(r'(?m)^url = "(postgresql|sqlite)://[^"]*"$', text)
    assert database is not None, "config/dialer.toml: no [database] url line"
    text = text.replace(database.group(0), f'url = "sqlite:///{tmp_path / "dialer.db"}"')
    path = tmp_path / "dialer.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _load_dialer_toml(tmp_path: Path) -> dialer_settings.Settings:
    return dialer_settings.load(_installed_dialer_toml(tmp_path), env={"DIALER_MAIN_SECRET": "s3cret"})


def test_dialer_toml_loads_with_the_settings_loader(tmp_path: Path) -> None:
    settings = _load_dialer_toml(tmp_path)
    assert [(p.name, p.kind) for p in settings.pbxs] == [("main", "asterisk")]
    assert settings.pbxs[0].secret == "s3cret"
    assert tmp_path / "profiles.toml" in settings.profile_files


def test_operator_profiles_example_loads_and_care_fr_keeps_french_law() -> None:
    profiles = load_profiles([CONFIG / "compliance" / "profiles.toml"])
    fr, care = profiles.get("FR"), profiles.get("CARE_FR")
    assert fr.window.holiday_subdivision == "57"
    assert care.code == "CARE_FR"
    # tightened figures
    assert (care.max_attempts, care.min_gap.days, care.lockouts["refusal"].days) == (2, 2, 90)
    # what it does not say comes from FR: consent from 2026-08-11, the 3 % cap, registry screening
    assert care.consent_required_from == fr.consent_required_from is not None
    assert care.abandon_rate_cap == fr.abandon_rate_cap
    assert care.registry_screening and care.window.holiday_country == "FR"
    assert profiles.for_campaign(CampaignRules(profile="CARE_FR")).code == "CARE_FR"


def test_a_campaign_on_the_custom_example_profile_can_be_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = CampaignSettings.from_dict(
        {"dial_string": "PJSIP/{number}@trunk", "caller_id": "+33123456789", "jurisdiction": "CARE_FR"}
    )
    assert settings.jurisdiction == "CARE_FR"
    config = str(_installed_dialer_toml(tmp_path))
    assert main(["migrate", "--config", config]) == 0
    code = main(
        [
            *("campaign", "create", "care", "--dial-string", "PJSIP/{national}@trunk"),
            *("--caller-id", "+33123456789", "--jurisdiction", "CARE_FR", "--config", config),
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "campaign 'care' created" in out


def _asterisk_conf(name: str) -> dict[str, str]:
    """Sections of an Asterisk .conf file -> their text (comments removed)."""
    sections: dict[str, str] = {}
    current = None
    for raw in (CONFIG / "asterisk" / name).read_text(encoding="utf-8").splitlines():
        line = raw.split(";", 1)[0].strip()
        header = re.fullmatch(r"\[([^\]]+)\](\(.*\))?", line)
        if header:
            current = header.group(1)
            sections[current] = ""
        elif line and current is not None:
            sections[current] += line + "\n"
    return sections


def test_asterisk_dialplan_has_every_context_the_adapter_uses() -> None:
    contexts = _asterisk_conf("extensions_dialer.conf")
    for context in (
        asterisk_adapter.CONTEXT_ANSWERED,
        asterisk_adapter.CONTEXT_CONNECT,
        asterisk_adapter.CONTEXT_ABANDON,
        "dialer-agent",
    ):
        assert context in contexts, f"extensions_dialer.conf lacks [{context}]"
    assert "AGI(agi://${DIALER_FASTAGI}/answered)" in contexts[asterisk_adapter.CONTEXT_ANSWERED]
    # the adapter sets DIALER_MESSAGE before redirecting an abandoned call here
    assert "Playback(${DIALER_MESSAGE})" in contexts[asterisk_adapter.CONTEXT_ABANDON]


def test_asterisk_manager_user_has_the_classes_it_needs_and_no_system() -> None:
    user = _asterisk_conf("manager_dialer.conf")["dialer"]
    keys = dict(line.split("=", 1) for line in user.splitlines())
    read = {c.strip() for c in keys["read "].split(",")}
    write = {c.strip() for c in keys["write "].split(",")}
    assert read >= {"call", "user", "dialplan"} and write >= {"originate", "call", "reporting"}
    assert not (read | write) & {"system", "command", "all"}
    assert "127.0.0.1" in keys["permit "]


def test_asterisk_confbridge_has_the_profiles_agent_legs_name() -> None:
    profiles = _asterisk_conf("confbridge_dialer.conf")
    for name in asterisk_adapter.AGENT_BRIDGE_DATA.split(",")[1:]:
        assert name in profiles, f"confbridge_dialer.conf lacks [{name}]"


@pytest.mark.parametrize("path", sorted((CONFIG / "freeswitch").rglob("*.xml")), ids=lambda p: p.name)
def test_freeswitch_xml_is_well_formed(path: Path) -> None:
    ET.parse(path)


def test_freeswitch_dialplan_has_the_context_and_extensions_the_adapter_uses() -> None:
    defaults = FreeSwitchSettings(password="x")
    root = ET.parse(CONFIG / "freeswitch" / "dialplan" / "dialer.xml").getroot()
    context = root.find(f"context[@name='{defaults.context}']")
    assert context is not None
    expressions = [c.get("expression", "") for c in context.iter("condition")]
    for destination in (defaults.answer_extension, f"{defaults.agent_extension_prefix}1001"):
        assert any(re.match(e, destination) for e in expressions if e.startswith("^")), destination


def test_systemd_unit_has_the_keys_the_daemon_needs(tmp_path: Path) -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(ROOT / "systemd" / "dialer.service", encoding="utf-8")
    service = unit["Service"]
    assert service["Type"] == "notify"  # the daemon calls sd_notify READY / STOPPING
    assert " run --config /etc/dialer/dialer.toml" in service["ExecStart"]
    assert " migrate --config /etc/dialer/dialer.toml" in service["ExecStartPre"]
    assert int(service["WatchdogSec"]) > 0
    assert service["User"] == "dialer" and service["KillSignal"] == "SIGTERM"
    # stopping drains calls for shutdown.drain_timeout_s: systemd must wait longer than that
    drain = _load_dialer_toml(tmp_path).drain_timeout_s
    assert int(service["TimeoutStopSec"]) > drain
    assert unit["Install"]["WantedBy"] == "multi-user.target"
