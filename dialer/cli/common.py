"""What every ``dialer`` command shares: one settings object, the record, and naming a campaign.

Every command that touches the record takes ``--config`` and ``--db`` and resolves them the same way
(``dialer.settings.resolve``), so ``dialer run`` and ``dialer campaign create`` always open the same
database.  Every command that takes a campaign resolves it with :func:`resolve_campaign`: a name or
an id gives the one campaign, anything else is refused with the list of campaigns.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path

from dialer.cli import CliError
from dialer.domain.campaign import SettingsError as CampaignSettingsError
from dialer.domain.campaign import StatusChangeError
from dialer.domain.dispositions import DispositionError
from dialer.settings import (
    DEFAULT_DATABASE_PATH,
    DEFAULT_PATH,
    ENV_CONFIG,
    ENV_DATABASE,
    Settings,
    SettingsError,
    resolve,
    sqlite_path,
)
from dialer.store.db import Database, DatabaseError
from dialer.store.repositories import CampaignRecord, StoreError

DATABASE_HELP = (
    f"database URL (default: the config file's [database] url, else ${ENV_DATABASE}, "
    f"else SQLite {DEFAULT_DATABASE_PATH})"
)
CONFIG_HELP = f"settings file (default: ${ENV_CONFIG}, else {DEFAULT_PATH} if it exists)"


def add_config_options(parser: argparse.ArgumentParser, *, database: bool = True) -> None:
    """``--config`` (and ``--db``), plus ``--verbose`` after the command as well as before it."""
    parser.add_argument("--config", metavar="PATH", type=Path, help=CONFIG_HELP)
    if database:
        parser.add_argument("--db", metavar="URL", help=DATABASE_HELP)
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=argparse.SUPPRESS,
        help="say which config and database are used; log at DEBUG level",
    )


def settings_of(args: argparse.Namespace, *, need_secrets: bool = False) -> Settings:
    """The command's settings: its config file, then its own options (--db, --redis, --profiles)."""
    profiles = getattr(args, "profiles", None)
    if profiles is not None and len(profiles) > 1:
        raise CliError("give --profiles once: one operator profiles file (it may hold many profiles)")
    try:
        settings = resolve(
            getattr(args, "config", None),
            database_url=getattr(args, "db", None),
            redis_url=getattr(args, "redis", None),
            profiles=tuple(profiles) if profiles is not None else None,
            need_secrets=need_secrets,
        )
    except SettingsError as exc:
        raise CliError(str(exc)) from None
    namespace = getattr(args, "redis_namespace", None)
    if namespace:
        settings = replace(settings, redis_namespace=namespace)
    return settings


def say_database(args: argparse.Namespace, settings: Settings) -> None:
    """With --verbose: which config file and which database this command uses (on stderr)."""
    if getattr(args, "verbose", False):
        config = settings.config_path or "none (defaults)"
        shown = Database(settings.database_url).display_url
        print(f"dialer: config {config}; database {shown} (from {settings.database_source})", file=sys.stderr)


async def resolve_campaign(db: Database, ref: str) -> CampaignRecord:
    """The one campaign named ``ref`` (its name, or its id); else CliError listing the campaigns."""
    found = await db.campaigns.by_name(ref)
    if found is None and ref.strip().isdigit():
        try:
            found = await db.campaigns.get(int(ref))
        except StoreError:
            found = None
    if found is not None:
        return found
    campaigns = await db.campaigns.list()
    if not campaigns:
        raise CliError(
            f"no campaign {ref!r}: there is no campaign yet; create one with "
            "`dialer campaign create NAME --dial-string ... --caller-id ...`"
        )
    known = ", ".join(f"{c.name} (id {c.id})" for c in campaigns)
    raise CliError(f"no campaign {ref!r}; give a name or an id of one of: {known}")


def run_with_database(
    args: argparse.Namespace, work: Callable[[Database], Awaitable[int]], *, check_schema: bool = True
) -> int:
    """Open the record of the command's settings, run ``work``, turn known errors into CliError."""
    settings = settings_of(args)
    say_database(args, settings)

    async def main() -> int:
        from dialer.runtime.bootstrap import open_database

        path = sqlite_path(settings.database_url)
        new_file = path is not None and not path.exists()
        try:
            db = await open_database(settings, check_schema=check_schema)
        except DatabaseError as exc:
            raise CliError(str(exc)) from None
        if new_file and path is not None and path.exists():
            print(f"dialer: created the SQLite database {path}", file=sys.stderr)
        try:
            return await work(db)
        except (DatabaseError, StoreError, CampaignSettingsError, StatusChangeError, DispositionError) as exc:
            raise CliError(str(exc)) from None
        finally:
            await db.close()

    return asyncio.run(main())
