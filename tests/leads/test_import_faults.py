"""Import faults an administrator met: concurrent imports, killed imports, huge lines, suffixes, no header."""

from __future__ import annotations

import asyncio
import csv
import logging
import os
import re
import signal
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from dialer.leads.importer import LeadImportError, database_failure, import_leads
from dialer.leads.numbers import NumberInputError, mask_numbers_in, normalize_number, parse_user_number
from dialer.store.db import Database
from dialer.store.leads_repo import LeadInserter
from dialer.store.models import Lead, LeadList
from dialer.store.repositories import CampaignRecord

ROOT = str(Path(__file__).resolve().parents[2])
# A full French number anywhere in a message: what must never be printed.
FULL_NUMBER = re.compile(r"(?:\+33|0)[1-9](?:[ .]?\d){8}")


def numbers_csv(path: Path, numbers: list[int], header: str = "Telephone;Prenom\n") -> Path:
    with path.open("w", encoding="utf-8") as f:
        f.write(header)
        for n in numbers:
            f.write(f"06{n:08d};Lead {n}\n")
    return path


def read_rejects(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


async def lead_count(db: Database, campaign_id: int) -> int:
    async with db.read_session() as s:
        query = select(func.count()).select_from(Lead).where(Lead.campaign_id == campaign_id)
        return int((await s.execute(query)).scalar_one())


async def test_concurrent_imports_into_one_campaign_merge_and_lose_nothing(
    db: Database, campaign: CampaignRecord, tmp_path: Path
) -> None:
    """Two imports at once (PostgreSQL: truly concurrent): no traceback, every row a lead or a reject."""
    first = numbers_csv(tmp_path / "a.csv", list(range(0, 1500)))
    # 1000 numbers in both files, in the opposite order: on PostgreSQL each import's batch would
    # wait for rows of the other's if both were not inserted in one order (a deadlock).
    second = numbers_csv(tmp_path / "b.csv", list(range(1999, 499, -1)))
    # Both imports have read the campaign's numbers (none yet) before either inserts a row.
    barrier = asyncio.Barrier(2)
    started: set[int] = set()

    def waiter(tag: int):  # type: ignore[no-untyped-def]
        async def check(_number: str) -> bool:
            if tag not in started:
                started.add(tag)
                await barrier.wait()
            await asyncio.sleep(0)  # let the other import run between rows
            return False

        return check

    reports = await asyncio.gather(
        import_leads(
            db, first, campaign.id, "FR", rejects_path=tmp_path / "a.rej", dnc_check=waiter(1), batch_size=100
        ),
        import_leads(
            db,
            second,
            campaign.id,
            "FR",
            rejects_path=tmp_path / "b.rej",
            dnc_check=waiter(2),
            batch_size=100,
        ),
    )
    assert await lead_count(db, campaign.id) == 2000
    assert sum(r.imported for r in reports) == 2000
    rejected = [*read_rejects(tmp_path / "a.rej"), *read_rejects(tmp_path / "b.rej")]
    assert len(rejected) == 1000 == sum(r.rejected_total for r in reports)
    assert {r["reason"] for r in rejected} == {"duplicate_in_campaign"}
    assert len({r["Telephone"] for r in rejected}) == 1000  # each shared number rejected once, with its row
    for report in reports:
        assert report.imported + report.rejected_total == report.rows == 1500
        for message in report.messages:
            assert not FULL_NUMBER.search(message), message
    async with db.read_session() as s:
        lists = list((await s.execute(select(LeadList).order_by(LeadList.id))).scalars())
    assert [(x.status, x.imported) for x in lists] == [("complete", r.imported) for r in reports]


async def test_database_errors_are_explained_without_full_numbers(
    db: Database, campaign: CampaignRecord, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = numbers_csv(tmp_path / "a.csv", list(range(10)))

    async def refuse(self: LeadInserter, rows: object) -> set[str]:
        raise IntegrityError(
            "INSERT INTO leads ...",
            {},
            Exception(
                'duplicate key value violates unique constraint "uq_leads_campaign_phone"\n'
                "DETAIL:  Key (campaign_id, phone)=(1, +33600000003) already exists."
            ),
        )

    monkeypatch.setattr(LeadInserter, "insert", refuse)
    with pytest.raises(LeadImportError) as caught:
        await import_leads(db, source, campaign.id, "FR", rejects_path=tmp_path / "a.rej")
    message = str(caught.value)
    assert "the database refused the import (IntegrityError" in message
    assert "then import again" in message
    assert "+33600000003" not in message and not FULL_NUMBER.search(message)
    async with db.read_session() as s:
        status = (await s.execute(select(LeadList.status))).scalar_one()
    assert status == "failed"


def test_database_failure_masks_numbers_but_not_dates() -> None:
    exc = Exception("Key (campaign_id, phone)=(1, +33612345678) already exists at 2026-12-04 10:00")
    assert database_failure(exc) == (
        "the database refused the import (Exception: Key (campaign_id, phone)=(1, +33******678) "
        "already exists at 2026-12-04 10:00)"
    )
    assert mask_numbers_in("call 06 12 34 56 78 now") == "call ** ** ** *6 78 now"


async def test_killed_import_is_repaired_by_the_next_import(database_url: str, tmp_path: Path) -> None:
    """An import killed midway (SIGKILL) left its list `importing` with count 0 for ever."""
    db = Database(database_url)
    await db.connect()
    await db.migrate()
    try:
        from dialer.domain.campaign import CampaignSettings

        campaign = await db.campaigns.create(
            "killed", CampaignSettings(dial_string="PJSIP/{number}@trunk", caller_id="+33123456789")
        )
        big = numbers_csv(tmp_path / "big.csv", list(range(400_000)))
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            "import sys; from dialer.cli import main; sys.exit(main(sys.argv[1:]))",
            *("leads", "import", str(big), "--campaign", "killed", "--db", database_url, "--quiet"),
            env={**os.environ, "PYTHONPATH": ROOT},
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            deadline = time.monotonic() + 60
            while await lead_count(db, campaign.id) == 0:
                assert child.returncode is None, "the import ended before it could be killed"
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
        finally:
            if child.returncode is None:
                child.send_signal(signal.SIGKILL)
            _, err = await child.communicate()
        assert child.returncode == -signal.SIGKILL, err.decode()
        async with db.read_session() as s:
            killed = (await s.execute(select(LeadList))).scalar_one()
        assert killed.status == "importing"
        inserted = await lead_count(db, campaign.id)
        assert 0 < inserted < 400_000

        small = numbers_csv(tmp_path / "small.csv", [900_000, 900_001])
        report = await import_leads(db, small, campaign.id, "FR")
        assert report.imported == 2
        assert [(r.id, r.leads) for r in report.repaired] == [(killed.id, inserted)]
        async with db.read_session() as s:
            repaired = await s.get(LeadList, killed.id)
        assert repaired is not None
        assert (repaired.status, repaired.imported) == ("interrupted", inserted)
    finally:
        await db.close()


async def test_stale_list_of_another_host_is_repaired_after_its_heartbeat_stops(
    db: Database, campaign: CampaignRecord, tmp_path: Path
) -> None:
    first = numbers_csv(tmp_path / "a.csv", list(range(5)))
    await import_leads(db, first, campaign.id, "FR")
    async with db.engine.begin() as conn:
        await conn.execute(
            text("UPDATE lead_lists SET status = 'importing', imported = 0, import_owner = 'elsewhere:1'")
        )
    second = numbers_csv(tmp_path / "b.csv", [100])
    report = await import_leads(db, second, campaign.id, "FR")
    assert report.repaired == []  # its heartbeat is recent: it may be running on another host
    async with db.engine.begin() as conn:
        await conn.execute(
            text("UPDATE lead_lists SET heartbeat_at = created_at WHERE import_owner = 'elsewhere:1'")
        )
    from datetime import timedelta

    from dialer.store.leads_repo import LeadAdmin
    from dialer.store.models import utcnow

    repaired = await LeadAdmin(db).repair_interrupted_imports(now=utcnow() + timedelta(minutes=11))
    assert [(r.leads, r.name) for r in repaired] == [(5, "a.csv")]


async def test_a_huge_line_is_one_rejected_row(
    db: Database, campaign: CampaignRecord, tmp_path: Path
) -> None:
    """A line of megabytes (csv's field limit is 128 KiB) used to end in a _csv.Error traceback."""
    source = tmp_path / "huge.csv"
    huge = "x" * (3 << 20)
    source.write_text(
        f"Telephone;Prenom\n0600000001;Léa\n0600000002;{huge}\n0600000003;Hugo\n", encoding="utf-8"
    )
    rejects = tmp_path / "huge.rej"
    report = await import_leads(db, source, campaign.id, "FR", rejects_path=rejects)
    assert report.imported == 2 and dict(report.rejected) == {"unreadable_row": 1}
    assert report.rows == 3
    assert "lead row 3: has a field longer than 131,072 characters" in report.messages[0]
    limit = csv.field_size_limit(1 << 30)
    try:
        rows = read_rejects(rejects)
    finally:
        csv.field_size_limit(limit)
    assert [(r["line"], r["reason"]) for r in rows] == [("3", "unreadable_row")]
    assert rows[0]["Telephone"] == f"0600000002;{huge}"  # nothing lost: the raw line


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("0612000007x", "'*******007' is followed by 'x'"),
        ("+33 6 12 00 00 08 ext 5", "'+33 * ** ** *0 08' is followed by 'ext 5'"),
        ("06 12 00 00 09 poste 12", "is followed by 'poste 12'"),
        ("06 12 00 00 1O", "holds 'O', which is not part of a phone number"),
    ],
)
async def test_numbers_with_a_suffix_are_rejected_not_truncated(
    db: Database, campaign: CampaignRecord, tmp_path: Path, raw: str, shown: str
) -> None:
    source = tmp_path / "suffix.csv"
    source.write_text(f"Telephone;Prenom\n{raw};Léa\n0600000001;Hugo\n", encoding="utf-8")
    report = await import_leads(db, source, campaign.id, "FR", rejects_path=tmp_path / "r.csv")
    assert report.imported == 1 and dict(report.rejected) == {"invalid_number": 1}
    assert shown in report.messages[0]
    assert not FULL_NUMBER.search(report.messages[0])
    assert normalize_number(raw, "FR") is None


