"""The administrator's path: one settings object, and nothing a person types is ignored, misfiled or lost."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dialer.cli import main
from dialer.compliance.gate import ComplianceConfig, build_gate
from tests.compliance.conftest import CONSENT, request

SHIPPED = Path(__file__).resolve().parents[2] / "config" / "dialer.toml"
SYSTEMD = Path(__file__).resolve().parents[2] / "systemd" / "dialer.service"
DIALER = Path(sys.executable).parent / "dialer"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def create(name: str, *extra: str) -> list[str]:
    return [
        "campaign",
        "create",
        name,
        "--dial-string",
        "PJSIP/{digits}@t",
        "--caller-id",
        "+33123456789",
        *extra,
    ]


@pytest.fixture
def db(database_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.delenv("DIALER_CONFIG", raising=False)
    monkeypatch.delenv("DIALER_DATABASE_URL", raising=False)
    assert main(["migrate", "--db", database_url]) == 0
    capsys.readouterr()
    return database_url


# -- 1. a campaign's do-not-call entry, by name or by id, blocks that campaign's calls ---------------


def test_dnc_by_campaign_name_or_id_blocks_the_campaign_and_an_unknown_campaign_is_refused(
    db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, *create("spring"), "--db", db)[0] == 0
    assert run(capsys, *create("autumn"), "--db", db)[0] == 0
    by_name, by_id = "+33612345679", "+33612345680"
    code, out, _ = run(capsys, "dnc", "add", by_name, "--campaign", "spring", "--db", db)
    assert code == 0 and "do-not-call list of campaign spring (id 1)" in out and by_name not in out
    assert run(capsys, "dnc", "add", by_id, "--campaign", "1", "--db", db)[0] == 0
    code, _, err = run(capsys, "dnc", "add", "+33612345681", "--campaign", "nosuch", "--db", db)
    assert (
        code == 1
        and "no campaign 'nosuch'; give a name or an id of one of: spring (id 1), autumn (id 2)" in err
    )
    code, _, err = run(capsys, "dnc", "check", by_name, "--campaign", "nosuch", "--db", db)
    assert code == 1 and "no campaign 'nosuch'" in err
    code, _, err = run(capsys, "audit", "--campaign", "nosuch", "--db", db)
    assert code == 1 and "no campaign 'nosuch'" in err

    async def decisions() -> list[str]:
        gate = await build_gate(ComplianceConfig(db))
        now = datetime(2026, 11, 18, 10, 0, tzinfo=UTC)
        try:
            rules = []
            for number, campaign in ((by_name, "1"), (by_id, "1"), (by_name, "2")):
                decision = await gate.check(request(number, "FR", consent=CONSENT, campaign_id=campaign), now)
                rules.append(decision.rule)
            return rules
        finally:
            await gate.close()

    spring_name, spring_id, autumn = asyncio.run(decisions())
    assert (spring_name, spring_id) == ("dnc", "dnc")
    assert autumn != "dnc"  # a campaign's list is that campaign's only
    code, out, _ = run(capsys, "dnc", "check", by_name, "--campaign", "spring", "--db", db)
    assert code == 3 and "campaign spring (id 1)" in out


# -- 2. the demo never touches a database it did not create ------------------------------------------


def test_demo_refuses_a_folder_that_holds_a_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    precious = tmp_path / "dialer.db"
    precious.write_bytes(b"somebody's records")
    code, _, err = run(capsys, "demo", "--workdir", str(tmp_path), "--seconds", "1")
    assert code == 1 and f"--workdir {tmp_path} already holds dialer.db" in err
    assert "give a new or empty folder" in err
    assert precious.read_bytes() == b"somebody's records"


# -- 3. an unknown profile is refused when the campaign is created or started --------------------------


def test_unknown_jurisdiction_is_refused_at_create_and_at_start(
    db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, *create("spring", "--jurisdiction", "XX"), "--db", db)
    assert code == 1 and "no compliance profile 'XX'" in err and "known: AU, CA" in err
    assert "no campaign yet" in run(capsys, "campaign", "list", "--db", db)[1]

    async def sneak_in() -> None:  # a campaign written before this check existed
        from dialer.domain.campaign import CampaignSettings
        from dialer.store.db import Database

        async with Database(db) as database:
            await database.campaigns.create(
                "old",
                CampaignSettings(dial_string="PJSIP/{digits}@t", caller_id="+33123456789", jurisdiction="XX"),
            )

    asyncio.run(sneak_in())
    code, _, err = run(capsys, "campaign", "start", "old", "--db", db)
    assert code == 1 and "cannot start campaign old: compliance profile: no compliance profile 'XX'" in err
    assert "draft" in run(capsys, "campaign", "show", "old", "--db", db)[1]


def test_a_refused_campaign_shows_why(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, *create("spring"), "--db", db)[0] == 0

    async def refuse() -> None:
        from dialer.store.db import Database

        async with Database(db) as database:
            await database.campaigns.refuse(
                1, "compliance profile: no compliance profile 'XX'", actor="node-7"
            )

    asyncio.run(refuse())
    code, out, _ = run(capsys, "campaign", "show", "spring", "--db", db)
    assert code == 0 and "REFUSED by node-7" in out and "no compliance profile 'XX'" in out
    assert run(capsys, "campaign", "start", "spring", "--db", db)[0] == 0
    assert "REFUSED" not in run(capsys, "campaign", "show", "spring", "--db", db)[1]


# -- 4. the shipped config starts; one optional profiles file for every command ------------------------


def test_shipped_config_needs_no_profiles_file_and_every_command_reads_the_same_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIALER_MAIN_SECRET", "s3cret")
    code, out, err = run(capsys, "check-config", str(SHIPPED))
    assert code == 0, err
    assert "profiles  none: the built-in profiles" in out and "s3cret" not in out

    config = tmp_path / "dialer.toml"
    db = tmp_path / "var" / "dialer.db"
    config.write_text(f'[database]\nurl = "sqlite:///{db}"\n', encoding="utf-8")
    (tmp_path / "profiles.toml").write_text(
        '[profiles.CARE_FR]\nbase = "FR"\nmax_attempts = 2\n', encoding="utf-8"
    )
    assert run(capsys, "migrate", "--config", str(config))[0] == 0
    code, out, err = run(capsys, *create("care", "--jurisdiction", "CARE_FR"), "--config", str(config))
    assert code == 0, err
    from dialer.cli import build_parser
    from dialer.cli.common import settings_of

    for argv in (["dnc", "status"], ["audit", "--campaign", "care"], ["campaign", "list"]):
        args = build_parser().parse_args([*argv, "--config", str(config)])
        assert settings_of(args).profiles_file == tmp_path / "profiles.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{db}"\n[compliance]\nprofiles_file = "/nonexistent/p.toml"\n', "utf-8"
    )
    code, _, err = run(capsys, "dnc", "status", "--config", str(config))
    assert code == 1 and "compliance.profiles_file: /nonexistent/p.toml does not exist" in err


# -- 5. Redis down: one line, nothing half-written ---------------------------------------------------------


def _config(tmp_path: Path, db: str, *extra: str) -> Path:
    config = tmp_path / "dialer.toml"
    lines = [
        "[database]",
        f'url = "{db}"',
        *extra,
        "[pbx.main]",
        'type = "asterisk"',
        'secret = "x"',
        "port = 1",
    ]
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return config


def test_daemon_with_redis_down_says_so_in_one_line(
    db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, db, "[redis]", 'url = "redis://127.0.0.1:1/0"')
    code, out, err = run(capsys, "run", "--config", str(config))
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dialer: Redis at redis://127.0.0.1:1/0 is not answering")
    assert "start Redis" in lines[0] and "Traceback" not in out + err
    unit = SYSTEMD.read_text(encoding="utf-8")
    assert "Restart=on-failure" in unit and "StartLimitIntervalSec=0" in unit


def test_dnc_add_with_redis_down_writes_nothing(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    number = "+33612345679"
    code, _, err = run(capsys, "dnc", "add", number, "--redis", "redis://127.0.0.1:1/0", "--db", db)
    assert code == 1 and "Redis at redis://127.0.0.1:1/0 is not answering" in err
    assert "nothing was written" in err and number not in err
    code, out, _ = run(capsys, "dnc", "check", number, "--db", db)
    assert code == 0 and "not on any do-not-call list" in out


# -- 6. one database for every command ---------------------------------------------------------------------


def test_every_command_opens_the_database_of_the_config_file_and_says_which(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from dialer.settings import load

    db = tmp_path / "state" / "dialer.db"
    config = _config(tmp_path, f"sqlite:///{db}")  # the README's spelling
    monkeypatch.setenv("DIALER_DATABASE_URL", f"sqlite:///{tmp_path / 'other.db'}")
    code, out, err = run(capsys, "migrate", "--config", str(config))
    assert code == 0 and f"created the SQLite database {db}" in err
    code, _, err = run(
        capsys,
        "campaign",
        "create",
        "spring",
        "--dial-string",
        "PJSIP/{digits}@t",
        "--caller-id",
        "+33123456789",
        "--config",
        str(config),
        "--verbose",
    )
    assert code == 0 and f"database sqlite+aiosqlite:///{db} (from {config})" in err
    assert load(config).database_url == f"sqlite+aiosqlite:///{db}"  # what `dialer run` opens
    assert not (tmp_path / "other.db").exists()
    monkeypatch.setenv("DIALER_CONFIG", str(config))
    code, out, _ = run(capsys, "campaign", "list")
    assert code == 0 and "spring" in out
    code, _, err = run(capsys, "campaign", "list", "--db", f"sqlite:///{tmp_path / 'nothing.db'}")
    assert code == 1 and "no database at" in err and "dialer migrate" in err
    assert not (tmp_path / "nothing.db").exists()


# -- 7. one settings object: every bad key named, one PBX per node, a campaign's PBX checked -----------


def test_check_config_names_every_bad_key_and_every_command_refuses_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "dialer.toml"
    config.write_text(
        '[databse]\nurl = "x"\n[pacing]\ntick = 1\n[pbx.main]\ntype = "asterisk"\nsecret = "x"\nprot = 5038\n'
        '[pbx.second]\ntype = "freeswitch"\nsecret = "y"\ngroup = "main"\n',
        encoding="utf-8",
    )
    code, _, err = run(capsys, "check-config", str(config))
    assert code == 1
    for named in (
        "unknown key(s) databse",
        "pacing: unknown key(s) tick",
        "pbx.main: unknown key(s) prot",
        "group 'main' is also the name of a [pbx.main] table",
    ):
        assert named in err
    code, _, err = run(capsys, "campaign", "list", "--config", str(config))
    assert code == 1 and "databse" in err and "tick" in err
    code, _, err = run(capsys, "run", "--config", str(tmp_path))
    assert code == 1 and f"{tmp_path} is a folder" in err and "IsADirectoryError" not in err


def test_a_campaign_naming_an_unconfigured_pbx_is_refused(
    db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, db)
    code, _, err = run(capsys, *create("spring", "--pbx", "paris"), "--config", str(config))
    assert code == 1 and "PBX 'paris' is not configured" in err and "configured: main" in err
    assert run(capsys, *create("spring", "--pbx", "main"), "--config", str(config))[0] == 0
    assert run(capsys, *create("autumn"), "--config", str(config))[0] == 0  # the node's PBX


# -- 8. what the jurisdiction asks for -------------------------------------------------------------------


def test_campaign_create_says_which_registries_and_consent_the_jurisdiction_requires(
    db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, *create("spring", "--jurisdiction", "FR"), "--db", db)
    assert code == 0 and "jurisdiction FR requires:" in out
    assert "registry bloctel: calls to FR, GP, MQ" in out and "blocked until it is imported" in out
    assert "`dialer dnc import --registry bloctel --screened-on YYYY-MM-DD FILE`" in out
    assert "consent: required for calls from 2026-08-11" in out
    code, out, _ = run(capsys, *create("usa", "--jurisdiction", "US"), "--db", db)
    assert "registry us_dnc" in out and "consent: not required beforehand" in out


# -- 10. noise ---------------------------------------------------------------------------------------------


def test_no_alembic_chatter_and_audit_has_a_description(db: str) -> None:
    for argv in (["dnc", "status"], ["audit", "--number", "+33612345678"], ["migrate"]):
        done = subprocess.run([str(DIALER), *argv, "--db", db], capture_output=True, text=True, timeout=60)
        assert "Context impl" not in done.stderr and "alembic" not in done.stderr, done.stderr
    done = subprocess.run([str(DIALER), "audit", "--help"], capture_output=True, text=True, timeout=60)
    assert "List the compliance gate's decisions" in done.stdout
