"""The daemon refuses a bad config with a message naming the key."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from dialer.settings import SettingsError, load, parse

SHIPPED = Path(__file__).resolve().parents[1] / "config" / "dialer.toml"


def test_shipped_example_parses_with_the_secret_from_the_environment():
    data = tomllib.loads(SHIPPED.read_text())
    settings = parse(data, env={"DIALER_MAIN_SECRET": "s3cret"})
    (pbx,) = settings.pbxs
    assert pbx.kind == "asterisk" and pbx.secret == "s3cret" and pbx.max_lines == 60
    assert "s3cret" not in repr(pbx)


def test_unknown_key_is_named():
    with pytest.raises(SettingsError, match=r"pacing: unknown key\(s\) tick"):
        parse({"pacing": {"tick": 1}}, env={})


def test_wrong_type_is_named():
    with pytest.raises(SettingsError, match=r"pbx.main.port: expected int"):
        parse({"pbx": {"main": {"type": "asterisk", "secret": "x", "port": "5038"}}}, env={})


def test_missing_secret_says_how_to_give_one():
    with pytest.raises(SettingsError, match="DIALER_MAIN_SECRET"):
        parse({"pbx": {"main": {"type": "asterisk"}}}, env={})


def test_unsupported_database_url_says_what_to_use():
    with pytest.raises(SettingsError, match=r"database\.url"):
        parse({"database": {"url": "mysql://x"}}, env={})


def test_missing_file_says_where_the_example_is(tmp_path):
    with pytest.raises(SettingsError, match=r"copy config/dialer\.toml"):
        load(tmp_path / "nope.toml")


def test_invalid_toml_is_reported(tmp_path):
    bad = tmp_path / "d.toml"
    bad.write_text("[pbx\n")
    with pytest.raises(SettingsError, match="not valid TOML"):
        load(bad)


def test_database_url_rule_is_flag_then_file_then_environment_then_default(tmp_path):
    from dialer.settings import DEFAULT_DATABASE_URL, resolve

    config = tmp_path / "dialer.toml"
    db = tmp_path / "x.db"
    config.write_text(f'[database]\nurl = "sqlite:///{db}"\n[pbx.main]\ntype = "asterisk"\n')
    env = {"DIALER_DATABASE_URL": "postgresql://x/y"}
    assert resolve(config, env={}).database_url == f"sqlite+aiosqlite:///{db}"  # no secret needed
    assert resolve(config, env=env).database_url == f"sqlite+aiosqlite:///{db}"
    assert resolve(config, env=env, database_url="postgres://a/b").database_url == "postgresql+asyncpg://a/b"
    bare = tmp_path / "bare.toml"
    bare.write_text("[node]\nid = 'n2'\n")
    assert resolve(bare, env=env).database_url == "postgresql+asyncpg://x/y"
    assert (
        resolve(bare, env={}).database_url
        == DEFAULT_DATABASE_URL
        == "sqlite+aiosqlite:////var/lib/dialer/dialer.db"
    )


def test_dialer_migrate_with_config_creates_the_schema(tmp_path):
    from dialer.cli import main

    db = tmp_path / "x.db"
    config = tmp_path / "dialer.toml"
    config.write_text(f'[database]\nurl = "sqlite+aiosqlite:///{db}"\n')
    assert main(["migrate", "--config", str(config)]) == 0
    assert db.exists() and db.stat().st_size > 0
    assert main(["migrate", "--config", str(tmp_path / "missing.toml")]) == 1


def test_a_relative_sqlite_path_in_the_file_is_beside_the_file_not_in_the_current_folder(
    tmp_path, monkeypatch
):
    from dialer.settings import resolve

    config = tmp_path / "etc" / "dialer.toml"
    config.parent.mkdir()
    config.write_text('[database]\nurl = "sqlite:///state/dialer.db"\n')
    for folder in (tmp_path, config.parent):
        monkeypatch.chdir(folder)
        assert resolve(config, env={}).database_url == f"sqlite+aiosqlite:///{config.parent}/state/dialer.db"


def test_every_problem_of_a_file_is_named_at_once(tmp_path):
    config = tmp_path / "dialer.toml"
    config.write_text('[node]\nname = "x"\n[logging]\nlevel = "LOUD"\n[metrics]\nport = "9108"\n')
    with pytest.raises(SettingsError) as caught:
        load(config, env={})
    assert len(caught.value.problems) == 4  # node.name, logging.level, metrics.port, no [pbx.*]
    assert "4 problems" in str(caught.value) and "no [pbx.<name>] table" in str(caught.value)
