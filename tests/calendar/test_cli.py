"""``dialer salespeople`` and ``dialer calendar``: a salesperson added, slots offered, settings loaded."""

from __future__ import annotations

from pathlib import Path

import pytest

from dialer.calendar.travel import CalendarConfig
from dialer.cli import main

CONFIG = Path(__file__).resolve().parents[2] / "config" / "calendar.toml"


def test_the_shipped_calendar_settings_load() -> None:
    config = CalendarConfig.from_toml(CONFIG.read_text(encoding="utf-8"))
    assert config.travel.area_of("92100") == "92" and len(config.travel.times) == 3


def test_salespeople_and_the_calendar_from_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DIALER_CONFIG", raising=False)
    db = ["--db", f"sqlite:///{tmp_path / 'dialer.db'}"]
    assert main(["migrate", *db]) == 0
    assert main(["calendar", "config", str(CONFIG), *db]) == 0
    assert "travel.times 75 <-> 92: 40 min" in capsys.readouterr().out
    add = ["salespeople", "add", "alice", "--name", "Alice", "--email", "alice@example.com"]
    add += [
        "--timezone",
        "Europe/Paris",
        "--home",
        "75001",
        "--areas",
        "75,92",
        "--hours",
        "mon-sun 00:00-23:59",
    ]
    assert main([*add, *db]) == 0
    assert main([*add, *db]) == 1
    assert "exists already" in capsys.readouterr().err
    assert main(["salespeople", "list", *db]) == 0
    assert "alice  Alice  alice@example.com  75001  75,92" in capsys.readouterr().out
    assert main(["calendar", "slots", "75011", "--count", "2", *db]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all("alice  (Alice)" in line for line in lines)
    assert main(["calendar", "slots", "13001", *db]) == 1
    assert "no salesperson covers postcode 13001" in capsys.readouterr().err
    assert main(["salespeople", "set", "alice", "--inactive", *db]) == 0
    assert "inactive" in capsys.readouterr().out
    assert main(["calendar", "appointments", *db]) == 0
    assert "no appointment matches" in capsys.readouterr().out
    assert main(["calendar", "cancel", "7", *db]) == 1
    assert "no appointment 7" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text("[travel]\nspeed_kmh = 0\n", encoding="utf-8")
    assert main(["calendar", "config", str(bad), *db]) == 1
    assert "speed_kmh" in capsys.readouterr().err
