"""Users and signing in: argon2 password hashes, bearer tokens that expire.

A token is 32 random bytes (URL-safe text) handed out once; the record keeps
only its SHA-256, so a copy of the database signs nobody in.  Hashing a
password costs tens of milliseconds of CPU on purpose: it runs in a worker
thread, never on the event loop that answers the PBX.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from dialer.service import Invalid, NotFound, Unauthorized
from dialer.store import repositories as store
from dialer.store.db import Database
from dialer.store.repositories import Role, UserRecord
from dialer.store.users_repo import AccountRepository

DEFAULT_TOKEN_LIFETIME = timedelta(hours=12)  # one shift
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024
MIN_PIN_LENGTH = 4
MAX_PIN_LENGTH = 12
_USER_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-@")
# Verified against when the user does not exist, so a wrong login costs the same time as a wrong password.
_DUMMY_HASH = PasswordHasher().hash("not a real password")


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_user_id(user_id: str) -> str:
    if not 1 <= len(user_id) <= 64 or not set(user_id) <= _USER_ID_CHARS:
        raise Invalid(
            f"user id {user_id[:70]!r} is not valid: use 1 to 64 letters, digits, '.', '_', '-' or '@'"
        )
    return user_id


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise Invalid(f"the password is too short: use at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise Invalid(f"the password is too long: use at most {MAX_PASSWORD_LENGTH} characters")
    return password


def check_name(name: str) -> str:
    name = name.strip()
    if not 1 <= len(name) <= 200 or any(ord(c) < 32 for c in name):
        raise Invalid("the name must be 1 to 200 printable characters")
    return name


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str  # shown once; only its digest is stored
    user: UserRecord
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling, as the API sees them after the token checked out."""

    user_id: str
    name: str
    role: Role
    token_digest: str
    expires_at: datetime


class Accounts:
    """User administration and authentication (the CLI and the API use the same calls)."""

    def __init__(
        self,
        db: Database,
        *,
        token_lifetime: timedelta = DEFAULT_TOKEN_LIFETIME,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
        hasher: PasswordHasher | None = None,
    ) -> None:
        self._repo = AccountRepository(db)
        self._lifetime = token_lifetime
        self._wall = wall
        self._hasher = hasher or PasswordHasher()

    async def _hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, check_password(password))

    async def add_user(
        self, user_id: str, name: str, role: Role, password: str | None, *, actor: str
    ) -> UserRecord:
        check_user_id(user_id)
        digest = None if password is None else await self._hash(password)
        try:
            return await self._repo.add(
                user_id, check_name(name), role, digest, actor=actor, now=self._wall()
            )
        except store.Conflict as exc:
            raise Invalid(str(exc)) from None

    async def list_users(self) -> list[UserRecord]:
        return await self._repo.list()

    async def get_user(self, user_id: str) -> UserRecord:
        account = await self._repo.get(user_id)
        if account is None:
            raise NotFound(f"no user {user_id!r}")
        return account.user

    async def update_user(
        self,
        user_id: str,
        *,
        name: str | None = None,
        role: Role | None = None,
        active: bool | None = None,
        actor: str,
    ) -> UserRecord:
        try:
            return await self._repo.update(
                user_id,
                name=None if name is None else check_name(name),
                role=role,
                active=active,
                actor=actor,
                now=self._wall(),
            )
        except store.NotFound as exc:
            raise NotFound(str(exc)) from None

    async def set_password(self, user_id: str, password: str, *, actor: str) -> None:
        digest = await self._hash(password)
        try:
            await self._repo.set_password(user_id, digest, actor=actor, now=self._wall())
        except store.NotFound as exc:
            raise NotFound(str(exc)) from None

    async def set_pin(self, user_id: str, pin: str, *, actor: str) -> None:
        """The PIN an agent types on the phone after dialing the login extension."""
        if not (pin.isdigit() and MIN_PIN_LENGTH <= len(pin) <= MAX_PIN_LENGTH):
            raise Invalid(f"a PIN is {MIN_PIN_LENGTH} to {MAX_PIN_LENGTH} digits (the phone's keypad)")
        digest = await asyncio.to_thread(self._hasher.hash, pin)
        try:
            await self._repo.set_pin(user_id, digest, actor=actor, now=self._wall())
        except store.NotFound as exc:
            raise NotFound(str(exc)) from None

    async def check_pin(self, user_id: str, pin: str) -> UserRecord | None:
        """The active agent whose PIN this is, or None (unknown, disabled, not an agent, wrong PIN)."""
        if len(user_id) > 64 or not pin.isdigit() or len(pin) > MAX_PIN_LENGTH:
            return None
        account = await self._repo.get(user_id)
        if account is None or account.pin_hash is None or not account.user.active:
            await self._verify(_DUMMY_HASH, pin)
            return None
        if account.user.role is not Role.AGENT or not await self._verify(account.pin_hash, pin):
            return None
        return account.user

    async def login(self, user_id: str, password: str) -> IssuedToken:
        """A new token for the right password; the same refusal whatever was wrong."""
        refused = Unauthorized("unknown user or wrong password")
        if len(password) > MAX_PASSWORD_LENGTH or len(user_id) > 64:
            raise refused
        account = await self._repo.get(user_id)
        stored = account.password_hash if account is not None else None
        if account is None or stored is None or not account.user.active:
            await self._verify(_DUMMY_HASH, password)
            raise refused
        if not await self._verify(stored, password):
            raise refused
        now = self._wall()
        if self._hasher.check_needs_rehash(stored):
            await self._repo.rehash(user_id, await self._hash(password), now)
        token = secrets.token_urlsafe(32)
        expires_at = now + self._lifetime
        await self._repo.issue_token(user_id, token_digest(token), now=now, expires_at=expires_at)
        return IssuedToken(token, account.user, expires_at)

    async def _verify(self, stored: str, password: str) -> bool:
        def verify() -> bool:
            try:
                return self._hasher.verify(stored, password)
            except (VerificationError, InvalidHashError):
                return False

        return await asyncio.to_thread(verify)

    async def authenticate(self, token: str) -> Principal:
        """The user a bearer token belongs to; unknown, expired and disabled are all refused alike."""
        if not token or len(token) > 200:
            raise Unauthorized("a valid token is needed: POST /api/login with your user and password")
        digest = token_digest(token)
        found = await self._repo.user_of_token(digest, self._wall())
        if found is None:
            raise Unauthorized("the token is unknown or has expired: sign in again (POST /api/login)")
        user, expires_at = found
        return Principal(user.id, user.name, user.role, digest, expires_at)

    async def logout(self, principal: Principal) -> None:
        await self._repo.revoke_token(principal.token_digest)
