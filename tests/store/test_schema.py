"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection

from dialer.store.base import Base
from dialer.store.db import Database, DatabaseError, SchemaOutOfDate, head_revisions
from dialer.store.models import CORE_TABLES


def _table_of(diff: Any) -> str | None:
    """The table a compare_metadata entry is about (entries are tuples or lists of tuples)."""
    entry = diff[0] if isinstance(diff, list) else diff
    for item in entry[1:]:
        name = getattr(item, "name", None)
        table = getattr(item, "table", None)
        if table is not None and getattr(table, "name", None):
            return str(table.name)
        if isinstance(item, str) and item in CORE_TABLES:
            return item
        if name in CORE_TABLES:
            return str(name)
    return None


async def test_migrations_produce_the_models_schema(database_url: str) -> None:
    db = Database(database_url)
    await db.connect()
    try:
        await db.migrate()

        def diff(conn: Connection) -> list[Any]:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            return list(compare_metadata(context, Base.metadata))

        async with db.engine.connect() as conn:
            differences = await conn.run_sync(diff)
        # Other packages add their own tables in later revisions; only the core tables are ours to pin.
        ours = [d for d in differences if _table_of(d) in CORE_TABLES or _table_of(d) is None]
        assert ours == []
    finally:
        await db.close()


async def test_migrate_upgrades_to_every_head_and_is_repeatable(database_url: str) -> None:
    db = Database(database_url)
    await db.connect()
    try:
        assert await db.current_revisions() == set()
        with pytest.raises(SchemaOutOfDate, match="dialer migrate"):
            await db.check_schema()
        assert await db.migrate() == head_revisions()
        assert await db.migrate() == head_revisions()
        await db.check_schema()
    finally:
        await db.close()


async def test_unreachable_database_gives_a_clear_error() -> None:
    db = Database("postgresql://postgres@127.0.0.1:1/nothing")
    with pytest.raises(DatabaseError, match="check the URL"):
        await db.connect()


def test_unsupported_database_url_is_refused() -> None:
    with pytest.raises(DatabaseError, match="not supported"):
        Database("mysql://root@localhost/dialer")
