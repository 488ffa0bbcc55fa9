"""Do-not-call entries of people whose data was erased on request: kept as a keyed hash of the number.

Erasing a customer deletes their number everywhere it is held in clear, the
do-not-call list included; the entry that protects them is moved here as an
HMAC of the number (key generated once and kept in the database), so the gate
still refuses the number and nobody can read it back from this table.  The gate
holds the (small) set in memory and picks up new rows from the database at most
``refresh_seconds`` later; a database it cannot read blocks the call (fail closed).
"""

from __future__ import annotations

import secrets
import time as monotime
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from dialer.compliance.dnc import Freshness
from dialer.compliance.history import NumberKeyer
from dialer.compliance.tables import ComplianceSetting, DncErased, read_only
from dialer.domain.compliance import DncHit

_KEY_SETTING = "erased_number_key"
GLOBAL = "global"


async def _stored_key(conn: AsyncConnection) -> str | None:
    found = await conn.execute(select(ComplianceSetting.value).where(ComplianceSetting.name == _KEY_SETTING))
    return found.scalar_one_or_none()


async def erased_keyer(engine: AsyncEngine) -> NumberKeyer:
    """The keyed hash of erased numbers; the key is made on first use and shared by every node."""
    async with engine.connect() as conn:
        value = await _stored_key(conn)
    if value is None:
        try:
            async with engine.begin() as conn:
                await conn.execute(
                    insert(ComplianceSetting).values(name=_KEY_SETTING, value=secrets.token_hex(32))
                )
        except IntegrityError:
            pass  # another process made it first: use theirs
        async with engine.connect() as conn:
            value = await _stored_key(conn)
    assert value is not None
    return NumberKeyer(value.encode())


def keep_hashed(
    s: AsyncSession,
    keyer: NumberKeyer,
    number: str,
    entries: Iterable[tuple[str | None, str, datetime | None]],
    now: datetime,
) -> int:
    """Add the hashed form of each (campaign_id, source, expires_at) entry of ``number`` to the session."""
    key = keyer(number)
    count = 0
    for campaign_id, source, expires_at in entries:
        s.add(
            DncErased(
                number_key=key,
                campaign_id=campaign_id,
                source=f"erased on request; was: {source}"[:120],
                created_at=now,
                expires_at=expires_at,
            )
        )
        count += 1
    return count


class ErasedNumbers:
    """What the gate reads: the hashed entries by key, refreshed from the database."""

    def __init__(self, engine: AsyncEngine, refresh_seconds: float = 1.0) -> None:
        self._engine = read_only(engine)
        self._writer = engine
        self.refresh_seconds = refresh_seconds
        self._keyer: NumberKeyer | None = None
        self._entries: dict[str, dict[str, DncHit]] = {}
        self._last_id = 0
        # Reloaded in the background; a check waits only when the set is older than refresh_seconds.
        self._fresh = Freshness(self._load, "the erased numbers")

    async def start(self) -> None:
        started = monotime.monotonic()
        self._keyer = await erased_keyer(self._writer)
        await self._load()
        self._fresh.mark_loaded(started)

    async def close(self) -> None:
        await self._fresh.close()

    async def _load(self) -> None:
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                select(
                    DncErased.id,
                    DncErased.number_key,
                    DncErased.campaign_id,
                    DncErased.source,
                    DncErased.expires_at,
                )
                .where(DncErased.id > self._last_id)
                .order_by(DncErased.id)
            )
            for row_id, key, campaign_id, source, expires_at in rows:
                scope = campaign_id or GLOBAL
                hit = DncHit(GLOBAL if scope == GLOBAL else "campaign", source, expires_at)
                self._entries.setdefault(key, {})[scope] = hit
                self._last_id = max(self._last_id, int(row_id))

    async def hits(self, number_e164: str, campaign_id: str) -> list[DncHit]:
        """The hashed entries that block ``number_e164`` for ``campaign_id`` (raises if it cannot look)."""
        if self._keyer is None:
            await self.start()
        else:
            await self._fresh.within(self.refresh_seconds)
        assert self._keyer is not None
        scopes = self._entries.get(self._keyer(number_e164))
        if not scopes:
            return []
        return [hit for scope, hit in scopes.items() if scope in (GLOBAL, campaign_id)]
