"""`dialer user add|list|disable|passwd`: passwords never on the command line nor echoed."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest

from dialer.cli import main
from dialer.service import Unauthorized
from dialer.service.accounts import Accounts
from dialer.store.db import Database


def _login(url: str, user: str, password: str) -> str:
    async def go() -> str:
        db = Database(url)
        await db.connect()
        try:
            return (await Accounts(db).login(user, password)).user.role.value
        finally:
            await db.close()

    return asyncio.run(go())


def test_user_commands_from_add_to_disable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'dialer.db'}"
    assert main(["migrate", "--db", url]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("first secret\n"))
    assert main(["user", "add", "ana", "--role", "supervisor", "--password-stdin", "--db", url]) == 0
    out = capsys.readouterr()
    assert "first secret" not in out.out + out.err
    assert _login(url, "ana", "first secret") == "supervisor"

    assert main(["user", "list", "--db", url]) == 0
    assert "ana" in capsys.readouterr().out

    monkeypatch.setattr("sys.stdin", io.StringIO("second secret\n"))
    assert main(["user", "passwd", "ana", "--password-stdin", "--db", url]) == 0
    assert _login(url, "ana", "second secret") == "supervisor"

    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["user", "add", "bo", "--password-stdin", "--db", url]) == 1
    assert "at least 8" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert main(["user", "passwd", "ana", "--db", url]) == 1  # no terminal and no --password-stdin
    assert "--password-stdin" in capsys.readouterr().err
    assert main(["user", "disable", "nobody", "--db", url]) == 1
    assert "no user 'nobody'" in capsys.readouterr().err

    assert main(["user", "disable", "ana", "--db", url]) == 0
    with pytest.raises(Unauthorized):
        _login(url, "ana", "second secret")


def _pin_ok(url: str, user: str, pin: str) -> bool:
    async def go() -> bool:
        db = Database(url)
        await db.connect()
        try:
            return await Accounts(db).check_pin(user, pin) is not None
        finally:
            await db.close()

    return asyncio.run(go())


def test_user_pin_sets_the_phone_login_pin_and_refuses_what_a_keypad_cannot_type(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'dialer.db'}"
    assert main(["migrate", "--db", url]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("a long password\n"))
    assert main(["user", "add", "1001", "--password-stdin", "--db", url]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("4321\n"))
    assert main(["user", "pin", "1001", "--pin-stdin", "--db", url]) == 0
    out = capsys.readouterr()
    assert "4321" not in out.out + out.err and "dialing 91001" in out.out
    assert _pin_ok(url, "1001", "4321") and not _pin_ok(url, "1001", "1234")
    assert _login(url, "1001", "a long password") == "agent"  # the password still works
    monkeypatch.setattr("sys.stdin", io.StringIO("12a4\n"))
    assert main(["user", "pin", "1001", "--pin-stdin", "--db", url]) == 1
    assert "4 to 12 digits" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO("1234\n"))
    assert main(["user", "pin", "nobody", "--pin-stdin", "--db", url]) == 1
    assert "no user 'nobody'" in capsys.readouterr().err