async def test_file_without_header_is_imported_whole_with_no_header(
    db: Database, campaign: CampaignRecord, tmp_path: Path
) -> None:
    source = tmp_path / "bare.csv"
    source.write_text("Léa;0612345678;Paris\nHugo;0612345679;Lyon\n", encoding="utf-8")
    # The hint the old message gave (--map phone=<column>) took the first lead as the header.
    with pytest.raises(LeadImportError) as caught:
        await import_leads(db, source, campaign.id, "FR", {"phone": "0612345678"})
    assert "looks like a lead, not column names (column 2 holds a phone number)" in str(caught.value)
    assert "--no-header --map phone=2" in str(caught.value)
    with pytest.raises(LeadImportError, match="--no-header --map phone=2"):
        await import_leads(db, source, campaign.id, "FR")
    assert await lead_count(db, campaign.id) == 0

    report = await import_leads(
        db, source, campaign.id, "FR", {"phone": "2", "first_name": "1"}, no_header=True
    )
    assert report.imported == 2 and report.rows == 2
    leads = [lead async for lead in db.leads.iter_leads(campaign.id)]
    assert [(x.phone, x.first_name, dict(x.extra)) for x in leads] == [
        ("+33612345678", "Léa", {"column 3": "Paris"}),
        ("+33612345679", "Hugo", {"column 3": "Lyon"}),
    ]
    with pytest.raises(LeadImportError, match="without a header line, columns are numbered 1 to 3"):
        await import_leads(db, source, campaign.id, "FR", {"phone": "7"}, no_header=True)
    with pytest.raises(LeadImportError, match="say which column holds the number by its position"):
        await import_leads(db, source, campaign.id, "FR", no_header=True)


