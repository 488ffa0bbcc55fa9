"""``dialer leads list|show|reset|recycle`` and ``leads import --no-header``: leads seen and changed,
numbers masked, errors that say what to do."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

import pytest
from sqlalchemy import update

from dialer.cli import main
from dialer.store.db import Database
from dialer.store.models import Lead

ROOT = str(Path(__file__).resolve().parents[2])
FULL_NUMBER = re.compile(r"\+33\d{9}|0[1-9]\d{8}")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err and "unexpected error" not in err, err
    return code, out, err


def set_status(url: str, status: str, lead_ids: list[int]) -> None:
    async def go() -> None:
        db = Database(url)
        await db.connect()
        try:
            async with db.engine.begin() as conn:
                await conn.execute(
                    update(Lead).where(Lead.id.in_(lead_ids)).values(status=status, attempt_count=3)
                )
        finally:
            await db.close()

    asyncio.run(go())


@pytest.fixture
def spring(database_url: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> str:
    """A migrated database with campaign 'spring' and 4 leads imported from a file without a header."""
    assert run(capsys, "migrate", "--db", database_url)[0] == 0
    create = [
        "campaign",
        "create",
        "spring",
        "--dial-string",
        "PJSIP/{digits}@t",
        "--caller-id",
        "+33123456789",
    ]
    assert run(capsys, *create, "--db", database_url)[0] == 0
    source = tmp_path / "bare.csv"
    source.write_text(
        "Léa;06 12 34 56 01;Paris\nHugo;0612345602;Lyon\nZoé;0612345603;Nice\nNoé;0612345604;Lille\n",
        encoding="utf-8",
    )
    code, out, err = run(capsys, "leads", "import", str(source), "--campaign", "spring", "--db", database_url)
    assert code == 1
    assert "looks like a lead, not column names (column 2 holds a phone number)" in err
    assert "--no-header --map phone=2" in err
    code, out, err = run(
        capsys,
        "leads",
        "import",
        str(source),
        "--campaign",
        "spring",
        "--no-header",
        "--map",
        "phone=2,first_name=1",
        "--db",
        database_url,
    )
    assert code == 0, err
    assert "4 leads imported" in out
    return database_url


def test_list_and_show_mask_numbers_and_name_leads_by_id(
    spring: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "leads", "list", "--campaign", "spring", "--db", spring)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == [
        "ID",
        "NUMBER",
        "STATUS",
        "TRIES",
        "NEXT",
        "(UTC)",
        "LAST",
        "CONSENT",
        "LIST",
        "NAME",
    ]
    assert lines[1].split()[:4] == ["1", "+33******601", "new", "0"] and lines[1].endswith("Léa")
    assert len(lines) == 5 and not FULL_NUMBER.search(out)

    code, out, err = run(capsys, "leads", "list", "--campaign", "1", "--limit", "2", "--db", spring)
    assert len(out.splitlines()) == 3 and "more leads follow: add --after 2" in err
    code, out, _ = run(capsys, "leads", "list", "--campaign", "spring", "--after", "2", "--db", spring)
    assert [line.split()[0] for line in out.splitlines()[1:]] == ["3", "4"]
    code, _, err = run(capsys, "leads", "list", "--campaign", "spring", "--status", "lost", "--db", spring)
    assert code == 1 and "--status 'lost' is not a lead status; one of: new, retry" in err

    code, out, _ = run(capsys, "leads", "show", "2", "--db", spring)
    assert code == 0 and not FULL_NUMBER.search(out)
    assert re.search(r"^lead +2$", out, re.M) and re.search(r"^number +\+33\*\*\*\*\*\*602$", out, re.M)
    assert re.search(r"^campaign +spring \(id 1\)$", out, re.M)
    assert re.search(r"^consent +not recorded$", out, re.M)
    assert re.search(r"^extra: column 3 +Lyon$", out, re.M)
    assert re.search(r"^time zones +Europe/Paris \(from the number\)$", out, re.M)
    code, _, err = run(capsys, "leads", "show", "99", "--db", spring)
    assert code == 1 and "no lead with id 99; `dialer leads list --campaign NAME` shows them" in err


def test_reset_and_recycle_refuse_what_must_not_be_dialed(
    spring: str, capsys: pytest.CaptureFixture[str]
) -> None:
    set_status(spring, "exhausted", [1, 2])
    set_status(spring, "do_not_call", [3])
    code, _, err = run(capsys, "leads", "reset", "1", "3", "77", "--db", spring)
    assert code == 1
    assert (
        "nothing was reset: lead 77: no such lead; lead 3 (do_not_call): the person asked not to be called"
        in err
    )
    code, out, _ = run(capsys, "leads", "reset", "1", "--db", spring)
    assert code == 0 and out == "1 lead(s) back to new, due now, with no attempt counted: 1\n"
    code, out, _ = run(capsys, "leads", "list", "--campaign", "spring", "--status", "new", "--db", spring)
    assert [line.split()[:4] for line in out.splitlines()[1:]] == [
        ["1", "+33******601", "new", "0"],
        ["4", "+33******604", "new", "0"],
    ]

    code, _, err = run(
        capsys, "leads", "recycle", "--campaign", "spring", "--status", "do_not_call", "--db", spring
    )
    assert (
        code == 1 and "leads that are do_not_call cannot be recycled; recyclable statuses: exhausted" in err
    )
    code, out, _ = run(capsys, "leads", "recycle", "--campaign", "spring", "--db", spring)
    assert code == 0 and out.startswith("1 exhausted lead(s) of campaign spring back in the list")
    code, out, _ = run(capsys, "leads", "list", "--campaign", "spring", "--status", "retry", "--db", spring)
    assert [line.split()[:4] for line in out.splitlines()[1:]] == [["2", "+33******602", "retry", "0"]]


def test_an_unexpected_error_is_one_line_without_the_full_number(
    spring: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from dialer.store.leads_repo import LeadAdmin

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("lead +33612345601 (06 12 34 56 01) broke")

    monkeypatch.setattr(LeadAdmin, "lead", broken)
    code = main(["leads", "show", "1", "--db", spring])
    out, err = capsys.readouterr()
    assert code == 70 and "Traceback" not in err
    assert "unexpected error (RuntimeError: lead +33******601 (** ** ** *6 01) broke)" in err


async def test_two_import_commands_at_once_end_cleanly(database_url: str, tmp_path: Path) -> None:
    """Two `dialer leads import` processes into one campaign (on PostgreSQL this ended in a 16 KB
    traceback full of numbers, and the second file was lost)."""

    async def dialer(*argv: str) -> tuple[int, str, str]:
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            "import sys; from dialer.cli import main; sys.exit(main(sys.argv[1:]))",
            *argv,
            "--db",
            database_url,
            env={**os.environ, "PYTHONPATH": ROOT},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await child.communicate()
        assert child.returncode is not None
        return child.returncode, out.decode(), err.decode()

    assert (await dialer("migrate"))[0] == 0
    create = (
        "campaign",
        "create",
        "spring",
        "--dial-string",
        "PJSIP/{digits}@t",
        "--caller-id",
        "+33123456789",
    )
    assert (await dialer(*create))[0] == 0
    files = []
    for name, numbers in (("a.csv", range(0, 40_000)), ("b.csv", range(20_000, 60_000))):
        path = tmp_path / name
        path.write_text("phone\n" + "".join(f"06{n:08d}\n" for n in numbers), encoding="utf-8")
        files.append(path)
    results = await asyncio.gather(
        *(dialer("leads", "import", str(f), "--campaign", "spring", "--quiet") for f in files)
    )
    for code, out, err in results:
        assert code == 0, err
        assert "Traceback" not in err and not FULL_NUMBER.search(out + err), err
    imported = [int(re.match(r"(\d+) leads imported", out).group(1)) for _, out, _ in results]  # type: ignore[union-attr]
    assert sum(imported) == 60_000
    code, out, _ = await dialer("lists", "list")
    rows = sorted(line.split()[2:6] for line in out.splitlines()[1:])  # which list came first varies
    assert rows == [
        ["a.csv", "complete", "enabled", str(imported[0])],
        ["b.csv", "complete", "enabled", str(imported[1])],
    ]
