"""One handle on the record: engine, sessions, migrations and the repositories.

    db = Database("sqlite+aiosqlite:///var/dialer.db")   # or postgresql+asyncpg://...
    await db.connect(); await db.migrate()
    campaign = await db.campaigns.create("spring", settings)
    await db.close()

SQLite is the embedded default and has a single writer: every write
transaction starts with ``BEGIN IMMEDIATE`` so two writers queue on the busy
timeout instead of failing halfway (a deferred transaction that reads and then
writes gets SQLITE_BUSY without waiting).  PostgreSQL is the production record;
several dialer nodes share it and claim leads with ``FOR UPDATE SKIP LOCKED``.
"""

from __future__ import annotations

import logging
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionError
from alembic.util import CommandError
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from dialer.store.base import SQLITE_CACHE_KIB

if TYPE_CHECKING:
    from dialer.store.reports import ReportRepository
    from dialer.store.repositories import (
        AttemptRepository,
        CampaignRepository,
        CustomerRepository,
        DispositionRepository,
        Hopper,
        LeadRepository,
        UserRepository,
    )

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
DEFAULT_SQLITE_PATH = Path("var") / "dialer.db"
SQLITE_BUSY_TIMEOUT_S = 30.0
_READ_ONLY = "dialer_read_only"
_MIGRATION_LOCK = 0x6469616C6572  # "dialer": the advisory lock key of migrations


class DatabaseError(Exception):
    """The database cannot be used; the message says what to do."""


class SchemaOutOfDate(DatabaseError):
    """The database schema is older than this version of the dialer."""


def normalize_url(url: str) -> str:
    """Give a plain ``postgresql://`` or ``sqlite:///`` URL its async driver."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise DatabaseError(
            f"database URL {url!r} is not a URL; use e.g. sqlite+aiosqlite:///var/dialer.db or "
            "postgresql+asyncpg://user@host/dbname"
        ) from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite" and parsed.drivername != "sqlite+aiosqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    elif backend == "postgresql" and parsed.drivername != "postgresql+asyncpg":
        parsed = parsed.set(drivername="postgresql+asyncpg")
    elif backend not in ("sqlite", "postgresql"):
        raise DatabaseError(f"database {backend!r} is not supported; use SQLite or PostgreSQL")
    return parsed.render_as_string(hide_password=False)


def default_sqlite_url(path: Path = DEFAULT_SQLITE_PATH) -> str:
    return f"sqlite+aiosqlite:///{path}"


def alembic_config(url: str | None = None) -> Config:
    """An Alembic config built in code, so migrations run from an installed package."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def head_revisions() -> set[str]:
    """The newest revision of every branch shipped with this version."""
    return set(ScriptDirectory.from_config(alembic_config()).get_heads())


def _make_sqlite_folder(url: str) -> None:
    database = make_url(url).database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Take BEGIN away from the driver so we can say BEGIN IMMEDIATE ourselves.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
    cursor.execute("PRAGMA synchronous=NORMAL")  # durable at checkpoints; safe with WAL
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
    cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
    cursor.close()


def _on_sqlite_begin(conn: Connection) -> None:
    if conn.get_execution_options().get(_READ_ONLY):
        conn.exec_driver_sql("BEGIN")
    else:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


