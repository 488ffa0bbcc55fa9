"""Alembic environment of the dialer.

``Database.migrate()`` hands over an open connection in
``config.attributes["connection"]``; the ``alembic`` command line (with a
config made by ``dialer.store.db.alembic_config``) opens its own async engine.
"""

from __future__ import annotations

import asyncio
import importlib
import pkgutil

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

import dialer
from dialer.store.base import Base


def _import_models() -> None:
    # Every ``models`` / ``tables`` module of the dialer registers its tables on
    # Base.metadata; importing them all lets autogenerate see the whole schema.
    for info in pkgutil.walk_packages(dialer.__path__, prefix="dialer."):
        if info.name.rsplit(".", 1)[-1] in ("models", "tables"):
            importlib.import_module(info.name)


_import_models()
config = context.config
target_metadata = Base.metadata


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things: batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_online(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(run_migrations)
    finally:
        await engine.dispose()


connection = config.attributes.get("connection")
if connection is not None:
    run_migrations(connection)
elif context.is_offline_mode():
    context.configure(
        url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata, literal_binds=True
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_online(config.get_main_option("sqlalchemy.url") or ""))
