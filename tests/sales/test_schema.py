"""Revision 0009 creates exactly the sales and customer-record tables the models describe, and undoes them."""

from __future__ import annotations

import sqlite3
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from dialer.compliance.tables import DncErased
from dialer.sales.tables import SALES_TABLES
from dialer.store.base import Base
from dialer.store.db import Database, alembic_config

MINE = {t.name for t in SALES_TABLES} | {DncErased.__tablename__}


def _mine(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    if type_ == "table":
        return name in MINE
    return getattr(getattr(obj, "table", None), "name", None) in MINE


async def test_revision_0009_builds_the_models_schema(database_url: str) -> None:
    db = Database(database_url)
    await db.connect()
    try:
        await db.migrate()

        def diff(conn: Connection) -> list[Any]:
            context = MigrationContext.configure(conn, opts={"compare_type": True, "include_object": _mine})
            return list(compare_metadata(context, Base.metadata))

        async with db.engine.connect() as conn:
            assert await conn.run_sync(diff) == []
            names = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        assert names >= MINE
    finally:
        await db.close()


def test_revision_0009_downgrades(tmp_path: Any) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'd.db'}"
    config = alembic_config(url)
    command.upgrade(config, "0009_sales")
    command.downgrade(config, "0008_followup")
    assert not _tables(tmp_path / "d.db") & MINE
    command.upgrade(config, "0009_sales")
    assert _tables(tmp_path / "d.db") >= MINE


def _tables(path: Any) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
