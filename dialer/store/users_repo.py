"""Sign-in records of the people who use the dialer: password hashes and API tokens.

The ``users`` table (``dialer.store.models.User``) says who someone is and what
role they have; this module keeps how they prove it, apart from that widely
read table: one argon2 password hash per user (``user_credentials``) and any
number of API tokens (``api_tokens``), each stored as the SHA-256 of its
secret with an expiry.  Hashing is the service layer's job
(``dialer.service.accounts``): nothing here ever sees a password or a raw token.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, String, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from dialer.store.base import Base, UtcDateTime
from dialer.store.models import AuditEntry, User
from dialer.store.repositories import Conflict, NotFound, Role, StoreError, UserRecord

if TYPE_CHECKING:
    from dialer.store.db import Database


class UserCredential(Base):
    """A user's password, as an argon2 hash (the PHC string carries its own salt and parameters)."""

    __tablename__ = "user_credentials"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    pin_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)  # the phone login's PIN
    changed_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ApiToken(Base):
    """A bearer token: the SHA-256 hex of the secret handed out once, its owner and its expiry."""

    __tablename__ = "api_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)


@dataclass(frozen=True, slots=True)
class Account:
    user: UserRecord
    password_hash: str | None  # None: the user cannot sign in with a password yet
    pin_hash: str | None = None  # None: no login from the phone


def _record(row: User) -> UserRecord:
    return UserRecord(row.id, row.name, Role(row.role), row.active, row.token_hash, row.created_at)


# A credentials row made for a PIN alone: no argon2 hash, so no password ever matches it.
NO_PASSWORD = "!"


class AccountRepository:
    """Users with their password hashes and tokens.  Each public method is one transaction."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(
        self, user_id: str, name: str, role: Role, password_hash: str | None, *, actor: str, now: datetime
    ) -> UserRecord:
        if not user_id.strip():
            raise StoreError("user id is empty; give the login, e.g. 'agent12'")
        async with self._db.session() as s:
            try:
                async with s.begin():
                    row = User(id=user_id, name=name, role=Role(role).value, active=True, created_at=now)
                    s.add(row)
                    await s.flush()
                    if password_hash is not None:
                        s.add(UserCredential(user_id=user_id, password_hash=password_hash, changed_at=now))
                    s.add(_audit(now, actor, "user.create", user_id, {"role": row.role}))
            except IntegrityError as exc:
                raise Conflict(f"a user {user_id!r} already exists; choose another id") from exc
            return _record(row)

    async def get(self, user_id: str) -> Account | None:
        async with self._db.read_session() as s:
            row = await s.get(User, user_id)
            if row is None:
                return None
            cred = await s.get(UserCredential, user_id)
            if cred is None:
                return Account(_record(row), None)
            password = None if cred.password_hash == NO_PASSWORD else cred.password_hash
            return Account(_record(row), password, cred.pin_hash)

    async def list(self) -> list[UserRecord]:
        async with self._db.read_session() as s:
            return [_record(r) for r in (await s.execute(select(User).order_by(User.id))).scalars()]

    async def update(
        self,
        user_id: str,
        *,
        name: str | None = None,
        role: Role | None = None,
        active: bool | None = None,
        actor: str,
        now: datetime,
    ) -> UserRecord:
        """Change name, role or activity; a user disabled or given another role loses every token."""
        async with self._db.session() as s, s.begin():
            row = await s.get(User, user_id, with_for_update=True)
            if row is None:
                raise NotFound(f"no user {user_id!r}; `dialer user list` shows them")
            changed: dict[str, object] = {}
            if name is not None and row.name != name:
                changed["name"] = row.name = name
            if role is not None and row.role != Role(role).value:
                changed["role"] = row.role = Role(role).value
            if active is not None and row.active != active:
                changed["active"] = row.active = active
            if "role" in changed or changed.get("active") is False:
                await s.execute(delete(ApiToken).where(ApiToken.user_id == user_id))
            if changed:
                s.add(_audit(now, actor, "user.update", user_id, changed))
            return _record(row)

    async def set_password(self, user_id: str, password_hash: str, *, actor: str, now: datetime) -> None:
        """Replace the password; every token issued with the old one stops working."""
        async with self._db.session() as s, s.begin():
            if await s.get(User, user_id) is None:
                raise NotFound(f"no user {user_id!r}; `dialer user list` shows them")
            cred = await s.get(UserCredential, user_id, with_for_update=True)
            if cred is None:
                s.add(UserCredential(user_id=user_id, password_hash=password_hash, changed_at=now))
            else:
                cred.password_hash, cred.changed_at = password_hash, now
            await s.execute(delete(ApiToken).where(ApiToken.user_id == user_id))
            s.add(_audit(now, actor, "user.password", user_id, None))

    async def set_pin(self, user_id: str, pin_hash: str, *, actor: str, now: datetime) -> None:
        """Replace the phone PIN (the password, if any, is kept)."""
        async with self._db.session() as s, s.begin():
            if await s.get(User, user_id) is None:
                raise NotFound(f"no user {user_id!r}; `dialer user list` shows them")
            cred = await s.get(UserCredential, user_id, with_for_update=True)
            if cred is None:
                s.add(
                    UserCredential(
                        user_id=user_id, password_hash=NO_PASSWORD, pin_hash=pin_hash, changed_at=now
                    )
                )
            else:
                cred.pin_hash = pin_hash
            s.add(_audit(now, actor, "user.pin", user_id, None))

    async def rehash(self, user_id: str, password_hash: str, now: datetime) -> None:
        """Store a fresh hash of the same password (argon2 parameters were raised); no audit entry."""
        async with self._db.session() as s, s.begin():
            cred = await s.get(UserCredential, user_id, with_for_update=True)
            if cred is not None:
                cred.password_hash, cred.changed_at = password_hash, now

    async def issue_token(
        self, user_id: str, token_hash: str, *, now: datetime, expires_at: datetime
    ) -> None:
        async with self._db.session() as s, s.begin():
            # Expired tokens of this user go with each new one, so the table does not grow forever.
            await s.execute(delete(ApiToken).where(ApiToken.user_id == user_id, ApiToken.expires_at <= now))
            s.add(ApiToken(token_hash=token_hash, user_id=user_id, created_at=now, expires_at=expires_at))

    async def user_of_token(self, token_hash: str, now: datetime) -> tuple[UserRecord, datetime] | None:
        """The active user a token belongs to and when it expires; None if unknown, expired or disabled."""
        query = (
            select(User, ApiToken.expires_at)
            .join(ApiToken, ApiToken.user_id == User.id)
            .where(ApiToken.token_hash == token_hash, ApiToken.expires_at > now, User.active.is_(True))
        )
        async with self._db.read_session() as s:
            found = (await s.execute(query)).first()
            return None if found is None else (_record(found[0]), found[1])

    async def revoke_token(self, token_hash: str) -> None:
        async with self._db.session() as s, s.begin():
            await s.execute(delete(ApiToken).where(ApiToken.token_hash == token_hash))


def _audit(
    at: datetime, actor: str, action: str, user_id: str, detail: dict[str, object] | None
) -> AuditEntry:
    return AuditEntry(at=at, actor=actor, action=action, entity="user", entity_id=user_id, detail=detail)
