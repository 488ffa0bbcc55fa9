"""``[seller]`` in dialer.toml: read with the rest, every bad key named."""

from __future__ import annotations

from pathlib import Path

import pytest

from dialer.settings import SettingsError, parse


def test_seller_settings_are_read(tmp_path: Path) -> None:
    template = tmp_path / "confirmation.toml"
    template.write_text("title = 'x'\n", encoding="utf-8")
    raw = {"seller": {"name": "Soleil SARL", "address": "Paris", "timezone": "Europe/London"}}
    raw["seller"]["confirmation_template"] = "confirmation.toml"
    seller = parse(raw, {}, path=tmp_path / "dialer.toml").seller
    assert (seller.name, seller.address, seller.timezone) == ("Soleil SARL", "Paris", "Europe/London")
    assert seller.confirmation_template == template
    assert parse({}, {}).seller.name == ""  # no [seller]: a sale is refused until it is set


def test_bad_seller_keys_are_named() -> None:
    with pytest.raises(SettingsError) as caught:
        parse(
            {"seller": {"nmae": "x", "timezone": "Mars/Olympus", "confirmation_template": "/nope.toml"}}, {}
        )
    problems = " ".join(caught.value.problems)
    assert "unknown key(s) nmae" in problems and "'Mars/Olympus' is not a known time zone" in problems
    assert "/nope.toml does not exist" in problems
