"""``[recordings] dir``: where the dialer reads the PBX's recordings."""

from __future__ import annotations

from pathlib import Path

import pytest

from dialer.settings import SettingsError, parse


def test_the_recordings_folder_is_read_and_defaults_to_asterisks_spool() -> None:
    assert parse({}, env={}).recordings_dir == Path("/var/spool/asterisk/monitor")
    assert parse({"recordings": {"dir": "/srv/rec"}}, env={}).recordings_dir == Path("/srv/rec")


def test_an_unknown_recordings_key_is_named() -> None:
    with pytest.raises(SettingsError, match=r"recordings: unknown key\(s\) path; allowed: dir"):
        parse({"recordings": {"path": "/srv/rec"}}, env={})
