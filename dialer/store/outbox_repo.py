"""The outbox: what must reach another system after a commit, written in the same transaction.

A refusal recorded by an agent must reach the compliance gate (do-not-call,
lock-out) even if the process dies right after the disposition commits: the
use case adds an ``outbox`` row in its unit of work, and a relay
(``dialer.service.outbox``) delivers rows until the receiver acknowledges,
then stamps ``delivered_at``.  Delivery is at least once; receivers are idempotent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, Index, Integer, String, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from dialer.store.base import Base, UtcDateTime
from dialer.store.models import BigId

if TYPE_CHECKING:
    from dialer.store.db import Database


class OutboxMessage(Base):
    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_pending", "delivered_at", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)


@dataclass(frozen=True, slots=True)
class PendingMessage:
    id: int
    kind: str
    payload: dict[str, Any]
    created_at: datetime
    attempts: int


def add_message(s: AsyncSession, kind: str, payload: dict[str, Any], now: datetime) -> None:
    """Queue a message inside the caller's transaction: it exists exactly if that transaction commits."""
    s.add(OutboxMessage(kind=kind, payload=payload, created_at=now, attempts=0))


class OutboxRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def pending(self, limit: int = 100) -> list[PendingMessage]:
        """Undelivered messages, oldest first."""
        query = (
            select(OutboxMessage)
            .where(OutboxMessage.delivered_at.is_(None))
            .order_by(OutboxMessage.id)
            .limit(limit)
        )
        async with self._db.read_session() as s:
            return [
                PendingMessage(m.id, m.kind, dict(m.payload), m.created_at, m.attempts)
                for m in (await s.execute(query)).scalars()
            ]

    async def delivered(self, message_id: int, now: datetime) -> None:
        async with self._db.session() as s, s.begin():
            await s.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == message_id)
                .values(delivered_at=now, attempts=OutboxMessage.attempts + 1)
            )

    async def failed(self, message_id: int) -> None:
        async with self._db.session() as s, s.begin():
            await s.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == message_id)
                .values(attempts=OutboxMessage.attempts + 1)
            )
