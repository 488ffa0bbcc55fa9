"""The delivery worker: sends what the notifications table holds, and stamps each message's fate.

One pass (:meth:`DeliveryWorker.send_due`) claims the due messages of the
channels it has a notifier for, sends them side by side (each within its
notifier's timeout, so a batch ends well inside the lease), and stamps each:

* accepted: SENT;
* temporary failure: PENDING again after ``backoff_s * 2**(try-1)`` seconds,
  at most ``backoff_max_s``, times a random factor in [0.5, 1] so that many
  messages failed together do not all come back together; after
  ``max_attempts`` tries, FAILED with the last reason;
* permanent failure: FAILED with the reason at once.

A message whose worker stopped while it was SENDING (a crash, a deploy) is
claimed again once its lease ends and sent with the same Message-ID: the
outcome of the lost try is unknown, and the receiver can drop a copy it
already has.  Nothing is lost; a mail server that was down when a message was
due gets it when it is back, once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

from dialer.notify.config import NotifySettings
from dialer.notify.messages import Channel, Status
from dialer.notify.notifier import Notifier, Outcome, SendResult, scrub
from dialer.notify.store import Claim, claim_due, count_by_channel_status, finish
from dialer.store.db import Database

log = logging.getLogger(__name__)

_RUNNING: set[DeliveryWorker] = set()  # this process's workers, for wake_workers()


def wake_workers() -> None:
    """A use case committed messages: this process's delivery workers send them now, not at the next poll.

    Call it after the commit (a wake before it finds nothing to send); without a running worker
    it does nothing, and the messages wait for one.
    """
    for worker in list(_RUNNING):
        worker.wake()


class DeliveryWorker:
    def __init__(
        self,
        db: Database,
        notifiers: Mapping[Channel, Notifier],
        *,
        max_attempts: int = 12,
        backoff_s: float = 30.0,
        backoff_max_s: float = 3600.0,
        lease_s: float = 300.0,
        poll_s: float = 5.0,
        batch: int = 20,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
        rng: random.Random | None = None,
    ) -> None:
        self._db = db
        self._notifiers = dict(notifiers)
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.lease_s = lease_s
        self.poll_s = poll_s
        self.batch = batch
        self._wall = wall
        self._rng = rng or random.Random()
        self._wake = asyncio.Event()
        # By (channel, status), refreshed after each pass: the metrics read it without a query.
        self.counts: dict[tuple[str, str], int] = {}

    @classmethod
    def from_settings(
        cls,
        db: Database,
        settings: NotifySettings,
        *,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
        rng: random.Random | None = None,
    ) -> DeliveryWorker:
        """The worker with the notifiers ``[notify]`` configures (an SMTP server, an SMS gateway)."""
        from dialer.notify.sms import SmsGatewayNotifier
        from dialer.notify.smtp import SmtpNotifier

        notifiers: dict[Channel, Notifier] = {}
        if settings.smtp is not None:
            notifiers[Channel.EMAIL] = SmtpNotifier(settings.smtp)
        if settings.sms is not None:
            notifiers[Channel.SMS] = SmsGatewayNotifier(settings.sms)
        return cls(
            db,
            notifiers,
            max_attempts=settings.max_attempts,
            backoff_s=settings.backoff_s,
            backoff_max_s=settings.backoff_max_s,
            lease_s=settings.lease_s,
            poll_s=settings.poll_s,
            batch=settings.batch,
            wall=wall,
            rng=rng,
        )

    def wake(self) -> None:
        """A use case just committed a message: send now rather than at the next poll."""
        self._wake.set()

    def backoff(self, attempt: int) -> float:
        """Seconds before the try after try number ``attempt`` (1 for the first), jitter included."""
        full = min(self.backoff_max_s, self.backoff_s * 2.0 ** min(attempt - 1, 30))
        return full * self._rng.uniform(0.5, 1.0)

    async def send_due(self) -> int:
        """One pass: claim what is due, send it, stamp it; the number of messages claimed."""
        now = self._wall()
        claims = await claim_due(
            self._db,
            [c.value for c in self._notifiers],
            now=now,
            lease_until=now + timedelta(seconds=self.lease_s),
            limit=self.batch,
        )
        results = await asyncio.gather(*(self._deliver(c) for c in claims), return_exceptions=True)
        for claim, result in zip(claims, results, strict=True):
            if isinstance(result, Exception):  # its outcome is not stamped: tried again after its lease
                log.warning(
                    "notification %d: try %d not recorded (%s: %s); it is tried again after its lease",
                    claim.message.id,
                    claim.attempt,
                    type(result).__name__,
                    result,
                )
            elif isinstance(result, BaseException):
                raise result
        return len(claims)

    async def _deliver(self, claim: Claim) -> None:
        message = claim.message
        if claim.unknown_before:
            log.warning(
                "notification %d: try %d ended without an outcome (its worker stopped); sending again with "
                "the same Message-ID so the receiver can drop a copy",
                message.id,
                claim.attempt - 1,
            )
        try:
            result = await self._notifiers[Channel(message.channel)].send(message)
        except Exception as exc:  # a notifier's bug must not stop the others: counted as a failed try
            log.exception("notification %d: the %s notifier failed", message.id, message.channel)
            result = SendResult.temporary(f"internal error: {type(exc).__name__}")
        now = self._wall()
        if result.outcome is Outcome.ACCEPTED:
            kept = await finish(self._db, claim, Status.SENT, now=now)
        elif result.outcome is Outcome.PERMANENT:
            log.warning("notification %d: refused for good: %s", message.id, result.reason)
            kept = await finish(self._db, claim, Status.FAILED, now=now, error=result.reason)
        elif claim.attempt >= self.max_attempts:
            log.warning(
                "notification %d: given up after %d tries: %s", message.id, claim.attempt, result.reason
            )
            error = f"gave up after {claim.attempt} tries: {result.reason}"
            kept = await finish(self._db, claim, Status.FAILED, now=now, error=error)
        else:
            pause = self.backoff(claim.attempt)
            log.info(
                "notification %d: try %d failed (%s); next try in %.0f s",
                message.id,
                claim.attempt,
                result.reason,
                pause,
            )
            kept = await finish(
                self._db,
                claim,
                Status.PENDING,
                now=now,
                next_try_at=now + timedelta(seconds=pause),
                error=result.reason,
            )
        if not kept:
            log.warning(
                "notification %d: try %d outlived its lease and another worker took the message; its "
                "outcome (%s) is not recorded",
                message.id,
                claim.attempt,
                result.outcome.value,
            )

    async def run(self, stop: asyncio.Event) -> None:
        """Pass after pass until ``stop``: at once while batches are full, else each ``poll_s`` or on wake."""
        _RUNNING.add(self)
        try:
            await self._loop(stop)
        finally:
            _RUNNING.discard(self)

    async def _loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self._wake.clear()  # a wake during the pass below makes the next wait return at once
            claimed = 0
            try:
                claimed = await self.send_due()
                self.counts = await count_by_channel_status(self._db)
            except Exception as exc:  # the database is down: the messages wait in it
                first = scrub(str(exc).splitlines()[0] if str(exc) else "", 200)  # no SQL parameters
                log.warning("notifications: a pass failed (%s: %s); trying again", type(exc).__name__, first)
            if claimed >= self.batch:
                continue
            waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED), self.poll_s
                )
            for waiter in waiters:
                waiter.cancel()
