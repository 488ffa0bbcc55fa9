"""``dialer lists list|enable|disable``: lead lists seen, a killed import's list repaired, a disabled
list's leads not dialed."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import update

from dialer.cli import main
from dialer.domain.campaign import CampaignStatus
from dialer.store.db import Database
from dialer.store.leads_repo import HOST
from dialer.store.models import LeadList, utcnow


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err and "unexpected error" not in err, err
    return code, out, err


def claimable(url: str) -> list[str]:
    """Numbers the hopper hands out now (then given back)."""

    async def go() -> list[str]:
        db = Database(url)
        await db.connect()
        try:
            await db.campaigns.set_status(1, CampaignStatus.RUNNING)
            claimed = await db.hopper.claim_leads(1, 100, utcnow(), "node-t")
            await db.hopper.release_claims("node-t")
            await db.campaigns.set_status(1, CampaignStatus.PAUSED)
            return sorted(c.number for c in claimed)
        finally:
            await db.close()

    return asyncio.run(go())


def test_lists_are_shown_disabled_and_enabled(
    database_url: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    run(capsys, "migrate", "--db", database_url)
    create = [
        "campaign",
        "create",
        "spring",
        "--dial-string",
        "PJSIP/{digits}@t",
        "--caller-id",
        "+33123456789",
    ]
    run(capsys, *create, "--db", database_url)
    code, _, err = run(capsys, "lists", "list", "--db", database_url)
    assert code == 0 and "no lead list yet: `dialer leads import FILE --campaign NAME` makes one" in err
    for name, numbers in (("a.csv", ["0612345601", "0612345602"]), ("b.csv", ["0612345603", "x"])):
        (tmp_path / name).write_text("phone\n" + "\n".join(numbers) + "\n", encoding="utf-8")
        assert (
            run(
                capsys, "leads", "import", str(tmp_path / name), "--campaign", "spring", "--db", database_url
            )[0]
            == 0
        )

    code, out, _ = run(capsys, "lists", "list", "--campaign", "spring", "--db", database_url)
    rows = [line.split() for line in out.splitlines()]
    assert rows[0] == [
        "ID",
        "CAMPAIGN",
        "NAME",
        "STATUS",
        "DIALED",
        "LEADS",
        "REJECTED",
        "IMPORTED",
        "AT",
        "(UTC)",
    ]
    assert [r[:7] for r in rows[1:]] == [
        ["1", "spring", "a.csv", "complete", "enabled", "2", "0"],
        ["2", "spring", "b.csv", "complete", "enabled", "1", "1"],
    ]
    assert claimable(database_url) == ["+33612345601", "+33612345602", "+33612345603"]

    code, out, _ = run(capsys, "lists", "disable", "1", "--db", database_url)
    assert code == 0 and out == (
        "lead list 1 disabled: its leads are not dialed (callbacks already booked with them still are)\n"
    )
    assert claimable(database_url) == ["+33612345603"]
    code, out, _ = run(capsys, "lists", "disable", "1", "--db", database_url)
    assert out == "lead list 1 was already disabled\n"
    code, out, _ = run(capsys, "lists", "list", "--db", database_url)
    assert out.splitlines()[1].split()[4] == "disabled"
    code, out, _ = run(capsys, "lists", "enable", "1", "--db", database_url)
    assert out == "lead list 1 enabled: its leads are dialed again\n"
    assert len(claimable(database_url)) == 3
    code, _, err = run(capsys, "lists", "enable", "9", "--db", database_url)
    assert code == 1 and "no lead list with id 9; `dialer lists list` shows them" in err


def test_lists_list_repairs_a_list_whose_import_was_killed(
    database_url: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    run(capsys, "migrate", "--db", database_url)
    create = [
        "campaign",
        "create",
        "spring",
        "--dial-string",
        "PJSIP/{digits}@t",
        "--caller-id",
        "+33123456789",
    ]
    run(capsys, *create, "--db", database_url)
    (tmp_path / "a.csv").write_text("phone\n0612345601\n0612345602\n", encoding="utf-8")
    run(capsys, "leads", "import", str(tmp_path / "a.csv"), "--campaign", "spring", "--db", database_url)
    # As a killed import leaves it: importing, count 0, owned by a process of this host that is gone.
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    owner = f"{HOST}:{gone.stdout.strip()}"

    async def kill() -> None:
        db = Database(database_url)
        await db.connect()
        async with db.engine.begin() as conn:
            await conn.execute(update(LeadList).values(status="importing", imported=0, import_owner=owner))
        await db.close()

    asyncio.run(kill())
    code, out, err = run(capsys, "lists", "list", "--db", database_url)
    assert code == 0
    assert (
        "lead list 1 (a.csv) had been left 'importing' by an import that stopped; it is now 'interrupted' "
        "with its 2 leads" in err
    )
    assert out.splitlines()[1].split()[3:6] == ["interrupted", "enabled", "2"]
