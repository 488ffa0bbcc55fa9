"""``dialer migrate`` and what every database command shares: the --db option and opening the record."""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime

from dialer.cli import CliError
from dialer.cli.common import add_config_options, resolve_campaign, run_with_database
from dialer.store.db import Database
from dialer.store.repositories import CampaignRecord

__all__ = ["add_database_option", "find_campaign", "parse_when", "run_with_database"]


def add_database_option(parser: argparse.ArgumentParser) -> None:
    """``--config`` and ``--db``, resolved like every other command's (``dialer.cli.common``)."""
    add_config_options(parser)


async def find_campaign(db: Database, ref: str) -> CampaignRecord:
    """A campaign by name or id; see :func:`dialer.cli.common.resolve_campaign`."""
    return await resolve_campaign(db, ref)


def parse_when(text: str, option: str) -> datetime:
    """A date (midnight UTC) or an ISO date-time (UTC unless it names a zone)."""
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        value = datetime.fromisoformat(text)
    except ValueError:
        raise CliError(f"{option} {text!r} is not a date; write 2026-11-22 or 2026-11-22T14:00") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _migrate(args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:
        before = await db.current_revisions()
        after = await db.migrate()
        if before == after:
            print(f"database {db.display_url} is up to date ({', '.join(sorted(after))})")
        else:
            shown = ", ".join(sorted(before)) or "empty"
            print(f"database {db.display_url} upgraded from {shown} to {', '.join(sorted(after))}")
        return 0

    return run_with_database(args, work, check_schema=False)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "migrate",
        help="create or upgrade the database schema",
        description="Apply every pending migration (alembic `upgrade heads`): creates the schema on an empty "
        "database and upgrades an older one.",
    )
    add_database_option(parser)
    parser.set_defaults(handler=_migrate)
