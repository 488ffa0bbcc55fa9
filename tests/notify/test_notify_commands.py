"""``dialer notify list|show|retry|mailed`` on a real record: what the operator sees and can do."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import update

from dialer.cli import main
from dialer.notify.messages import Notification, Status
from dialer.store.db import Database
from tests.notify.helpers import queue


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err and "unexpected error" not in err, err
    return code, out, err


@pytest.fixture
def record(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'dialer.db'}"

    async def fill() -> None:
        async with Database(url) as db:
            await db.migrate()
            await queue(db, "bob@example.org", body="Call us back on +33612345678.")
            await queue(db, "+33612345678", channel="sms")
            await queue(db, "Ann Smith, 1 High St, Leeds", channel="post")
            async with db.session() as s, s.begin():
                await s.execute(
                    update(Notification)
                    .where(Notification.id == 1)
                    .values(status=Status.FAILED.value, attempts=8, last_error="gave up after 8 tries: down")
                )

    asyncio.run(fill())
    return url


def test_list_shows_each_message_masked_and_filters(record: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "notify", "list", "--db", record)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["ID", "CREATED", "(UTC)"]
    assert [line.split()[0] for line in lines[1:]] == ["3", "2", "1"]  # newest first
    assert (
        "b***@example.org" in out
        and "+33******678" in out
        and "bob@" not in out
        and "+33612345678" not in out
    )
    assert "gave up after 8 tries" in out
    _, failed, _ = run(capsys, "notify", "list", "--status", "failed", "--db", record)
    assert [line.split()[0] for line in failed.splitlines()[1:]] == ["1"]
    _, post, _ = run(capsys, "notify", "list", "--channel", "post", "--db", record)
    assert [line.split()[0] for line in post.splitlines()[1:]] == ["3"]


def test_show_retry_and_mailed(record: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "notify", "show", "1", "--db", record)
    assert code == 0 and "status: failed" in out and "Call us back on +33******678." in out

    assert run(capsys, "notify", "retry", "1", "--db", record)[0] == 0
    _, pending, _ = run(capsys, "notify", "list", "--status", "pending", "--db", record)
    assert [line.split()[0] for line in pending.splitlines()[1:]] == ["2", "1"]
    code, _, err = run(capsys, "notify", "retry", "1", "--db", record)
    assert code == 1 and "is pending, not failed" in err

    code, _, err = run(capsys, "notify", "mailed", "2", "--db", record)
    assert code == 1 and "only a letter waiting to be posted" in err
    assert run(capsys, "notify", "mailed", "3", "--db", record)[0] == 0
    _, mailed, _ = run(capsys, "notify", "list", "--status", "mailed", "--db", record)
    assert [line.split()[0] for line in mailed.splitlines()[1:]] == ["3"]
    code, _, err = run(capsys, "notify", "show", "99", "--db", record)
    assert code == 1 and "no notification 99" in err
