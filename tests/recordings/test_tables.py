"""Revision 0011 builds exactly the recordings' tables the models describe, and goes back down."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from dialer.recordings.tables import RECORDING_TABLES
from dialer.store.base import Base
from dialer.store.db import Database


def _ours(name: str | None, type_: str, parent_names: Any) -> bool:
    return type_ != "table" or name in RECORDING_TABLES | {"attempts"}


def _ours_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    return _ours(name, type_, None)


async def test_the_migration_builds_the_models_tables(db: Database) -> None:
    def diff(conn: Connection) -> list[Any]:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_name": _ours, "include_object": _ours_object}
        )
        return list(compare_metadata(context, Base.metadata))

    async with db.engine.connect() as conn:
        assert await conn.run_sync(diff) == []
        tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    assert tables >= RECORDING_TABLES
