"""What the ``dialer dnc`` and ``dialer audit`` commands share: options, opening the stores, dates.

The stores are built from the one settings object, like the daemon's (``dialer.runtime.bootstrap``).
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from redis.asyncio import Redis
from redis.exceptions import RedisError

from dialer.cli import CliError
from dialer.cli.common import add_config_options, say_database, settings_of
from dialer.compliance.dnc import DncStore
from dialer.compliance.history import NumberKeyer, keyer_from_database
from dialer.compliance.profiles import ProfileSet
from dialer.domain.compliance import ProfileError
from dialer.settings import ENV_REDIS, ENV_REDIS_NAMESPACE, PROFILES_NAME, Settings
from dialer.store.db import Database, DatabaseError


def add_store_options(parser: argparse.ArgumentParser) -> None:
    add_config_options(parser)
    parser.add_argument(
        "--redis",
        metavar="URL",
        help=f"Redis URL shared by the nodes (default: [redis] url, else ${ENV_REDIS}, else none)",
    )
    parser.add_argument(
        "--redis-namespace",
        help=f"Redis key prefix (default: the config's [redis] namespace, else ${ENV_REDIS_NAMESPACE}, "
        "else dialer:)",
    )
    parser.add_argument(
        "--profiles",
        action="append",
        type=Path,
        default=None,
        metavar="FILE",
        help=f"operator compliance profiles (default: the config's [compliance] profiles_file, else "
        f"{PROFILES_NAME} beside the config file if it exists; else the built-in profiles)",
    )


@dataclass
class Stores:
    database: Database
    profiles: ProfileSet
    dnc: DncStore
    keyer: NumberKeyer
    settings: Settings
    redis: Redis | None = None


def redis_down(settings: Settings, exc: BaseException) -> str:
    return (
        f"Redis at {settings.redis_url} is not answering ({type(exc).__name__}: {exc}); "
        "start it, or fix --redis / [redis] url / DIALER_REDIS_URL"
    )


@asynccontextmanager
async def open_stores(args: argparse.Namespace) -> AsyncIterator[Stores]:
    """The record, the profiles, the DNC store and the number keyer, built like the daemon's."""
    from dialer.runtime.bootstrap import open_database, profile_set

    settings = settings_of(args)
    say_database(args, settings)
    try:
        profiles = profile_set(settings)
    except ProfileError as exc:
        raise CliError(f"compliance profiles: {exc}") from None
    try:
        database = await open_database(settings)
    except DatabaseError as exc:
        raise CliError(str(exc)) from None
    redis = Redis.from_url(settings.redis_url) if settings.redis_url else None
    try:
        keyer = await keyer_from_database(database.engine, settings.number_hash_key)
        dnc = DncStore(database.engine, dict(profiles.registries), redis, settings.redis_namespace)
        yield Stores(database, profiles, dnc, keyer, settings, redis)
    except DatabaseError as exc:
        raise CliError(str(exc)) from None
    except (RedisError, OSError) as exc:
        raise CliError(redis_down(settings, exc)) from None
    finally:
        if redis is not None:
            await redis.aclose()
        await database.close()


def parse_day(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CliError(f"{option} {text!r} is not a date; write it as 2026-11-22") from None


def parse_instant(text: str, option: str) -> datetime:
    """A date (midnight UTC) or an ISO date-time (UTC unless it says otherwise)."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise CliError(f"{option} {text!r} is not a date; write 2026-11-22 or 2026-11-22T14:00") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
