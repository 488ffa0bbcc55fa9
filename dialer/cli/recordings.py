"""``dialer recordings list|purge``: recorded calls, the retention job by hand (teams: ``dialer teams``)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from dialer.cli import CliError
from dialer.cli.common import add_config_options, run_with_database, settings_of
from dialer.recordings.report import recording_lines
from dialer.recordings.service import Recordings
from dialer.store.db import Database


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "recordings",
        help="list the recorded calls, delete those past their retention",
        description="Recordings are WAV files in [recordings] dir, one per recorded call (<attempt>.wav). "
        "The daemon deletes the files past their campaign's recording_retention_days every hour and "
        "logs each deletion; `purge` does it now.",
    )
    commands = parser.add_subparsers(dest="recordings_command", required=True, metavar="COMMAND")
    listing = commands.add_parser("list", help="the recorded calls, oldest first, with their files' length")
    listing.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    listing.add_argument("--dir", type=Path, help="the recordings folder (default: [recordings] dir)")
    add_config_options(listing)
    listing.set_defaults(handler=_list)
    purge = commands.add_parser("purge", help="delete the files past their campaign's retention now")
    purge.add_argument("--dir", type=Path, help="the recordings folder (default: [recordings] dir)")
    add_config_options(purge)
    purge.set_defaults(handler=_purge)


def _directory(args: argparse.Namespace) -> Path:
    directory: Path = args.dir or settings_of(args).recordings_dir
    if not directory.is_dir():
        raise CliError(f"recordings folder {directory} does not exist: set [recordings] dir or give --dir")
    return directory


def _list(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise CliError("--limit must be at least 1")
    directory = _directory(args)

    async def work(db: Database) -> int:
        lines = await recording_lines(db, directory, args.limit)
        if not lines:
            print("no recorded call")
            return 0
        print(f"{'call':38} {'agent':10} {'talk s':>7} {'file s':>7}  file")
        for line in lines:
            talk = f"{line.talk_seconds:7.1f}" if line.talk_seconds is not None else f"{'-':>7}"
            held = f"{line.file_seconds:7.1f}" if line.file_seconds is not None else f"{'-':>7}"
            note = f"  ({line.problem})" if line.problem else ""
            print(f"{line.attempt_id:38} {line.agent_id or '-':10} {talk} {held}  {line.file}{note}")
        return 0

    return run_with_database(args, work)


def _purge(args: argparse.Namespace) -> int:
    directory = _directory(args)

    async def work(db: Database) -> int:
        deleted = await Recordings(db, directory).purge()
        for d in deleted:
            gone = " (the file was already gone)" if d.reason == "missing" else ""
            age = f"{d.age_days:.0f} days old"
            print(f"deleted {d.file}: call {d.attempt_id}, campaign {d.campaign_id}, {age}{gone}")
        print(f"{len(deleted)} recording(s) deleted")
        return 0

    return run_with_database(args, work)
