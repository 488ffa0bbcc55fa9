"""``dialer migrate`` and what every database command shares: the --db option and opening the record."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from pathlib import Path

from dialer.cli import CliError
from dialer.domain.campaign import SettingsError, StatusChangeError
from dialer.domain.dispositions import DispositionError
from dialer.settings import SettingsError as ConfigError
from dialer.settings import load_database_url
from dialer.store.db import Database, DatabaseError, default_sqlite_url
from dialer.store.repositories import CampaignRecord, StoreError

ENV_URL = "DIALER_DATABASE_URL"


def add_database_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db", metavar="URL", help=f"database URL (default: ${ENV_URL}, else sqlite file ./var/dialer.db)"
    )
    parser.add_argument(
        "--config", metavar="PATH", type=Path, help="take the database URL from the daemon's settings file"
    )


def database_url(args: argparse.Namespace) -> str:
    if getattr(args, "db", None):
        return str(args.db)
    config = getattr(args, "config", None)
    if config is not None:
        try:
            return load_database_url(config)
        except ConfigError as exc:
            raise CliError(str(exc)) from exc
    return os.environ.get(ENV_URL) or default_sqlite_url()


def run_with_database(
    args: argparse.Namespace, work: Callable[[Database], Awaitable[int]], *, check_schema: bool = True
) -> int:
    """Open the database of --db / $DIALER_DATABASE_URL, run ``work``, turn known errors into CliError."""

    if not getattr(args, "verbose", False):
        # Alembic announces its context on every schema check; the commands say what matters.
        logging.getLogger("alembic").setLevel(logging.WARNING)

    async def main() -> int:
        try:
            db = Database(database_url(args))
        except DatabaseError as exc:
            raise CliError(f"{exc} (from --db or ${ENV_URL})") from exc
        try:
            await db.connect()
            if check_schema:
                await db.check_schema()
            return await work(db)
        except (DatabaseError, StoreError, SettingsError, StatusChangeError, DispositionError) as exc:
            raise CliError(str(exc)) from exc
        finally:
            await db.close()

    return asyncio.run(main())


async def find_campaign(db: Database, ref: str) -> CampaignRecord:
    """A campaign by name, or by id when ``ref`` is a number."""
    found = await db.campaigns.by_name(ref)
    if found is None and ref.isdigit():
        try:
            found = await db.campaigns.get(int(ref))
        except StoreError:
            found = None
    if found is None:
        raise CliError(f"no campaign named {ref!r}; `dialer campaign list` shows the campaigns")
    return found


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
