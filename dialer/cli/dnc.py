"""``dialer dnc``: add, remove, check numbers on the do-not-call lists; import national registries."""

from __future__ import annotations

import argparse
import asyncio
import csv
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from redis.exceptions import RedisError

from dialer.cli import CliError
from dialer.cli.common import resolve_campaign
from dialer.compliance.cli_support import (
    Stores,
    add_store_options,
    open_stores,
    parse_day,
    parse_instant,
    redis_down,
)
from dialer.compliance.dnc import GLOBAL, DncInputError
from dialer.compliance.profiles import parse_duration
from dialer.domain.compliance import ProfileError
from dialer.leads.numbers import NumberInputError, parse_user_number
from telephony.base import mask_number


def register(subparsers: Any) -> None:
    dnc = subparsers.add_parser("dnc", help="do-not-call lists and national registries")
    commands = dnc.add_subparsers(dest="dnc_command", metavar="ACTION", required=True)

    add = commands.add_parser("add", help="put a number on the global list or a campaign's list")
    add.add_argument("number", help="+33612345678, or a national number with --country FR")
    add.add_argument("--campaign", help="only for this campaign, by name or id (default: every campaign)")
    add.add_argument("--source", default="cli", help="who or what asked (kept with the entry)")
    add.add_argument("--expires", help="end of the entry: a date, a date-time or a duration such as 90d")
    add.set_defaults(handler=_add)

    remove = commands.add_parser("remove", help="take a number off a list (the entry is kept as removed)")
    remove.add_argument("number")
    remove.add_argument("--campaign", help="the campaign's list, by name or id (default: the global list)")
    remove.add_argument("--by", default="cli", help="who removed it")
    remove.set_defaults(handler=_remove)

    check = commands.add_parser("check", help="on which lists is a number")
    check.add_argument("number")
    check.add_argument("--campaign", help="also this campaign's list, by name or id")
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

    for parser in (add, remove, check):
        parser.add_argument("--country", help="country of a national number, e.g. FR for 0612345678")
    for parser in (add, remove, check, imp, status, sync):
        add_store_options(parser)


def _number(args: argparse.Namespace) -> str:
    """The E.164 form of the number typed; errors echo it (it is the operator's own input)."""
    try:
        return parse_user_number(args.number, args.country)
    except NumberInputError as exc:
        raise CliError(str(exc)) from None


async def _scope(stores: Stores, args: argparse.Namespace) -> tuple[str, str]:
    """(scope the store keys the entry by, how to name the list): campaigns are kept by id."""
    if not args.campaign:
        return GLOBAL, "global do-not-call list"
    campaign = await resolve_campaign(stores.database, args.campaign)
    return str(campaign.id), f"do-not-call list of campaign {campaign.name} (id {campaign.id})"


async def _redis_first(stores: Stores) -> None:
    """Refuse before writing anything when Redis is configured and down."""
    if stores.redis is None:
        return
    try:
        await stores.redis.ping()
    except (RedisError, OSError) as exc:
        raise CliError(f"{redis_down(stores.settings, exc)}; nothing was written") from None


def _half_written(stores: Stores, what: str, exc: BaseException) -> CliError:
    return CliError(
        f"{what} in the database, but Redis at {stores.settings.redis_url} failed "
        f"({type(exc).__name__}: {exc}); a running dialer node copies it into Redis when Redis answers "
        "again, or run `dialer dnc sync` then"
    )


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
    args.number = _number(args)

    async def go() -> int:
        async with open_stores(args) as stores:
            scope, label = await _scope(stores, args)
            expires = _expiry(args.expires)
            await _redis_first(stores)
            try:
                await stores.dnc.add(args.number, scope, args.source, expires)
            except (RedisError, OSError) as exc:
                raise _half_written(
                    stores, f"{mask_number(args.number)} was added to the {label}", exc
                ) from None
        print(f"{mask_number(args.number)} added to the {label}")
        return 0

    return _run(go())


def _remove(args: argparse.Namespace) -> int:
    args.number = _number(args)

    async def go() -> int:
        async with open_stores(args) as stores:
            scope, label = await _scope(stores, args)
            await _redis_first(stores)
            try:
                count = await stores.dnc.remove(args.number, scope, args.by)
            except (RedisError, OSError) as exc:
                raise _half_written(
                    stores, f"{mask_number(args.number)} was taken off the {label}", exc
                ) from None
        if count == 0:
            print(f"{mask_number(args.number)} was not on the {label}")
            return 1
        print(f"{mask_number(args.number)} removed from the {label}")
        return 0

    return _run(go())


def _check(args: argparse.Namespace) -> int:
    args.number = _number(args)

    async def go() -> int:
        async with open_stores(args) as stores:
            scope, _ = await _scope(stores, args)
            hits = await stores.dnc.check(args.number, "" if scope == GLOBAL else scope)
            names = {str(c.id): c.name for c in await stores.database.campaigns.list()}
        now = datetime.now(UTC)
        live = [h for h in hits if h.expires_at is None or h.expires_at > now]
        if not live:
            print(f"{mask_number(args.number)}: not on any do-not-call list")
            return 0
        for hit in live:
            until = f" until {hit.expires_at.isoformat()}" if hit.expires_at else ""
            where = hit.scope
            campaign_id = where.removeprefix("campaign ")
            if where.startswith("campaign ") and campaign_id in names:
                where = f"campaign {names[campaign_id]} (id {campaign_id})"
            print(f"{mask_number(args.number)}: {where} (source {hit.source}){until}")
        return 3  # listed: scripts can test the exit code

    return _run(go())


def _import(args: argparse.Namespace) -> int:
    screened_on = parse_day(args.screened_on, "--screened-on")
    if not args.file.is_file():
        raise CliError(f"{args.file} is not a file; give the registry's plain number list")

    async def go() -> int:
        async with open_stores(args) as stores:
            await _redis_first(stores)
            try:
                report = await stores.dnc.import_registry(args.file, args.registry, screened_on)
            except (RedisError, OSError) as exc:
                raise _half_written(stores, f"registry {args.registry} was imported", exc) from None
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
