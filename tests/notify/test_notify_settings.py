"""``[notify]`` in dialer.toml: every bad key named, secrets from files and never shown."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from dialer.settings import SettingsError, parse


def test_notify_settings_with_secret_files(tmp_path: Path) -> None:
    (tmp_path / "smtp").write_text("mail pass\n")
    (tmp_path / "sms").write_text("tok\n")
    settings = parse(
        {
            "notify": {
                "max_attempts": 5,
                "smtp": {
                    "host": "mail.example.com",
                    "from": "rdv@example.com",
                    "username": "rdv",
                    "password_file": str(tmp_path / "smtp"),
                },
                "sms": {
                    "url": "https://sms.example.com/send?to={to}",
                    "auth": "bearer",
                    "token_file": str(tmp_path / "sms"),
                    "success_statuses": [200],
                },
            }
        },
        env={},
    )
    notify = settings.notify
    assert notify is not None and notify.smtp is not None and notify.sms is not None
    assert (notify.max_attempts, notify.smtp.port, notify.smtp.starttls) == (5, 587, True)
    assert (notify.smtp.password, notify.sms.token, notify.sms.success_statuses) == (
        "mail pass",
        "tok",
        (200,),
    )
    assert "mail pass" not in repr(settings) and "tok'" not in repr(settings)
    assert parse({}, env={}).notify is None  # no [notify]: no worker


def test_notify_settings_name_every_bad_key() -> None:
    with pytest.raises(SettingsError) as caught:
        parse(
            {
                "notify": {
                    "max_attempts": 0,
                    "colour": "blue",
                    "smtp": {"host": "", "from": "nobody", "port": 70000, "tls": True},
                    "sms": {"url": "ftp://x", "auth": "digest", "fields": {"to": "{phone}"}},
                }
            },
            env={},
        )
    text = str(caught.value)
    for expected in (
        "notify: unknown key(s) colour",
        "notify.max_attempts",
        "notify.smtp.host",
        "notify.smtp.from",
        "notify.smtp.port",
        "notify.smtp: starttls and tls are exclusive",
        "notify.sms.url",
        "notify.sms.auth",
        "notify.sms.fields.to",
    ):
        assert expected in text, expected


def test_smtp_password_from_the_environment_and_login_without_password_refused() -> None:
    table = {"notify": {"smtp": {"host": "m", "from": "a@b.c", "username": "u"}}}
    settings = parse(table, env={"DIALER_SMTP_PASSWORD": "envpw"})
    assert settings.notify is not None and settings.notify.smtp is not None
    assert settings.notify.smtp.password == "envpw"
    with pytest.raises(SettingsError, match="username without a password"):
        parse(table, env={})


def test_the_commented_example_in_the_shipped_config_is_valid(tmp_path: Path) -> None:
    text = (Path(__file__).resolve().parents[2] / "config" / "dialer.toml").read_text(encoding="utf-8")
    block = text[text.index("# [notify]\n") :]
    lines = []
    for line in block.splitlines():  # the commented block, up to the next section
        if not line.startswith("#"):
            break
        if line.startswith("# "):
            lines.append(line[2:])
    (tmp_path / "smtp-password").write_text("pw")
    (tmp_path / "sms-token").write_text("tok")
    example = "\n".join(lines).replace("/etc/dialer/", f"{tmp_path}/")
    settings = parse(tomllib.loads(example), env={})
    assert (
        settings.notify is not None and settings.notify.sms is not None and settings.notify.smtp is not None
    )
    assert settings.notify.sms.fields[-1] == ("reference", "{message_id}")
    assert settings.notify.smtp.password == "pw"


def test_check_config_says_where_messages_go(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from dialer.cli import main

    path = tmp_path / "dialer.toml"
    path.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path}/d.db"\n'
        '[pbx.main]\ntype = "asterisk"\nsecret = "ami"\n'
        '[notify.smtp]\nhost = "mail.example.com"\nfrom = "rdv@example.com"\n'
        'username = "rdv"\npassword = "pw"\n'
        '[notify.sms]\nurl = "https://sms.example.com/send"\n',
        encoding="utf-8",
    )
    assert main(["check-config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "notify    email via mail.example.com:587 (STARTTLS, login); SMS via POST sms.example.com" in out
    assert "pw" not in out.replace("profiles", "")