def test_numbers_typed_by_the_operator() -> None:
    assert parse_user_number("+33 6 12 34 56 79") == "+33612345679"
    assert parse_user_number("0612345679", "FR") == "+33612345679"
    with pytest.raises(NumberInputError, match=r"'0612345679' is a national number: .*--country"):
        parse_user_number("0612345679")
    with pytest.raises(NumberInputError, match=r"'0612345679x' is not a phone number: 'x'"):
        parse_user_number("0612345679x", "FR")
    with pytest.raises(NumberInputError, match=r"'06123' is not a valid phone number for FR"):
        parse_user_number("06123", "FR")
    with pytest.raises(NumberInputError, match=r"--country 'XX' is not"):
        parse_user_number("0612345679", "XX")


async def test_killed_import_is_repaired_when_the_daemon_starts(
    database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from dialer.domain.campaign import CampaignSettings
    from dialer.runtime.bootstrap import build_runtime
    from dialer.settings import Settings
    from dialer.store.leads_repo import HOST
    from dialer.store.models import utcnow
    from tests.runtime.fakes import FakePbx

    db = Database(database_url)
    await db.connect()
    await db.migrate()
    campaign = await db.campaigns.create(
        "spring", CampaignSettings(dial_string="PJSIP/{number}@trunk", caller_id="+33123456789")
    )
    await import_leads(db, numbers_csv(tmp_path / "a.csv", [1, 2, 3]), campaign.id, "FR")
    gone = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await gone.wait()  # a process of this host that no longer runs: the killed importer
    async with db.engine.begin() as conn:
        await conn.execute(
            text("UPDATE lead_lists SET status = 'importing', imported = 0, import_owner = :owner"),
            {"owner": f"{HOST}:{gone.pid}"},
        )
    await db.close()

    runtime = await build_runtime(Settings(database_url=database_url, node_id="n1"), pbx=FakePbx())
    try:
        caplog.set_level(logging.WARNING, logger="dialer.runtime.bootstrap")
        await runtime.recover(utcnow())
        async with runtime.db.read_session() as s:
            lead_list = (await s.execute(select(LeadList))).scalar_one()
        assert (lead_list.status, lead_list.imported) == ("interrupted", 3)
        assert (
            "lead list 1 (a.csv) was left 'importing' by an import that stopped; now 'interrupted' "
            "with its 3 leads" in caplog.text
        )
    finally:
        await runtime.close()


@pytest.mark.parametrize("raw", ["'0612345678", "Tel. 06 12 34 56 78", "tél : +33 6 12 34 56 78"])
def test_text_before_a_number_loses_no_digit_and_is_still_accepted(raw: str) -> None:
    assert normalize_number(raw, "FR") == ("+33612345678", ("Europe/Paris",))


def test_values_too_short_to_be_a_number_are_shown_as_written() -> None:
    from dialer.leads.numbers import number_problem

    assert number_problem("n/a", "FR") == "'n/a' is not a valid number for FR"
    assert number_problem("0612 34 56 7", "FR") == "'**** ** 56 7' is not a valid number for FR"
