"""Accounts (argon2 passwords, expiring tokens) and the outbox relay, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.engine import Connection

from dialer.runtime.ports import Lead
from dialer.service import Invalid, Unauthorized
from dialer.service.accounts import Accounts, token_digest
from dialer.service.outbox import OutboxRelay
from dialer.service.uow import SqlUnitOfWork
from dialer.store.base import Base
from dialer.store.db import Database
from dialer.store.outbox_repo import OutboxMessage, OutboxRepository
from dialer.store.repositories import Role
from dialer.store.users_repo import ApiToken, UserCredential

FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
MINE = {"user_credentials", "api_tokens", "outbox"}


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


async def test_migration_builds_the_auth_and_outbox_tables_as_modelled(db: Database) -> None:
    def diff(conn: Connection) -> list[Any]:
        def only_mine(name: str | None, type_: str, parent: Any) -> bool:
            return type_ != "table" or name in MINE

        context = MigrationContext.configure(
            conn,
            opts={
                "compare_type": True,
                "include_name": only_mine,
                "include_object": lambda o, n, t, r, c: only_mine(n, t, None),
            },
        )
        return list(compare_metadata(context, Base.metadata))

    async with db.engine.connect() as conn:
        assert await conn.run_sync(diff) == []


async def test_login_gives_a_token_that_expires_and_only_its_digest_is_stored(db: Database) -> None:
    clock = Clock()
    accounts = Accounts(db, token_lifetime=timedelta(hours=1), wall=clock, hasher=FAST)
    await accounts.add_user("alice", "Alice", Role.AGENT, "correct horse", actor="test")
    issued = await accounts.login("alice", "correct horse")
    assert issued.expires_at == clock.now + timedelta(hours=1)
    assert (await accounts.authenticate(issued.token)).user_id == "alice"
    async with db.read_session() as s:
        stored = (await s.execute(select(ApiToken.token_hash))).scalars().all()
        password = (await s.execute(select(UserCredential.password_hash))).scalar_one()
    assert stored == [token_digest(issued.token)] and issued.token not in stored
    assert password.startswith("$argon2") and "correct horse" not in password
    clock.now += timedelta(hours=1, seconds=1)
    with pytest.raises(Unauthorized, match="expired"):
        await accounts.authenticate(issued.token)


async def test_wrong_password_unknown_user_and_disabled_user_get_the_same_refusal(db: Database) -> None:
    accounts = Accounts(db, hasher=FAST)
    await accounts.add_user("bob", "Bob", Role.SUPERVISOR, "right password", actor="test")
    messages = set()
    for user, password in (("bob", "wrong password"), ("nobody", "right password")):
        with pytest.raises(Unauthorized) as caught:
            await accounts.login(user, password)
        messages.add(str(caught.value))
    token = (await accounts.login("bob", "right password")).token
    await accounts.update_user("bob", active=False, actor="admin")
    with pytest.raises(Unauthorized) as caught:
        await accounts.login("bob", "right password")
    messages.add(str(caught.value))
    assert messages == {"unknown user or wrong password"}
    with pytest.raises(Unauthorized):  # disabling revokes the tokens already out
        await accounts.authenticate(token)


async def test_new_password_revokes_old_tokens_and_bad_input_is_named(db: Database) -> None:
    accounts = Accounts(db, hasher=FAST)
    await accounts.add_user("carol", "Carol", Role.ADMIN, "first password", actor="test")
    old = (await accounts.login("carol", "first password")).token
    await accounts.set_password("carol", "second password", actor="carol")
    with pytest.raises(Unauthorized):
        await accounts.authenticate(old)
    await accounts.login("carol", "second password")
    with pytest.raises(Invalid, match="at least 8"):
        await accounts.add_user("dave", "Dave", Role.AGENT, "short", actor="test")
    with pytest.raises(Invalid, match="not valid"):
        await accounts.add_user("da ve", "Dave", Role.AGENT, "long enough", actor="test")
    with pytest.raises(Invalid, match="already exists"):
        await accounts.add_user("carol", "Carol", Role.AGENT, "long enough", actor="test")


class FlakyGate:
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.outcomes: list[tuple[str, str, str]] = []

    async def record_outcome(self, lead: Lead, kind: str, at: datetime) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("redis down")
        self.outcomes.append((lead.lead_id, lead.number, kind))


async def test_a_committed_refusal_reaches_the_gate_even_after_failures(db: Database) -> None:
    now = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
    # The process "dies" after the commit: nothing told the gate; the row waits in the outbox.
    async with SqlUnitOfWork(db) as uow:
        uow.tell_gate(7, 1, "+33123456789", "refusal", now)
        await uow.commit()
    gate = FlakyGate(failures=2)
    relay = OutboxRelay(db, gate)  # type: ignore[arg-type]
    for _ in range(2):
        with pytest.raises(ConnectionError):
            await relay.deliver_pending()
    assert gate.outcomes == []
    assert await relay.deliver_pending() == 1
    assert gate.outcomes == [("7", "+33123456789", "refusal")]
    assert await OutboxRepository(db).pending() == []
    async with db.read_session() as s:
        row = (await s.execute(select(OutboxMessage))).scalar_one()
    assert row.attempts == 3 and row.delivered_at is not None
    assert await relay.deliver_pending() == 0  # delivered once, never again


async def test_a_unit_of_work_left_without_commit_writes_nothing(db: Database) -> None:
    now = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
    with pytest.raises(RuntimeError):
        async with SqlUnitOfWork(db) as uow:
            uow.tell_gate(7, 1, "+33123456789", "refusal", now)
            raise RuntimeError("the use case failed halfway")
    assert await OutboxRepository(db).pending() == []
