"""The outbox relay: delivers what a committed unit of work promised to another system.

Today one kind of message: ``gate.outcome`` (a refusal or a do-not-call an
agent recorded), delivered to the compliance gate's ``record_outcome``.  A
message is marked delivered only after the gate returned; one that fails is
tried again (with a growing pause) until it goes through, in order, so a
crash between the disposition's commit and the gate's write never loses a
refusal: the next relay, on this node or another, delivers it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from dialer.runtime.ports import Gate, Lead
from dialer.service.uow import GATE_OUTCOME
from dialer.store.db import Database
from dialer.store.outbox_repo import OutboxRepository, PendingMessage
from telephony.base import mask_number

log = logging.getLogger(__name__)


# Dispositions the compliance gate must hear of: the kind of outcome it records for each.
GATE_KIND_OF_DISPOSITION = {"not_interested": "refusal", "do_not_call": "do_not_call"}


class OutboxRelay:
    """Polls the outbox and delivers.  ``deliver_pending`` is one pass; ``run`` loops until stopped."""

    def __init__(
        self,
        db: Database,
        gate: Gate,
        *,
        poll_s: float = 1.0,
        max_backoff_s: float = 60.0,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._repo = OutboxRepository(db)
        self._gate = gate
        self.poll_s = poll_s
        self.max_backoff_s = max_backoff_s
        self._wall = wall
        self._wake = asyncio.Event()
        self.failures = 0  # consecutive failed passes, for the backoff and metrics

    def wake(self) -> None:
        """A use case just committed a message: deliver now rather than at the next poll."""
        self._wake.set()

    async def deliver_pending(self) -> int:
        """Deliver every pending message in order; stop at the first failure (it is retried later)."""
        delivered = 0
        for message in await self._repo.pending():
            try:
                await self._deliver(message)
            except Exception as exc:
                await self._repo.failed(message.id)
                log.warning(
                    "outbox message %d (%s) not delivered, attempt %d: %s: %s; trying again",
                    message.id,
                    message.kind,
                    message.attempts + 1,
                    type(exc).__name__,
                    exc,
                )
                raise
            await self._repo.delivered(message.id, self._wall())
            delivered += 1
        return delivered

    async def _deliver(self, message: PendingMessage) -> None:
        if message.kind != GATE_OUTCOME:
            raise ValueError(f"unknown outbox message kind {message.kind!r}")
        p = message.payload
        lead = Lead(lead_id=p["lead_id"], campaign_id=p["campaign_id"], number=p["number"])
        await self._gate.record_outcome(lead, p["kind"], datetime.fromisoformat(p["at"]))
        log.info(
            "outbox message %d: %s of %s delivered to the compliance gate",
            message.id,
            p["kind"],
            mask_number(p["number"]),
        )

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self._wake.clear()  # a wake during the pass below makes the next wait return at once
            try:
                await self.deliver_pending()
                self.failures = 0
            except Exception:
                self.failures += 1
            pause = (
                self.poll_s if not self.failures else min(self.max_backoff_s, self.poll_s * 2**self.failures)
            )
            waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED), pause)
            for waiter in waiters:
                waiter.cancel()
