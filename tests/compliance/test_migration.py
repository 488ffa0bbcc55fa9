"""Migration 0002_compliance creates exactly the tables the compliance models describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData
from sqlalchemy.engine import Connection

from dialer.compliance.tables import COMPLIANCE_TABLES
from dialer.store.db import Database, alembic_config


def _compliance_diff(conn: Connection) -> list[object]:
    metadata = MetaData(naming_convention=COMPLIANCE_TABLES[0].metadata.naming_convention)
    for table in COMPLIANCE_TABLES:
        table.to_metadata(metadata)
    names = {t.name for t in COMPLIANCE_TABLES}

    def include(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
        # Only the compliance tables: the other tables belong to other migrations.
        if type_ == "table":
            return name in names
        return getattr(getattr(obj, "table", None), "name", None) in names

    context = MigrationContext.configure(conn, opts={"compare_type": True, "include_object": include})
    return list(compare_metadata(context, metadata))


async def test_migration_creates_the_compliance_schema_on_both_backends(database_url: str) -> None:
    db = Database(database_url)
    await db.connect()
    try:
        applied = await db.migrate()
        # the compliance revision is applied: it is a head or an ancestor of one (later revisions chain on it)
        script = ScriptDirectory.from_config(alembic_config(database_url))
        reached = {rev.revision for head in applied for rev in script.iterate_revisions(head, "base")}
        assert "0002_compliance" in reached
        async with db.engine.connect() as conn:
            diff = await conn.run_sync(_compliance_diff)
        assert diff == []
    finally:
        await db.close()
