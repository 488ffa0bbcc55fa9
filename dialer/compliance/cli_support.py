"""What the ``dialer dnc`` and ``dialer audit`` commands share: options, opening the stores, dates."""

from __future__ import annotations

import argparse
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from redis.asyncio import Redis
from redis.exceptions import RedisError

from dialer.cli import CliError
from dialer.compliance.dnc import DncStore
from dialer.compliance.history import NumberKeyer, keyer_from_database
from dialer.compliance.profiles import ProfileSet, load_profiles
from dialer.domain.compliance import ProfileError
from dialer.store.db import Database, DatabaseError, default_sqlite_url

SYSTEM_PROFILES = Path("/etc/dialer/compliance/profiles.toml")


def add_store_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", help="database URL (default: $DIALER_DATABASE_URL or sqlite ./var/dialer.db)")
    parser.add_argument("--redis", help="Redis URL shared by the nodes (default: $DIALER_REDIS_URL, none)")
    parser.add_argument(
        "--redis-namespace",
        default=os.environ.get("DIALER_REDIS_NAMESPACE", "dialer:"),
        help="Redis key prefix",
    )
    parser.add_argument(
        "--profiles",
        action="append",
        type=Path,
        default=None,
        help=f"operator compliance profiles (TOML; default {SYSTEM_PROFILES} if it exists)",
    )


@dataclass
class Stores:
    database: Database
    profiles: ProfileSet
    dnc: DncStore
    keyer: NumberKeyer


def _profile_files(args: argparse.Namespace) -> list[Path]:
    if args.profiles is not None:
        return list(args.profiles)
    return [SYSTEM_PROFILES] if SYSTEM_PROFILES.exists() else []


@asynccontextmanager
async def open_stores(args: argparse.Namespace) -> AsyncIterator[Stores]:
    url = args.db or os.environ.get("DIALER_DATABASE_URL") or default_sqlite_url()
    redis_url = args.redis or os.environ.get("DIALER_REDIS_URL") or None
    try:
        profiles = load_profiles(_profile_files(args))
    except ProfileError as exc:
        raise CliError(f"compliance profiles: {exc}") from exc
    database = Database(url)
    redis = Redis.from_url(redis_url) if redis_url else None
    try:
        await database.connect()
        await database.check_schema()
        keyer = await keyer_from_database(database.engine, os.environ.get("DIALER_NUMBER_HASH_KEY"))
        dnc = DncStore(database.engine, dict(profiles.registries), redis, args.redis_namespace)
        yield Stores(database, profiles, dnc, keyer)
    except DatabaseError as exc:
        raise CliError(str(exc)) from exc
    except RedisError as exc:
        raise CliError(f"Redis at {redis_url} failed ({exc}); check --redis / DIALER_REDIS_URL") from exc
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
