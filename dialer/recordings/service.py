"""Recordings as the supervisor page and the retention job see them.

A recording is an attempt whose row names a file (``recording_file``, relative
to ``[recordings] dir``).  Its length is read from the WAV header the first time
the file is found and kept in ``recording_seconds``.  The retention job deletes
the files of calls older than their campaign's ``recording_retention_days``,
writes one ``recording_deletions`` row per file and logs it; the attempt keeps
no file name afterwards.
"""

from __future__ import annotations

import logging
import wave
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from dialer.domain.campaign import CampaignSettings
from dialer.recordings.tables import RecordingDeletion
from dialer.service import Invalid, NotFound
from dialer.service.accounts import Principal
from dialer.service.visibility import scope_of
from dialer.store.db import Database
from dialer.store.models import Attempt, Campaign

log = logging.getLogger(__name__)


class FileProblem(Exception):
    """The recording's file is missing or unreadable; the message says which."""


@dataclass(frozen=True, slots=True)
class RecordingInfo:
    attempt_id: str
    campaign_id: int
    agent_id: str | None
    file: str
    started_at: datetime | None
    seconds: float | None
    problem: str | None  # "missing" / "unreadable: ..." / None when the file is there


@dataclass(frozen=True, slots=True)
class Deleted:
    attempt_id: str
    campaign_id: int
    file: str
    seconds: float | None
    age_days: float
    reason: str  # "retention": deleted; "missing": already gone, the row is cleared


def wav_seconds(path: Path) -> float:
    """Length of a WAV file; FileProblem when it is missing or not a WAV file."""
    try:
        with wave.open(str(path), "rb") as w:
            rate = w.getframerate()
            return round(w.getnframes() / rate, 2) if rate else 0.0
    except FileNotFoundError as exc:
        raise FileProblem("missing") from exc
    except (OSError, wave.Error, EOFError) as exc:
        raise FileProblem(f"unreadable: {exc}") from exc


class Recordings:
    def __init__(self, db: Database, directory: Path, clock: Callable[[], datetime] | None = None) -> None:
        self.db = db
        self.directory = directory
        self._clock = clock or (lambda: datetime.now(UTC))

    def path_of(self, file: str) -> Path:
        """The file's path under the recordings directory; Invalid for a name that leaves it."""
        name = Path(file)
        if name.is_absolute() or ".." in name.parts or not file:
            raise Invalid(f"recording file name {file!r} is not a plain name under the recordings directory")
        return self.directory / name

    def _probe(self, row: Attempt) -> tuple[float | None, str | None]:
        try:
            return wav_seconds(self.path_of(row.recording_file or "")), None
        except FileProblem as exc:
            return row.recording_seconds, str(exc)
        except Invalid as exc:
            return row.recording_seconds, f"unreadable: {exc}"

    async def _info(self, row: Attempt) -> RecordingInfo:
        seconds, problem = self._probe(row)
        if problem is None and row.status == "closed" and row.recording_seconds != seconds:
            async with self.db.session() as s, s.begin():
                stored = await s.get(Attempt, row.id)
                if stored is not None:
                    stored.recording_seconds = seconds
        file = row.recording_file or ""
        return RecordingInfo(row.id, row.campaign_id, row.agent_id, file, row.connected_at, seconds, problem)

    async def find(
        self,
        who: Principal,
        *,
        campaign_id: int | None = None,
        agent_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
    ) -> list[RecordingInfo]:
        """The recordings ``who`` may see, newest first, filtered."""
        if not 1 <= limit <= 1000:
            raise Invalid(f"limit {limit} must be between 1 and 1000")
        scope = await scope_of(self.db, who)
        query = select(Attempt).where(Attempt.recording_file.is_not(None))
        if campaign_id is not None:
            query = query.where(Attempt.campaign_id == campaign_id)
        if agent_id is not None:
            query = query.where(Attempt.agent_id == agent_id)
        if scope.agents is not None:
            query = query.where(Attempt.agent_id.in_(sorted(scope.agents)))
        if since is not None:
            query = query.where(Attempt.created_at >= since)
        if until is not None:
            query = query.where(Attempt.created_at < until)
        query = query.order_by(Attempt.created_at.desc(), Attempt.id).limit(limit)
        async with self.db.session() as s:
            rows = list((await s.execute(query)).scalars().all())
        return [await self._info(row) for row in rows]

    async def get(self, who: Principal, attempt_id: str) -> RecordingInfo:
        """One recording ``who`` may see; NotFound otherwise (another agent's call looks absent)."""
        async with self.db.session() as s:
            row = await s.get(Attempt, attempt_id)
        scope = await scope_of(self.db, who)
        if row is None or row.recording_file is None or not scope.allows(row.agent_id):
            raise NotFound(f"no recording of call {attempt_id} that you may hear")
        return await self._info(row)

    async def purge(self) -> list[Deleted]:
        """Delete the files past their campaign's retention, log and record each deletion."""
        now = self._clock()
        deleted: list[Deleted] = []
        async with self.db.session() as s, s.begin():
            campaigns = {
                cid: CampaignSettings.from_dict(raw)
                for cid, raw in (await s.execute(select(Campaign.id, Campaign.settings))).all()
            }
            rows = (
                await s.execute(
                    select(Attempt).where(Attempt.recording_file.is_not(None), Attempt.status == "closed")
                )
            ).scalars()
            for row in rows:
                settings = campaigns.get(row.campaign_id)
                if settings is None:
                    continue
                days = settings.recording_retention_days
                ended = row.ended_at or row.created_at
                if ended > now - timedelta(days=days):
                    continue
                file = row.recording_file or ""
                reason = "retention"
                try:
                    self.path_of(file).unlink()
                except FileNotFoundError:
                    reason = "missing"
                except (OSError, Invalid) as exc:
                    log.error("recording %s of call %s could not be deleted: %s", file, row.id, exc)
                    continue
                age = (now - ended).total_seconds() / 86400
                s.add(
                    RecordingDeletion(
                        attempt_id=row.id,
                        campaign_id=row.campaign_id,
                        agent_id=row.agent_id,
                        file=file,
                        seconds=row.recording_seconds,
                        reason=reason,
                        retention_days=days,
                        deleted_at=now,
                    )
                )
                row.recording_file = None
                deleted.append(Deleted(row.id, row.campaign_id, file, row.recording_seconds, age, reason))
                log.info(
                    "recording %s of call %s (campaign %d) deleted: %.1f days old, retention %d days%s",
                    file,
                    row.id,
                    row.campaign_id,
                    age,
                    days,
                    " (the file was already gone)" if reason == "missing" else "",
                )
        return deleted

    async def deletions(self, limit: int = 100) -> list[RecordingDeletion]:
        async with self.db.session() as s:
            query = select(RecordingDeletion).order_by(RecordingDeletion.id.desc()).limit(limit)
            return list((await s.execute(query)).scalars().all())

    async def note_file(self, attempt_id: str, file: str) -> None:
        """The call is being recorded to ``file``: the attempt row carries it."""
        async with self.db.session() as s, s.begin():
            row = await s.get(Attempt, attempt_id)
            if row is not None and row.recording_file is None:
                row.recording_file = file
