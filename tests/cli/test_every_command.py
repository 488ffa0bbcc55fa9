"""Every ``dialer`` command, with --help, with a misspelled option and with a campaign that does not
exist: each answers with a message (or its help), never a traceback."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from dialer.cli import build_parser, main

Leaf = tuple[tuple[str, ...], argparse.ArgumentParser]


def leaves(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[Leaf]:
    found: list[Leaf] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.extend(leaves(sub, (*path, name)))
    return found or [(path, parser)]


COMMANDS = leaves(build_parser())


def _ids() -> list[str]:
    return [" ".join(p) for p, _ in COMMANDS]


def required_args(parser: argparse.ArgumentParser, tmp_path: Path) -> list[str]:
    """Plausible values for what the command requires, so only the thing under test is wrong."""
    csv = tmp_path / "list.csv"
    csv.write_text("phone\n+33612345678\n", encoding="utf-8")
    values = {
        "number": "+33612345678",
        "file": str(csv),
        "registry": "bloctel",
        "screened_on": "2026-11-20",
        "campaign": "nosuch",
        "name": "newcampaign",
        "dial_string": "PJSIP/{digits}@t",
        "caller_id": "+33123456789",
    }
    argv: list[str] = []
    for action in parser._actions:
        if action.option_strings and not action.required:
            continue
        if isinstance(action, argparse._HelpAction) or action.nargs in ("?", "*"):
            continue
        value = values.get(action.dest, "1")
        if action.option_strings:
            argv += [action.option_strings[-1], value]
        else:
            argv.append(value)
    return argv


def takes_campaign(parser: argparse.ArgumentParser) -> bool:
    return any(a.dest == "campaign" for a in parser._actions)


def call(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    text = out + err
    assert "Traceback" not in text and "unexpected error" not in text, text
    return code, text


@pytest.mark.parametrize(("path", "parser"), COMMANDS, ids=_ids())
def test_help_and_a_misspelled_option(
    path: tuple[str, ...], parser: argparse.ArgumentParser, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, text = call(capsys, [*path, "--help"])
    assert code == 0 and "usage: dialer" in text
    code, text = call(capsys, [*path, *required_args(parser, tmp_path), "--campain", "x"])
    assert code == 2 and "unrecognized arguments: --campain" in text


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'dialer.db'}"
    assert main(["migrate", "--db", url]) == 0
    assert (
        main(
            [
                "campaign",
                "create",
                "spring",
                "--dial-string",
                "PJSIP/{digits}@t",
                "--caller-id",
                "+33123456789",
                "--db",
                url,
            ]
        )
        == 0
    )
    return url


CAMPAIGN_COMMANDS = [(p, parser) for p, parser in COMMANDS if takes_campaign(parser)]


def test_the_campaign_commands_are_found() -> None:
    names = {" ".join(p) for p, _ in CAMPAIGN_COMMANDS}
    assert {
        "campaign show",
        "campaign start",
        "dnc add",
        "dnc check",
        "audit",
        "report",
        "leads import",
    } <= names


@pytest.mark.parametrize(
    ("path", "parser"), CAMPAIGN_COMMANDS, ids=[" ".join(p) for p, _ in CAMPAIGN_COMMANDS]
)
def test_a_campaign_that_does_not_exist_is_refused_with_the_list(
    path: tuple[str, ...],
    parser: argparse.ArgumentParser,
    migrated: str,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DIALER_CONFIG", raising=False)
    argv = [*path, *required_args(parser, tmp_path)]
    if "nosuch" not in argv:
        argv += ["--campaign", "nosuch"]
    code, text = call(capsys, [*argv, "--db", migrated])
    assert code == 1 and "no campaign 'nosuch'" in text and "spring (id 1)" in text, text
