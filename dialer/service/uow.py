"""The unit of work: one database transaction that a use case writes everything into.

    async with SqlUnitOfWork(db) as uow:
        result = await uow.write_disposition(...)
        uow.add_message("gate.outcome", {...})
        await uow.commit()

Leaving the block without ``commit`` rolls back: nothing of the use case is
written, the outbox message included.  On SQLite the transaction starts with
``BEGIN IMMEDIATE`` (see ``dialer.store.db``), so two units of work on the same
attempt queue instead of both reading "no disposition yet".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, AsyncSessionTransaction

from dialer.followup import tasks as followup_tasks
from dialer.store.db import Database
from dialer.store.outbox_repo import add_message
from dialer.store.repositories import DispositionResult, write_disposition

GATE_OUTCOME = "gate.outcome"  # the outbox message the relay delivers to the compliance gate


class SqlUnitOfWork:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._session: AsyncSession | None = None
        self._tx: AsyncSessionTransaction | None = None
        self.now: datetime | None = None

    async def __aenter__(self) -> SqlUnitOfWork:
        self._session = self._db.session()
        self._tx = await self._session.begin()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._session is not None and self._tx is not None
        try:
            if self._tx.is_active:
                await self._tx.rollback()
        finally:
            await self._session.close()
            self._session = self._tx = None

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            raise RuntimeError("the unit of work is not open: use `async with SqlUnitOfWork(db) as uow`")
        return self._session

    async def commit(self) -> None:
        assert self._tx is not None
        await self._tx.commit()

    async def write_disposition(
        self,
        attempt_id: str,
        code: str,
        agent_id: str | None,
        *,
        now: datetime,
        identity: Mapping[str, Any] | None = None,
        objections: Sequence[str] = (),
        result: str | None = None,
        callback_at: datetime | None = None,
        callback_agent_only: bool = False,
        appointment_at: datetime | None = None,
        appointment_ends_at: datetime | None = None,
        next_actions: Sequence[str] = (),
        comments: str | None = None,
        information_template: str | None = None,
        follow_up: bool = False,
    ) -> DispositionResult:
        """The disposition, the lead's next state and the customer record's fields and comments.

        With it, the follow-up tasks the agent promises: the information email (queued here)
        and the follow-up contact.  A booked callback's task is written with the callback.
        """
        written = await write_disposition(
            self.session,
            self._db.engine.dialect.name,
            attempt_id,
            code,
            agent_id,
            now=now,
            identity=identity,
            objections=objections,
            result=result,
            callback_at=callback_at,
            callback_agent_only=callback_agent_only,
            appointment_at=appointment_at,
            appointment_ends_at=appointment_ends_at,
            next_actions=next_actions,
            comments=comments,
        )
        if written.changed:
            await followup_tasks.after_disposition(
                self.session,
                written.disposition_id,
                now,
                information_template=information_template,
                follow_up=follow_up,
            )
        return written

    def add_message(self, kind: str, payload: dict[str, Any], now: datetime) -> None:
        add_message(self.session, kind, payload, now)

    def tell_gate(self, lead_id: int, campaign_id: int, number: str, kind: str, now: datetime) -> None:
        """Queue a refusal or do-not-call for the compliance gate, committed with the rest."""
        payload = {
            "lead_id": str(lead_id),
            "campaign_id": str(campaign_id),
            "number": number,
            "kind": kind,
            "at": now.isoformat(),
        }
        self.add_message(GATE_OUTCOME, payload, now)
