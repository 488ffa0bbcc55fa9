"""Revision 0007 builds exactly the calendar's tables, and goes down again, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from dialer.calendar.tables import CALENDAR_TABLES
from dialer.store.base import Base
from dialer.store.db import Database


def _ours(name: str | None, type_: str, parent_names: Any) -> bool:
    return type_ != "table" or name in CALENDAR_TABLES


async def test_the_migration_builds_the_calendar_tables_of_the_models(db: Database) -> None:
    def diff(conn: Connection) -> list[Any]:
        context = MigrationContext.configure(
            conn,
            opts={
                "compare_type": True,
                "include_name": _ours,
                "include_object": lambda o, n, t, r, c: _ours(n, t, None),
            },
        )
        return list(compare_metadata(context, Base.metadata))

    async with db.engine.connect() as conn:
        assert await conn.run_sync(diff) == []


async def test_the_calendar_revision_goes_down_and_up_again(db: Database) -> None:
    def down_and_up(conn: Connection) -> tuple[set[str], set[str]]:
        from dialer.store.db import alembic_config

        config = alembic_config()
        config.attributes["connection"] = conn
        command.downgrade(config, "0006_notifications")
        after_down = set(inspect(conn).get_table_names())
        columns = {c["name"] for c in inspect(conn).get_columns("appointments")}
        assert "sequence" not in columns
        command.upgrade(config, "heads")
        return after_down, set(inspect(conn).get_table_names())

    async with db.engine.begin() as conn:
        after_down, after_up = await conn.run_sync(down_and_up)
    assert not CALENDAR_TABLES & after_down
    assert after_up >= CALENDAR_TABLES
