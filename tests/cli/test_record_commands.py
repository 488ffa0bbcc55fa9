"""The record's commands: migrate, campaign, leads import/export, report; errors say what to do."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dialer.cli import build_parser, main
from dialer.store.db import Database


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


CREATE = (
    "campaign",
    "create",
    "spring",
    "--dial-string",
    "PJSIP/{number}@trunk",
    "--caller-id",
    "+33123456789",
)


def test_commands_refuse_an_unmigrated_database(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "campaign", "list", "--db", database_url)
    # SQLite: the file is not even created; PostgreSQL: the database has no schema.
    assert code == 1 and ("has no dialer schema" in err or "no database at" in err)
    assert "dialer migrate" in err
    code, out, _ = run(capsys, "migrate", "--db", database_url)
    assert code == 0 and "upgraded from empty to" in out
    code, out, _ = run(capsys, "migrate", "--db", database_url)
    assert code == 0 and "is up to date" in out


def test_campaign_lifecycle(database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "migrate", "--db", database_url)[0] == 0
    code, out, _ = run(
        capsys, *CREATE, "--retry", "busy=60:2", "--pacing", "predictive", "--db", database_url
    )
    assert code == 0 and "campaign 'spring' created" in out
    code, _, err = run(capsys, *CREATE, "--db", database_url)
    assert code == 1 and "already exists; choose another name" in err

    code, out, _ = run(capsys, "campaign", "show", "spring", "--db", database_url)
    assert code == 0 and "predictive" in out and "busy                 60 s  2" in out
    assert "no_answer          7200 s  4" in out  # other rules keep their defaults

    code, _, err = run(capsys, "campaign", "pause", "spring", "--db", database_url)
    assert code == 1 and "a draft campaign cannot become paused" in err
    assert (
        run(capsys, "campaign", "start", "spring", "--db", database_url)[1]
        == "campaign spring: draft -> running\n"
    )
    assert run(capsys, "campaign", "pause", "1", "--db", database_url)[0] == 0
    code, out, _ = run(capsys, "campaign", "list", "--db", database_url)
    assert code == 0 and "spring" in out and "paused" in out
    code, _, err = run(capsys, "campaign", "stop", "autumn", "--db", database_url)
    assert code == 1 and "no campaign 'autumn'; give a name or an id of one of: spring (id 1)" in err


def test_bad_settings_are_refused_with_the_rule(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "migrate", "--db", database_url)
    code, _, err = run(capsys, *CREATE, "--ring-timeout", "10", "--db", database_url)
    assert code == 1 and "ring timeout 10 s is too short" in err and "set it to 15 or more" in err
    bad_template = ["PJSIP/{numbr}@trunk" if a == "PJSIP/{number}@trunk" else a for a in CREATE]
    code, _, err = run(capsys, *bad_template, "--db", database_url)
    assert code == 1 and "unknown placeholder '{numbr}'" in err
    code, _, err = run(capsys, *CREATE, "--retry", "busy:60", "--db", database_url)
    assert code == 1 and "busy=900:5" in err


def test_import_export_and_report(
    database_url: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    run(capsys, "migrate", "--db", database_url)
    run(capsys, *CREATE, "--db", database_url)
    source = tmp_path / "list.csv"
    source.write_bytes(
        "Telephone;Prenom\n01 23 45 67 89;Léa\n+33 1 23;Hugo\n0612345678;Zoé\n".encode("cp1252")
    )
    code, out, err = run(
        capsys,
        "leads",
        "import",
        str(source),
        "--campaign",
        "spring",
        "--map",
        "phone=Telephone",
        "--db",
        database_url,
    )
    assert code == 0
    assert "2 leads imported" in out and "1 rows rejected (1 invalid number)" in out
    assert (
        "lead row 3: '+33 1 23' is not a valid number for FR; the row was skipped and written to "
        "list.rejects.csv" in err
    )
    assert (
        (tmp_path / "list.rejects.csv")
        .read_text(encoding="utf-8")
        .splitlines()[1]
        .startswith("3,invalid_number")
    )

    code, _, err = run(
        capsys,
        "leads",
        "import",
        str(source),
        "--campaign",
        "spring",
        "--map",
        "phone=Tel",
        "--db",
        database_url,
    )
    assert code == 1 and "column 'Tel' (mapped to phone) is not in the header" in err

    exported = tmp_path / "out.csv"
    code, _, err = run(
        capsys, "leads", "export", "--campaign", "spring", "-o", str(exported), "--db", database_url
    )
    assert code == 0 and "2 leads of campaign spring exported" in err
    with exported.open(encoding="utf-8") as f:
        assert [r["phone"] for r in csv.DictReader(f)] == ["+33123456789", "+33612345678"]

    asyncio.run(_one_connected_sale(database_url))
    code, out, _ = run(capsys, "report", "--csv", "--db", database_url)
    assert code == 0
    sections = out.split("\r\n\r\n")
    campaign_rows = list(csv.DictReader(io.StringIO(sections[0])))
    assert campaign_rows[0]["campaign"] == "spring" and campaign_rows[0]["attempts"] == "1"
    assert campaign_rows[0]["contacts"] == "1" and campaign_rows[0]["conversions"] == "1"
    agent_rows = list(csv.DictReader(io.StringIO(sections[1])))
    assert agent_rows[0]["agent"] == "ag1" and agent_rows[0]["codes"] == "sale=1"
    code, out, _ = run(
        capsys, "report", "--campaign", "spring", "--since", "2020-01-01", "--db", database_url
    )
    assert code == 0 and "per campaign" in out and "per agent" in out
    code, _, err = run(capsys, "report", "--since", "yesterday", "--db", database_url)
    assert code == 1 and "is not a date" in err


async def _one_connected_sale(url: str) -> None:
    from dialer.domain.campaign import CampaignStatus

    db = Database(url)
    await db.connect()
    try:
        campaign = await db.campaigns.by_name("spring")
        assert campaign is not None
        await db.campaigns.set_status(campaign.id, CampaignStatus.RUNNING)
        now = datetime.now(UTC)
        [lead] = await db.hopper.claim_leads(campaign.id, 1, now, "n")
        attempt = await db.attempts.open_attempt(lead.lead_id, campaign.id, lead.number, "n", now)
        await db.attempts.record_event(attempt, "connected", now + timedelta(seconds=5), agent_id="ag1")
        await db.attempts.close_attempt(attempt, "connected", 16, "person", now + timedelta(seconds=65))
        await db.dispositions.record_disposition(attempt, "sale", "ag1", now=now + timedelta(seconds=80))
    finally:
        await db.close()


def test_database_url_comes_from_environment(
    database_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIALER_DATABASE_URL", database_url)
    assert run(capsys, "migrate")[0] == 0
    code, out, _ = run(capsys, "campaign", "list")
    assert code == 0 and "no campaign yet" in out


def test_default_database_does_not_depend_on_the_current_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from dialer.cli.common import settings_of
    from dialer.settings import DEFAULT_DATABASE_URL

    monkeypatch.delenv("DIALER_DATABASE_URL", raising=False)
    monkeypatch.delenv("DIALER_CONFIG", raising=False)
    monkeypatch.setattr("dialer.settings.DEFAULT_PATH", tmp_path / "absent.toml")
    urls = set()
    for folder in (tmp_path, tmp_path.parent):
        monkeypatch.chdir(folder)
        args = build_parser().parse_args(["campaign", "list"])
        urls.add(settings_of(args).database_url)
    assert urls == {DEFAULT_DATABASE_URL} and DEFAULT_DATABASE_URL.endswith(":////var/lib/dialer/dialer.db")
