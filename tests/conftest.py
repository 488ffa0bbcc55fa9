"""Shared fixtures: a fresh database per test on SQLite and on PostgreSQL, and Redis.

PostgreSQL (127.0.0.1:5432, trust auth, database ``test``) and Redis
(127.0.0.1:6379) must be running: tests that need them fail rather than skip,
so CI always exercises both.  ``DIALER_TEST_DATABASES=sqlite`` limits a local
run to SQLite.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from dialer.store.db import Database

SHARED = Path(__file__).resolve().parents[2] / "shared"
ASTERISK_CAPTURES = SHARED / "asterisk-transcripts"
FREESWITCH_CAPTURES = SHARED / "freeswitch-transcripts"

PG_ADMIN_DSN = os.environ.get("DIALER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("DIALER_TEST_REDIS", "redis://127.0.0.1:6379/0")


def _backends() -> list[str]:
    raw = os.environ.get("DIALER_TEST_DATABASES", "sqlite,postgresql")
    return [b.strip() for b in raw.split(",") if b.strip()]


async def _pg_admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(params=_backends())
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A SQLAlchemy async URL to an empty database, dropped after the test."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'dialer.db'}"
        return
    name = f"dialer_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    host_part = PG_ADMIN_DSN.split("://", 1)[1].rsplit("/", 1)[0]
    try:
        yield f"postgresql+asyncpg://{host_part}/{name}"
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """The record on a fresh database, migrated to the latest schema."""
    database = Database(database_url)
    await database.connect()
    await database.migrate()
    try:
        yield database
    finally:
        await database.close()


@pytest.fixture
def redis_url() -> str:
    return REDIS_URL


@pytest.fixture
def redis_namespace() -> str:
    """A key prefix of its own for each test, so parallel runs never share keys."""
    return f"dialer-test:{uuid.uuid4().hex[:10]}:"
