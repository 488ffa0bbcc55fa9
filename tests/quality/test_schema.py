"""The revision 0012_quality builds exactly the quality tables the models describe, and goes back down."""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from dialer.quality.tables import QUALITY_TABLES
from dialer.store.base import Base
from dialer.store.db import Database, alembic_config


def _ours(name: str | None, type_: str, parent_names: Any) -> bool:
    return type_ != "table" or name in QUALITY_TABLES


def _our_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    return _ours(name, type_, None)


async def test_the_quality_migration_matches_the_models_and_downgrades(database_url: str) -> None:
    db = Database(database_url)
    await db.connect()
    try:
        await db.migrate()

        def diff(conn: Connection) -> list[Any]:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "include_name": _ours, "include_object": _our_object}
            )
            return list(compare_metadata(context, Base.metadata))

        def down(conn: Connection) -> set[str]:
            cfg = alembic_config(db.url)
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0011_recordings")
            return set(inspect(conn).get_table_names())

        async with db.engine.connect() as conn:
            assert await conn.run_sync(diff) == []
        async with db.engine.begin() as conn:
            assert not (await conn.run_sync(down)) & QUALITY_TABLES
    finally:
        await db.close()
