"""The fence of each campaign: the highest lease token any write for it has carried.

``advance_fence`` runs inside the transaction that opens an attempt or writes
its result: it raises :class:`AttemptFenced` (the transaction is rolled back)
when the write's token is older than the highest seen, and otherwise raises the
fence to it.  One upsert on PostgreSQL and on SQLite, whose row lock (or
SQLite's single writer) keeps two writers of one campaign in order.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from dialer.domain.fencing import AttemptFenced, fence_allows
from dialer.store.base import Base, UtcDateTime
from dialer.store.db import Database


class CampaignFence(Base):
    """The highest lease token seen for a campaign's attempts."""

    __tablename__ = "campaign_fences"

    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), primary_key=True)
    token: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


async def advance_fence(s: AsyncSession, campaign_id: int, token: int, now: datetime) -> None:
    """Refuse a write whose token is older than the campaign's fence; else raise the fence to it."""
    dialect = s.get_bind().dialect.name
    if dialect == "postgresql":
        pg = postgresql.insert(CampaignFence).values(campaign_id=campaign_id, token=token, updated_at=now)
        upsert = pg.on_conflict_do_update(
            index_elements=["campaign_id"],
            set_={"token": func.greatest(CampaignFence.token, pg.excluded.token), "updated_at": now},
        ).returning(CampaignFence.token)
    else:
        lite = sqlite.insert(CampaignFence).values(campaign_id=campaign_id, token=token, updated_at=now)
        upsert = lite.on_conflict_do_update(
            index_elements=["campaign_id"],
            set_={"token": func.max(CampaignFence.token, lite.excluded.token), "updated_at": now},
        ).returning(CampaignFence.token)
    highest = int((await s.execute(upsert)).scalar_one())
    if not fence_allows(token, highest):
        raise AttemptFenced(str(campaign_id), token, highest)


async def highest_token(db: Database, campaign_id: int) -> int:
    """The campaign's fence (0 before any fenced write): a new lease token must exceed it."""
    async with db.read_session() as s:
        found = (
            await s.execute(select(CampaignFence.token).where(CampaignFence.campaign_id == campaign_id))
        ).scalar_one_or_none()
        return int(found or 0)
