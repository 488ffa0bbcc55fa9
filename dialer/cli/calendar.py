"""``dialer calendar slots|appointments|move|cancel|config``: the field salespeople's shared calendar."""

from __future__ import annotations

import argparse
import tomllib
from datetime import UTC, datetime
from pathlib import Path

from dialer.calendar.model import CalendarError
from dialer.calendar.travel import CalendarConfig
from dialer.cli import CliError
from dialer.cli.common import add_config_options, run_with_database
from dialer.service import ServiceError
from dialer.service.calendar import AppointmentView, CalendarService
from dialer.store.db import Database


def _when(text: str) -> datetime:
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise CliError(f"{text!r} is not a date and time: write e.g. 2026-12-08T10:00+01:00") from None
    if at.tzinfo is None:
        raise CliError(f"{text!r} has no time zone: add it, e.g. 2026-12-08T10:00+01:00 or ...Z")
    return at


def _print_appointments(found: list[AppointmentView]) -> None:
    rows = [("ID", "STARTS (UTC)", "ENDS", "SALESPERSON", "POSTCODE", "STATUS", "VERSION", "BOOKED BY")]
    rows += [
        (
            str(a.id),
            a.starts_at.strftime("%Y-%m-%d %H:%M"),
            a.ends_at.strftime("%H:%M") if a.ends_at else "-",
            a.salesperson_id or "-",
            a.postcode or "-",
            a.status,
            str(a.sequence),
            a.booked_by or "-",
        )
        for a in found
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def _slots(args: argparse.Namespace) -> int:
    if not 1 <= args.count <= 50:
        raise CliError("--count must be from 1 to 50")

    async def work(db: Database) -> int:
        try:
            found = await CalendarService(db).offer_slots(args.postcode, args.count)
        except ServiceError as exc:
            raise CliError(str(exc)) from None
        if not found:
            print("no free slot fits within the calendar's horizon")
            return 0
        for s in found:
            print(
                f"{s.starts_at:%Y-%m-%d %H:%M}-{s.ends_at:%H:%M} UTC  "
                f"{s.salesperson_id}  ({s.salesperson_name})"
            )
        return 0

    return run_with_database(args, work)


def _appointments(args: argparse.Namespace) -> int:
    day = None
    if args.day:
        try:
            day = datetime.strptime(args.day, "%Y-%m-%d").replace(tzinfo=UTC)
        except ValueError:
            raise CliError(f"--day {args.day!r}: write the day as YYYY-MM-DD") from None

    async def work(db: Database) -> int:
        found = await CalendarService(db).appointments(
            salesperson_id=args.salesperson, day=day, include_cancelled=args.all
        )
        if not found:
            print("no appointment matches" + ("" if args.all else " (live ones; --all adds cancelled ones)"))
            return 0
        _print_appointments(found)
        return 0

    return run_with_database(args, work)


def _move(args: argparse.Namespace) -> int:
    at = _when(args.at)

    async def work(db: Database) -> int:
        try:
            moved = await CalendarService(db).move(
                args.actor, args.appointment_id, at, salesperson_id=args.salesperson, supervisor=True
            )
        except ServiceError as exc:
            raise CliError(str(exc)) from None
        print(
            f"appointment {moved.id} moved to {moved.starts_at:%Y-%m-%d %H:%M} UTC "
            f"with {moved.salesperson_id};"
        )
        print("the customer and the salesperson are notified")
        return 0

    return run_with_database(args, work)


def _cancel(args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:
        try:
            gone = await CalendarService(db).cancel(args.actor, args.appointment_id, supervisor=True)
        except ServiceError as exc:
            raise CliError(str(exc)) from None
        print(f"appointment {gone.id} cancelled; the customer and the salesperson are notified")
        return 0

    return run_with_database(args, work)


def _config(args: argparse.Namespace) -> int:
    config: CalendarConfig | None = None
    if args.file is not None:
        try:
            config = CalendarConfig.from_toml(Path(args.file).read_text(encoding="utf-8"))
        except OSError as exc:
            raise CliError(f"cannot read {args.file}: {exc.strerror}") from None
        except (CalendarError, tomllib.TOMLDecodeError) as exc:
            raise CliError(f"{args.file}: {exc}; nothing was changed") from None

    async def work(db: Database) -> int:
        calendar = CalendarService(db)
        shown = (
            await calendar.set_config(config, args.actor) if config is not None else await calendar.config()
        )
        if config is not None:
            print(f"calendar settings loaded from {args.file}")
        _print_config(shown)
        return 0

    return run_with_database(args, work)


def _print_config(config: CalendarConfig) -> None:
    raw = config.to_dict()
    travel = raw.pop("travel")
    for key, value in raw.items():
        print(f"{key} = {value:g}")
    for key in ("buffer_minutes", "speed_kmh", "same_area_minutes", "area_length"):
        print(f"travel.{key} = {travel[key]:g}")
    for area, (lat, lon) in travel["areas"].items():
        print(f"travel.areas.{area} = [{lat}, {lon}]")
    for t in travel["times"]:
        print(f"travel.times {t['from']} <-> {t['to']}: {t['minutes']:g} min")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "calendar", help="the field salespeople's calendar: slots and appointments"
    )
    commands = parser.add_subparsers(dest="calendar_command", metavar="ACTION", required=True)

    slots = commands.add_parser("slots", help="the next free slots for a postcode, over every salesperson")
    slots.add_argument("postcode", metavar="POSTCODE")
    slots.add_argument("--count", type=int, default=5, help="how many (default: 5)")
    slots.set_defaults(handler=_slots)

    lst = commands.add_parser("appointments", help="booked visits, soonest first")
    lst.add_argument("--salesperson", help="only this salesperson's")
    lst.add_argument("--day", help="only this UTC day (YYYY-MM-DD)")
    lst.add_argument("--all", action="store_true", help="also cancelled ones")
    lst.set_defaults(handler=_appointments)

    move = commands.add_parser("move", help="move a visit; both sides are notified again")
    move.add_argument("appointment_id", type=int, metavar="APPOINTMENT_ID")
    move.add_argument("--at", required=True, help="new start, with its time zone: 2026-12-08T10:00+01:00")
    move.add_argument("--salesperson", help="give the visit to another salesperson")
    move.set_defaults(handler=_move)

    cancel = commands.add_parser("cancel", help="cancel a visit; both sides are notified")
    cancel.add_argument("appointment_id", type=int, metavar="APPOINTMENT_ID")
    cancel.set_defaults(handler=_cancel)

    config = commands.add_parser(
        "config",
        help="show the calendar settings, or load them from a TOML file",
        description="Slot length and step, notice, horizon, and the travel model: a matrix of minutes "
        "between areas (postcode prefixes), area coordinates and a speed, a buffer "
        "(see config/calendar.toml).",
    )
    config.add_argument("file", nargs="?", metavar="FILE", help="TOML file to load (without: show)")
    config.set_defaults(handler=_config)

    for sub in (slots, lst, move, cancel, config):
        add_config_options(sub)
    for sub in (move, cancel, config):
        sub.add_argument("--actor", default="cli", help="who does this (default: cli)")
