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


def _core_only(name: str | None, type_: str, parent_names: Any) -> bool:
    # Other packages add their own tables in later revisions; only the core tables are pinned here.
    return type_ != "table" or name in CORE_TABLES


def _core_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    return _core_only(name, type_, None)


async def test_migrations_produce_the_models_schema(database_url: str) -> None:
    db = Database(database_url)
    await db.connect()
    try:
        await db.migrate()

        def diff(conn: Connection) -> list[Any]:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "include_name": _core_only, "include_object": _core_object}
            )
            return list(compare_metadata(context, Base.metadata))

        async with db.engine.connect() as conn:
            differences = await conn.run_sync(diff)
        assert differences == []
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


async def test_database_newer_than_the_code_is_refused(database_url: str) -> None:
    db = Database(database_url)
    await db.connect()
    try:
        await db.migrate()
        async with db.engine.begin() as conn:
            await conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999_future'")
        with pytest.raises(
            SchemaOutOfDate, match="9999_future, which this version of the dialer does not know"
        ):
            await db.check_schema()
    finally:
        await db.close()


async def test_nodes_migrating_together_both_succeed(database_url: str) -> None:
    import asyncio

    first, second = Database(database_url), Database(database_url)
    await first.connect()
    await second.connect()
    try:
        done = await asyncio.gather(first.migrate(), second.migrate())
        assert done[0] == done[1] == head_revisions()
    finally:
        await first.close()
        await second.close()
