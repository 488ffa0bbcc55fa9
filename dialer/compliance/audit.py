"""The compliance audit: every gate decision, written in batches, searchable by number.

Decisions are buffered and flushed by a background task (every ``flush_seconds`` or when
``batch_size`` are waiting) so that the gate does not wait for a database round trip per call.
If the database refuses writes the buffer grows; past ``max_pending`` the gate blocks every call
(``healthy`` is False): a dialer that cannot record its decisions must not dial.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from prometheus_client import Counter
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from dialer.compliance.tables import ComplianceAudit, read_only

log = logging.getLogger(__name__)

# Labels are closed sets (allow/block and the rule names): never a number or a lead id.
DECISIONS = Counter(
    "dialer_compliance_decisions",
    "Compliance gate decisions, by outcome and by the rule that decided.",
    ["decision", "rule"],
)


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    decision: str  # allow | block
    rule: str
    reason: str
    number_masked: str
    number_key: str
    lead_id: str
    campaign_id: str
    retry_after: datetime | None


class SqlAuditSink:
    def __init__(
        self,
        engine: AsyncEngine,
        flush_seconds: float = 0.5,
        batch_size: int = 500,
        max_pending: int = 50_000,
    ) -> None:
        self.engine = engine
        self.flush_seconds = flush_seconds
        self.batch_size = batch_size
        self.max_pending = max_pending
        self._pending: list[AuditEntry] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._failing = False
        self._closing = False

    @property
    def healthy(self) -> bool:
        return len(self._pending) < self.max_pending

    def record(self, entry: AuditEntry) -> None:
        self._pending.append(entry)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())
        if len(self._pending) >= self.batch_size:
            self._wake.set()

    async def _run(self) -> None:
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.flush_seconds)
            self._wake.clear()
            if self._closing:
                return  # close() writes the rest
            try:
                # Only what was due when the flush began: draining entries that arrive meanwhile would
                # keep the writer busy with a few rows a transaction, next to every decision.
                await self._write(len(self._pending))
            except Exception:  # the buffer keeps the entries; healthy turns False if it keeps failing
                if not self._failing:
                    log.exception("compliance audit cannot be written; decisions are kept in memory")
                self._failing = True
                await asyncio.sleep(self.flush_seconds)

    async def flush(self) -> None:
        """Write every pending entry (on close, and for tests that read the audit back)."""
        while self._pending:
            await self._write(len(self._pending))

    async def _write(self, count: int) -> None:
        """Write the ``count`` oldest pending entries, ``batch_size`` a transaction."""
        while count > 0 and self._pending:
            batch = self._pending[: min(count, self.batch_size)]
            count -= len(batch)
            async with self.engine.begin() as conn:
                if conn.dialect.name == "sqlite":
                    # 100 rows x 9 columns stays under the 999 bound variables of older SQLite builds.
                    for start in range(0, len(batch), 100):
                        await conn.exec_driver_sql(*_sqlite_multirow_insert(batch[start : start + 100]))
                else:
                    await conn.execute(insert(ComplianceAudit), [asdict(e) for e in batch])
            del self._pending[: len(batch)]
            if self._failing:
                log.info("compliance audit written again")
                self._failing = False

    async def close(self) -> None:
        """Stop the writer and write what is left.

        The writer is asked to stop rather than cancelled: a cancellation arriving inside a database
        call can come back as an ordinary error, which the writer would survive, and close would wait
        for it forever.
        """
        if self._task is not None:
            self._closing = True
            self._wake.set()
            try:
                await self._task  # ends after the write in progress, if any
            finally:
                self._task = None
                self._closing = False
        await self.flush()


_COLUMNS = tuple(AuditEntry.__dataclass_fields__)


def _sqlite_datetime(value: datetime | None) -> str | None:
    # The text form SQLAlchemy's SQLite DateTime reads back (UTC, no offset).
    return None if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _sqlite_multirow_insert(batch: Sequence[AuditEntry]) -> tuple[str, tuple[object, ...]]:
    """One INSERT with many VALUES rows, parameters bound in C.

    Row-by-row parameter processing in the event loop thread, and the driver thread taking the GIL
    back for every row, stalled concurrent gate decisions by milliseconds; one statement does not.
    """
    placeholders = "(" + ",".join("?" * len(_COLUMNS)) + ")"
    sql = f"INSERT INTO compliance_audit ({', '.join(_COLUMNS)}) VALUES " + ",".join(
        [placeholders] * len(batch)
    )
    params: list[object] = []
    for e in batch:
        params += (
            _sqlite_datetime(e.at),
            e.decision,
            e.rule,
            e.reason,
            e.number_masked,
            e.number_key,
            e.lead_id,
            e.campaign_id,
            _sqlite_datetime(e.retry_after),
        )
    return sql, tuple(params)


async def query_audit(
    engine: AsyncEngine,
    number_key: str | None = None,
    campaign_id: str | None = None,
    since: datetime | None = None,
    limit: int = 200,
) -> Sequence[AuditEntry]:
    """Decisions, newest first, filtered by number (its key), campaign and start time."""
    t = ComplianceAudit
    query = (
        select(
            t.at,
            t.decision,
            t.rule,
            t.reason,
            t.number_masked,
            t.number_key,
            t.lead_id,
            t.campaign_id,
            t.retry_after,
        )
        .order_by(t.at.desc(), t.id.desc())
        .limit(limit)
    )
    if number_key is not None:
        query = query.where(t.number_key == number_key)
    if campaign_id is not None:
        query = query.where(t.campaign_id == campaign_id)
    if since is not None:
        query = query.where(t.at >= since)
    async with read_only(engine).connect() as conn:
        rows = await conn.execute(query)
        return [AuditEntry(*row) for row in rows]
