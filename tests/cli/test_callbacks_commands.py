"""``dialer callbacks list|reassign``: booked callbacks seen (numbers masked) and given to another agent."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dialer.cli import main
from dialer.store.db import Database
from dialer.store.models import Callback, User


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err and "unexpected error" not in err, err
    return code, out, err


def add_rows(url: str, *rows: object) -> None:
    async def go() -> None:
        db = Database(url)
        await db.connect()
        try:
            async with db.session() as s, s.begin():
                s.add_all(rows)
        finally:
            await db.close()

    asyncio.run(go())


@pytest.fixture
def booked(database_url: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> str:
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
    add_rows(
        database_url,
        Callback(
            lead_id=1,
            campaign_id=1,
            due_at=datetime(2026, 12, 5, 9, 30, tzinfo=UTC),
            agent_id="a1",
            status="pending",
            created_by="a1",
        ),
        Callback(
            lead_id=2,
            campaign_id=1,
            due_at=datetime(2026, 12, 4, 9, 0, tzinfo=UTC),
            agent_id=None,
            status="dialed",
            created_by="a2",
        ),
    )
    return database_url


def test_callbacks_list_masks_numbers(booked: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "callbacks", "list", "--db", booked)
    rows = [line.split() for line in out.splitlines()]
    assert rows[0] == ["ID", "DUE", "(UTC)", "AGENT", "LEAD", "NUMBER", "CAMPAIGN", "STATUS", "BOOKED", "BY"]
    assert rows[1:] == [["1", "2026-12-05", "09:30", "a1", "1", "+33******601", "1", "pending", "a1"]]
    assert not re.search(r"\+33\d{9}", out)
    code, out, _ = run(capsys, "callbacks", "list", "--all", "--campaign", "spring", "--db", booked)
    assert [line.split()[0] for line in out.splitlines()[1:]] == ["2", "1"]  # soonest first
    code, _, err = run(capsys, "callbacks", "list", "--agent", "a9", "--db", booked)
    assert code == 0 and "no callback matches (pending ones; --all shows every one)" in err


def test_reassign_a_pending_callback(booked: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "callbacks", "reassign", "1", "--agent", "a2", "--db", booked)
    assert code == 0 and out == "callback 1: a1 -> a2\n"
    code, out, _ = run(capsys, "callbacks", "list", "--agent", "a2", "--db", booked)
    assert out.splitlines()[1].split()[3] == "a2"
    code, out, _ = run(capsys, "callbacks", "reassign", "1", "--any", "--db", booked)
    assert out == "callback 1: a2 -> any agent\n"

    code, _, err = run(capsys, "callbacks", "reassign", "1", "--db", booked)
    assert code == 1 and "say who takes the callback: --agent AGENT_ID, or --any" in err
    code, _, err = run(capsys, "callbacks", "reassign", "2", "--agent", "a1", "--db", booked)
    assert code == 1 and "callback 2 is dialed: only a pending callback can be reassigned" in err
    code, _, err = run(capsys, "callbacks", "reassign", "7", "--agent", "a1", "--db", booked)
    assert code == 1 and "no callback with id 7; `dialer callbacks list` shows them" in err
    # Once agents are registered, an unknown one is refused with the list.
    add_rows(booked, User(id="a1", name="Ana", role="agent"), User(id="b2", name="Bob", role="agent"))
    code, _, err = run(capsys, "callbacks", "reassign", "1", "--agent", "zz", "--db", booked)
    assert code == 1 and "no agent 'zz'; agents are: a1, b2" in err
