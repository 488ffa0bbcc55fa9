"""``dialer dnc`` and ``dialer audit`` from the command line, numbers masked on screen."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dialer.cli import main
from dialer.compliance.gate import ComplianceConfig, build_gate
from dialer.store.db import Database

from .conftest import CONSENT, request

NUMBER = "+33612345678"


@pytest.fixture
def db(database_url: str) -> str:
    async def migrate() -> None:
        database = Database(database_url)
        await database.connect()
        await database.migrate()
        await database.close()

    asyncio.run(migrate())
    return database_url


def test_add_check_remove_a_number(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dnc", "add", NUMBER, "--source", "agent 7", "--db", db]) == 0
    assert main(["dnc", "check", NUMBER, "--db", db]) == 3
    out = capsys.readouterr().out
    assert "+33******678: global (source agent 7)" in out
    assert NUMBER not in out
    assert main(["dnc", "remove", NUMBER, "--db", db]) == 0
    assert main(["dnc", "check", NUMBER, "--db", db]) == 0
    assert "not on any do-not-call list" in capsys.readouterr().out


def test_campaign_entry_with_expiry(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("spring", "autumn"):
        create = [
            "campaign",
            "create",
            name,
            "--dial-string",
            "PJSIP/{digits}@t",
            "--caller-id",
            "+33123456789",
        ]
        assert main([*create, "--db", db]) == 0
    assert main(["dnc", "add", NUMBER, "--campaign", "spring", "--expires", "30d", "--db", db]) == 0
    assert main(["dnc", "check", NUMBER, "--campaign", "spring", "--db", db]) == 3
    assert main(["dnc", "check", NUMBER, "--campaign", "autumn", "--db", db]) == 0
    assert "campaign spring (id 1)" in capsys.readouterr().out


def test_registry_import_writes_rejected_lines_and_status_tells_staleness(
    db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "bloctel.txt"
    file.write_text("0612345678\nhello\n0611223344\n", encoding="utf-8")
    old = (datetime.now(UTC).date() - timedelta(days=40)).isoformat()
    assert main(["dnc", "import", "--registry", "bloctel", "--screened-on", old, str(file), "--db", db]) == 0
    out = capsys.readouterr().out
    assert "2 numbers loaded" in out
    rejects = (tmp_path / "bloctel.txt.rejects.csv").read_text(encoding="utf-8")
    assert "2,hello," in rejects
    assert main(["dnc", "check", NUMBER, "--db", db]) == 3
    assert main(["dnc", "status", "--db", db]) == 4
    status = capsys.readouterr().out
    assert "bloctel" in status and "STALE, re-import" in status
    assert "tps        never imported" in status


def test_bad_input_says_what_to_do(db: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["dnc", "add", "0612345678", "--db", db]) == 1
    assert "'0612345678' is a national number: give its country with --country" in capsys.readouterr().err
    file = tmp_path / "x.txt"
    file.write_text("", encoding="utf-8")
    assert (
        main(["dnc", "import", "--registry", "nope", "--screened-on", "2026-01-01", str(file), "--db", db])
        == 1
    )
    assert "unknown registry 'nope'; known: au_dncr" in capsys.readouterr().err
    assert (
        main(["dnc", "import", "--registry", "tps", "--screened-on", "yesterday", str(file), "--db", db]) == 1
    )
    assert "--screened-on 'yesterday' is not a date" in capsys.readouterr().err
    assert main(["audit", "--db", db]) == 1


def test_cli_refuses_a_database_without_schema(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
    assert main(["dnc", "check", NUMBER, "--db", url]) == 1
    assert "dialer migrate" in capsys.readouterr().err


def test_audit_shows_decisions_for_a_number_masked(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    async def decide_twice() -> None:
        gate = await build_gate(ComplianceConfig(db))
        now = datetime(2026, 11, 18, 10, 0, tzinfo=UTC)
        await gate.check(request(NUMBER, "FR", consent=CONSENT, campaign_id="spring"), now)
        await gate.dnc.add(NUMBER, "global", "agent")
        await gate.check(request(NUMBER, "FR", consent=CONSENT, campaign_id="spring"), now)
        await gate.close()

    asyncio.run(decide_twice())
    assert main(["audit", "--number", NUMBER, "--db", db]) == 0
    out = capsys.readouterr().out
    lines = out.strip().splitlines()
    assert len(lines) == 3
    assert " block    dnc " in lines[1]
    assert " block    registry_stale " in lines[2]  # nothing was imported before the first check
    assert NUMBER not in out and "+33******678" in out
    assert main(["audit", "--campaign", "autumn", "--db", db]) == 1
    assert "no campaign 'autumn'" in capsys.readouterr().err


def test_cli_addition_with_redis_reaches_a_running_redis_node(
    db: str, redis_url: str, redis_namespace: str
) -> None:
    async def scenario() -> tuple[str, str]:
        config = ComplianceConfig(db, redis_url=redis_url, redis_namespace=redis_namespace)
        gate = await build_gate(config)
        now = datetime(2026, 11, 18, 10, 0, tzinfo=UTC)
        req = request(NUMBER, "FR", consent=CONSENT, campaign_id="spring")
        before = (await gate.check(req, now)).rule
        code = await asyncio.to_thread(
            main,
            ["dnc", "add", NUMBER, "--db", db, "--redis", redis_url, "--redis-namespace", redis_namespace],
        )
        assert code == 0
        after = (await gate.check(req, now)).rule
        await gate.close()
        return before, after

    before, after = asyncio.run(scenario())
    assert (before, after) == ("registry_stale", "dnc")


def test_cli_addition_without_redis_still_reaches_a_redis_node(
    db: str, redis_url: str, redis_namespace: str
) -> None:
    async def scenario() -> str:
        config = ComplianceConfig(
            db, redis_url=redis_url, redis_namespace=redis_namespace, dnc_refresh_seconds=0
        )
        gate = await build_gate(config)
        code = await asyncio.to_thread(main, ["dnc", "add", NUMBER, "--db", db])
        assert code == 0
        rule = (
            await gate.check(
                request(NUMBER, "FR", consent=CONSENT), datetime(2026, 11, 18, 10, 0, tzinfo=UTC)
            )
        ).rule
        await gate.close()
        return rule

    assert asyncio.run(scenario()) == "dnc"
