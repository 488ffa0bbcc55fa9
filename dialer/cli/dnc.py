"""``dialer dnc``: add, remove, check numbers on the do-not-call lists; import national registries."""

from __future__ import annotations

import argparse
import asyncio
import csv
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dialer.cli import CliError
from dialer.compliance.cli_support import add_store_options, open_stores, parse_day, parse_instant
from dialer.compliance.dnc import GLOBAL, DncInputError
from dialer.compliance.profiles import parse_duration
from dialer.domain.compliance import ProfileError
from telephony.base import mask_number


def register(subparsers: Any) -> None:
    dnc = subparsers.add_parser("dnc", help="do-not-call lists and national registries")
    commands = dnc.add_subparsers(dest="dnc_command", metavar="ACTION", required=True)

    add = commands.add_parser("add", help="put a number on the global list or a campaign's list")
    add.add_argument("number", help="E.164 number, e.g. +33612345678")
    add.add_argument("--campaign", help="only for this campaign (default: every campaign)")
    add.add_argument("--source", default="cli", help="who or what asked (kept with the entry)")
    add.add_argument("--expires", help="end of the entry: a date, a date-time or a duration such as 90d")
    add.set_defaults(handler=_add)

    remove = commands.add_parser("remove", help="take a number off a list (the entry is kept as removed)")
    remove.add_argument("number")
    remove.add_argument("--campaign")
    remove.add_argument("--by", default="cli", help="who removed it")
    remove.set_defaults(handler=_remove)

    check = commands.add_parser("check", help="on which lists is a number")
    check.add_argument("number")
    check.add_argument("--campaign")
    check.set_defaults(handler=_check)

    imp = commands.add_parser("import", help="load a registry file (one number a line)")
    imp.add_argument("file", type=Path)
    imp.add_argument(
        "--registry", required=True, help="bloctel, tps, us_dnc, ca_dncl, au_dncr or a custom one"
    )
    imp.add_argument("--screened-on", required=True, help="the day the list was downloaded (YYYY-MM-DD)")
    imp.set_defaults(handler=_import)

    status = commands.add_parser("status", help="registries: screening day, age and whether they are stale")
    status.set_defaults(handler=_status)

    sync = commands.add_parser("sync", help="rebuild the Redis DNC index from the database")
    sync.set_defaults(handler=_sync)

    for parser in (add, remove, check, imp, status, sync):
        add_store_options(parser)


def _scope(args: argparse.Namespace) -> str:
    return str(args.campaign) if args.campaign else GLOBAL


def _expiry(text: str | None) -> datetime | None:
    if text is None:
        return None
    if text[-1:] in ("d", "h", "m") and text[:-1].isdigit():
        try:
            return datetime.now(UTC) + parse_duration(text, "--expires")
        except ProfileError as exc:
            raise CliError(str(exc)) from exc
    return parse_instant(text, "--expires")


def _run(coro: Any) -> int:
    try:
        result: int = asyncio.run(coro)
    except DncInputError as exc:
        raise CliError(str(exc)) from exc
    return result


def _add(args: argparse.Namespace) -> int:
    async def go() -> int:
        async with open_stores(args) as stores:
            await stores.dnc.add(args.number, _scope(args), args.source, _expiry(args.expires))
        print(f"{mask_number(args.number)} added to the {_scope(args)} do-not-call list")
        return 0

    return _run(go())


def _remove(args: argparse.Namespace) -> int:
    async def go() -> int:
        async with open_stores(args) as stores:
            count = await stores.dnc.remove(args.number, _scope(args), args.by)
        if count == 0:
            print(f"{mask_number(args.number)} was not on the {_scope(args)} list")
            return 1
        print(f"{mask_number(args.number)} removed from the {_scope(args)} list")
        return 0

    return _run(go())


def _check(args: argparse.Namespace) -> int:
    async def go() -> int:
        async with open_stores(args) as stores:
            hits = await stores.dnc.check(args.number, args.campaign or "")
        now = datetime.now(UTC)
        live = [h for h in hits if h.expires_at is None or h.expires_at > now]
        if not live:
            print(f"{mask_number(args.number)}: not on any do-not-call list")
            return 0
        for hit in live:
            until = f" until {hit.expires_at.isoformat()}" if hit.expires_at else ""
            print(f"{mask_number(args.number)}: {hit.scope} (source {hit.source}){until}")
        return 3  # listed: scripts can test the exit code

    return _run(go())


def _import(args: argparse.Namespace) -> int:
    screened_on = parse_day(args.screened_on, "--screened-on")
    if not args.file.is_file():
        raise CliError(f"{args.file} is not a file; give the registry's plain number list")

    async def go() -> int:
        async with open_stores(args) as stores:
            report = await stores.dnc.import_registry(args.file, args.registry, screened_on)
        print(f"registry {report.registry}: {report.numbers} numbers loaded, screened on {screened_on}")
        if report.rejected:
            rejects = args.file.with_name(args.file.name + ".rejects.csv")
            with rejects.open("w", newline="", encoding="utf-8") as fh:
                writer = csv.writer(fh)
                writer.writerow(["line", "text", "why"])
                for line, text in report.rejected:
                    writer.writerow([line, text, "not a number of this registry's country"])
            print(f"{len(report.rejected)} lines were not numbers of this registry; written to {rejects}")
        return 0

    return _run(go())


def _status(args: argparse.Namespace) -> int:
    async def go() -> int:
        async with open_stores(args) as stores:
            status = await stores.dnc.registry_status()
            rules = stores.profiles.registries
        today = datetime.now(UTC).date()
        stale = 0
        for name in sorted(rules):
            screened = status.get(name)
            if screened is None:
                print(f"{name:10} never imported (calls to {', '.join(rules[name].regions)} are blocked)")
                stale += 1
                continue
            age = (today - screened).days
            left = rules[name].max_age_days - age
            state = "STALE, re-import" if left < 0 else f"valid {left} more day(s)"
            stale += left < 0
            print(
                f"{name:10} screened {screened} ({age} days ago, limit {rules[name].max_age_days}): {state}"
            )
        return 0 if not stale else 4

    return _run(go())


def _sync(args: argparse.Namespace) -> int:
    async def go() -> int:
        async with open_stores(args) as stores:
            if stores.dnc.redis_index is None:
                raise CliError("no Redis configured; give --redis or set DIALER_REDIS_URL")
            await stores.dnc.sync_redis()
        print("Redis DNC index rebuilt from the database")
        return 0

    return _run(go())