class Database:
    """The dialer's database.  Create it once per process and share it."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = normalize_url(url)
        self._echo = echo
        self._engine: AsyncEngine | None = None
        self._sessions: async_sessionmaker[AsyncSession] | None = None
        self._read_sessions: async_sessionmaker[AsyncSession] | None = None

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    @property
    def display_url(self) -> str:
        """The URL without its password, for messages."""
        return make_url(self.url).render_as_string(hide_password=True)

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise DatabaseError("the database is not connected; call `await db.connect()` first")
        return self._engine

    async def connect(self) -> None:
        """Open the engine and check that the server answers."""
        if self._engine is not None:
            return
        kwargs: dict[str, Any] = {"echo": self._echo}
        if self.is_sqlite:
            _make_sqlite_folder(self.url)
            kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_S}
        else:
            kwargs.update(pool_size=10, max_overflow=20, pool_pre_ping=True)
        engine = create_async_engine(self.url, **kwargs)
        if self.is_sqlite:
            event.listen(engine.sync_engine, "connect", _on_sqlite_connect)
            event.listen(engine.sync_engine, "begin", _on_sqlite_begin)
        try:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except (DBAPIError, OSError) as exc:
            await engine.dispose()
            raise DatabaseError(
                f"cannot open the database {self.display_url}: {exc.__class__.__name__}: "
                f"{_first_line(exc)}; check the URL (--db or DIALER_DATABASE_URL) and that the server is "
                "running and reachable"
            ) from exc
        self._engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        self._read_sessions = async_sessionmaker(
            engine.execution_options(**{_READ_ONLY: True}), expire_on_commit=False
        )

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
        self._engine = None
        self._sessions = None
        self._read_sessions = None

    async def __aenter__(self) -> Database:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def session(self) -> AsyncSession:
        """A session for reads and writes: ``async with db.session() as s, s.begin(): ...``."""
        if self._sessions is None:
            raise DatabaseError("the database is not connected; call `await db.connect()` first")
        return self._sessions()

    def read_session(self) -> AsyncSession:
        """A session that only reads; on SQLite it does not take the write lock (reports, exports)."""
        if self._read_sessions is None:
            raise DatabaseError("the database is not connected; call `await db.connect()` first")
        return self._read_sessions()

    # -- schema ----------------------------------------------------------------

    async def migrate(self) -> set[str]:
        """Upgrade the schema to every head (``upgrade heads``); return the revisions now applied."""

        def upgrade(sync_conn: Connection) -> None:
            if sync_conn.dialect.name == "postgresql":
                # Nodes started together must not migrate at the same time: the
                # second waits here, then finds nothing left to do.
                sync_conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
            cfg = alembic_config(self.url)
            cfg.attributes["connection"] = sync_conn
            command.upgrade(cfg, "heads")

        async with self.engine.begin() as conn:
            await conn.run_sync(upgrade)
        return await self.current_revisions()

    async def current_revisions(self) -> set[str]:
        """Revisions recorded in the database (empty for a database never migrated)."""

        def current(sync_conn: Connection) -> set[str]:
            return set(MigrationContext.configure(sync_conn).get_current_heads())

        async with self.engine.connect() as conn:
            return await conn.run_sync(current)

    async def check_schema(self) -> None:
        """Raise :class:`SchemaOutOfDate` unless every shipped migration is applied."""
        current = await self.current_revisions()
        heads = head_revisions()
        if not current:
            raise SchemaOutOfDate(
                f"the database {self.display_url} has no dialer schema; run `dialer migrate` first"
            )
        if current != heads:
            script = ScriptDirectory.from_config(alembic_config())
            applied: set[str] = set()
            try:
                for rev in current:
                    applied.update(r.revision for r in script.iterate_revisions(rev, "base"))
            except (CommandError, RevisionError) as exc:
                raise SchemaOutOfDate(
                    f"the database {self.display_url} is at revision {', '.join(sorted(current))}, "
                    f"which this version of the dialer does not know ({exc}); run the dialer version "
                    "that migrated it, or a newer one"
                ) from exc
            if not heads <= applied:
                raise SchemaOutOfDate(
                    f"the database {self.display_url} is at revision {', '.join(sorted(current))} but this "
                    f"version needs {', '.join(sorted(heads))}; run `dialer migrate` to upgrade it"
                )

    # -- repositories ------------------------------------------------------------

    @cached_property
    def campaigns(self) -> CampaignRepository:
        from dialer.store.repositories import CampaignRepository

        return CampaignRepository(self)

    @cached_property
    def leads(self) -> LeadRepository:
        from dialer.store.repositories import LeadRepository

        return LeadRepository(self)

    @cached_property
    def hopper(self) -> Hopper:
        from dialer.store.repositories import Hopper

        return Hopper(self)

    @cached_property
    def attempts(self) -> AttemptRepository:
        from dialer.store.repositories import AttemptRepository

        return AttemptRepository(self)

    @cached_property
    def dispositions(self) -> DispositionRepository:
        from dialer.store.repositories import DispositionRepository

        return DispositionRepository(self)

    @cached_property
    def customers(self) -> CustomerRepository:
        from dialer.store.repositories import CustomerRepository

        return CustomerRepository(self)

    @cached_property
    def users(self) -> UserRepository:
        from dialer.store.repositories import UserRepository

        return UserRepository(self)

    @cached_property
    def reports(self) -> ReportRepository:
        from dialer.store.reports import ReportRepository

        return ReportRepository(self)
