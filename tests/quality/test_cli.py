"""``dialer scripts``, ``dialer complaints``, ``dialer teams`` and the scorecards of ``dialer report``."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dialer.cli import main
from dialer.quality import evaluations as ev
from dialer.store.db import Database
from tests.quality.helpers import add_users, call, campaign

PERSON = {
    "brand_and_town": "yes",
    "agent_introduced": "yes",
    "customer_by_name": "yes",
    "budget_asked": "no",
    "usage_asked": "yes",
    "test_drive_offered": "na",
}


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite: the commands' own code paths; the record's queries are covered on both backends."""
    return f"sqlite+aiosqlite:///{tmp_path / 'dialer.db'}"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


async def _evaluated_call(url: str) -> str:
    async with Database(url) as db:
        await db.migrate()
        now = datetime.now(UTC) - timedelta(hours=1)
        cid = await campaign(db, "spring", now)
        attempt = await call(db, cid, "ag1", now, "sale", identity={"first_name": "Ann"})
        await ev.evaluate(db, "sup", "supervisor", attempt, "phone_contact", ev.answers_from(PERSON), now)
        return attempt


async def _with_db(url: str, work: Callable[[Database], Awaitable[None]]) -> None:
    async with Database(url) as db:
        await work(db)


def test_scripts_complaints_teams_and_the_agent_scorecards(
    capsys: pytest.CaptureFixture[str], database_url: str, tmp_path: Path
) -> None:
    attempt = asyncio.run(_evaluated_call(database_url))
    db = ("--db", database_url)

    script = tmp_path / "script.toml"
    script.write_text('opening = "Hello {customer_name}, {agent_name} here."\nproduct = "Model 3"\n')
    code, out, _ = run(capsys, "scripts", "edit", "spring", "--from", str(script), *db)
    assert code == 0 and "script version 1 saved" in out
    code, out, _ = run(capsys, "scripts", "show", "spring", *db)
    assert code == 0 and "Hello {customer_name}, {agent_name} here." in out and "Model 3" in out
    script.write_text('opening = "Hi {nom}"\n')
    code, _, err = run(capsys, "scripts", "edit", "spring", "--from", str(script), *db)
    assert code == 1 and "unknown placeholder(s) {nom}" in err

    code, out, _ = run(
        capsys, "complaints", "add", "--complainant", "Ann Lee", "--what", "Rude", "--call", attempt,
        "--channel", "email", "--contact", "ann@example.org", *db,
    )  # fmt: skip
    assert code == 0 and "complaint 1 recorded" in out
    code, _, err = run(capsys, "complaints", "answer", "1", "--text", "Sorry", *db)
    assert code == 1 and "is open: you can assign" in err
    assert run(capsys, "complaints", "assign", "1", "--to", "sup", *db)[0] == 0
    assert run(capsys, "complaints", "investigate", "1", "--text", "Heard it", *db)[0] == 0
    code, out, _ = run(capsys, "complaints", "answer", "1", "--text", "Sorry", *db)
    assert code == 0 and "answered; the answer is queued as message" in out
    code, out, _ = run(capsys, "complaints", "list", *db)
    assert code == 0 and "Ann Lee" in out and "0 complaint(s) past their deadline" in out

    code, _, err = run(capsys, "teams", "set", "ag1", "north", *db)
    assert code == 1 and "there is no user 'ag1'" in err
    asyncio.run(_with_db(database_url, lambda db: add_users(db, "ag1")))
    assert run(capsys, "teams", "set", "ag1", "north", *db)[0] == 0
    code, out, _ = run(capsys, "teams", "list", *db)
    assert code == 0 and "ag1" in out and "north" in out

    code, out, _ = run(capsys, "report", "--by", "agent", *db)
    assert code == 0 and "agent scorecards" in out
    lines = out.splitlines()
    cards = lines[next(i for i, x in enumerate(lines) if x.startswith("agent scorecards")) :]
    line = next(x for x in cards if x.startswith("ag1"))
    cells = line.split()
    # agent calls contacts sales appointments talk wrap pause abandoned disp rec evals avg trend complaints
    assert cells[1:5] == ["1", "1", "1", "0"]
    # Person items: 6 of 8 weighted yes; the record says no appointment, no follow-up, no email: 0 of 6.
    assert cells[11:13] == ["1", "42.9"] and cells[-1] == "1"
