"""``dialer salespeople add|list|set``: the field salespeople the calendar books visits for."""

from __future__ import annotations

import argparse
from typing import Any

from dialer.calendar.model import format_hours
from dialer.cli import CliError
from dialer.cli.common import add_config_options, run_with_database
from dialer.service import ServiceError
from dialer.service.calendar import CalendarService
from dialer.store.db import Database


def _table(rows: list[tuple[str, ...]]) -> None:  # header first
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def _fields(args: argparse.Namespace) -> dict[str, Any]:
    """What `add` and `set` both take from the command line (None where `set` leaves a field as it is)."""
    return {
        "name": args.name,
        "email": args.email,
        "timezone": args.timezone,
        "home_postcode": args.home,
        "areas": args.areas,
        "hours": args.hours,
        "home_lat": args.home_lat,
        "home_lon": args.home_lon,
    }


def _add(args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:
        try:
            sp = await CalendarService(db).add_salesperson(args.salesperson_id, **_fields(args))
        except ServiceError as exc:
            raise CliError(str(exc)) from None
        print(
            f"salesperson {sp.id} added: areas {', '.join(sp.areas)}; "
            f"{format_hours(sp.hours)} ({sp.timezone})"
        )
        return 0

    return run_with_database(args, work)


def _list(args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:
        people = await CalendarService(db).salespeople(include_inactive=args.all)
        if not people:
            print("no salesperson yet: add one with `dialer salespeople add`")
            return 0
        rows: list[tuple[str, ...]] = [
            ("ID", "NAME", "EMAIL", "HOME", "AREAS", "HOURS", "TIME ZONE", "ACTIVE")
        ]
        rows += [
            (
                sp.id,
                sp.name,
                sp.email,
                sp.home.postcode,
                ",".join(sp.areas),
                format_hours(sp.hours),
                sp.timezone,
                "yes" if sp.active else "no",
            )
            for sp in people
        ]
        _table(rows)
        return 0

    return run_with_database(args, work)


def _set(args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:
        try:
            sp = await CalendarService(db).update_salesperson(
                args.salesperson_id, active=args.active, **_fields(args)
            )
        except ServiceError as exc:
            raise CliError(str(exc)) from None
        state = "active" if sp.active else "inactive (no new visits)"
        print(f"salesperson {sp.id}: areas {', '.join(sp.areas)}; {format_hours(sp.hours)}; {state}")
        return 0

    return run_with_database(args, work)


def _person_options(parser: argparse.ArgumentParser, *, required: bool) -> None:
    parser.add_argument("--name", required=required, help="full name, shown to customers")
    parser.add_argument("--email", required=required, help="where the invitations (.ics) go")
    parser.add_argument(
        "--timezone", required=required, help="IANA time zone of the working hours (e.g. Europe/Paris)"
    )
    parser.add_argument("--home", required=required, metavar="POSTCODE", help="postcode of the home base")
    parser.add_argument("--home-lat", type=float, help="latitude of the home base (with --home-lon)")
    parser.add_argument("--home-lon", type=float, help="longitude of the home base (with --home-lat)")
    parser.add_argument(
        "--areas", required=required, help="postcode prefixes visited, comma separated: 75,92"
    )
    parser.add_argument(
        "--hours", required=required, help="working hours, e.g. 'mon-fri 08:00-18:00, sat 09:00-12:00'"
    )


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("salespeople", help="the field salespeople the calendar books visits for")
    commands = parser.add_subparsers(dest="salespeople_command", metavar="ACTION", required=True)

    add = commands.add_parser(
        "add",
        help="add a salesperson",
        description="A salesperson works the given hours in their time zone, starts from and returns to "
        "the home base, and is offered only for postcodes in their areas.",
    )
    add.add_argument("salesperson_id", metavar="ID", help="a short id (letters, digits, . _ @ -)")
    _person_options(add, required=True)
    add.set_defaults(handler=_add)

    lst = commands.add_parser("list", help="the salespeople, their areas and hours")
    lst.add_argument("--all", action="store_true", help="also inactive ones")
    lst.set_defaults(handler=_list)

    change = commands.add_parser(
        "set",
        help="change a salesperson (booked visits stay: move or cancel those that no longer fit)",
    )
    change.add_argument("salesperson_id", metavar="ID")
    _person_options(change, required=False)
    on = change.add_mutually_exclusive_group()
    on.add_argument("--active", dest="active", action="store_const", const=True, help="offer them again")
    on.add_argument("--inactive", dest="active", action="store_const", const=False, help="offer them no more")
    change.set_defaults(handler=_set)

    for sub in (add, lst, change):
        add_config_options(sub)
