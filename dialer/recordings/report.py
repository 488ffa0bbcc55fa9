"""The recordings a run made, for ``dialer demo``'s final report and ``dialer recordings list``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from sqlalchemy import select

from dialer.recordings.service import FileProblem, wav_seconds
from dialer.store.db import Database
from dialer.store.models import Attempt


@dataclass(frozen=True, slots=True)
class RecordingLine:
    attempt_id: str
    agent_id: str | None
    file: str
    talk_seconds: float | None  # connected to hang-up, as the attempt says
    file_seconds: float | None  # as the WAV file says; None when it is missing or unreadable
    problem: str | None


async def recording_lines(db: Database, directory: Path, limit: int | None = None) -> list[RecordingLine]:
    """Every attempt that names a recording, oldest first, with what its file holds."""
    query = select(Attempt).where(Attempt.recording_file.is_not(None))
    query = query.order_by(Attempt.created_at, Attempt.id)
    if limit is not None:
        query = query.limit(limit)
    async with db.session() as s:
        rows = list((await s.execute(query)).scalars().all())
    lines = []
    for row in rows:
        file = row.recording_file or ""
        try:
            seconds: float | None = wav_seconds(directory / Path(file).name)
            problem = None
        except FileProblem as exc:
            seconds, problem = None, str(exc)
        lines.append(RecordingLine(row.id, row.agent_id, file, row.talk_seconds, seconds, problem))
    return lines


async def recordings_summary(
    db: Database, directory: Path, out: TextIO, show: int = 10, time_scale: float = 1.0
) -> None:
    """Print the recordings made; ``time_scale``: PBX seconds per wall second (a simulator's speed-up)."""
    lines = await recording_lines(db, directory)
    if not lines:
        print("Recordings: none", file=out)
        return
    found = [line for line in lines if line.file_seconds is not None]
    total = sum(line.file_seconds or 0.0 for line in found)
    print(f"Recordings: {len(found)}/{len(lines)} files, {total:.0f} s in {directory}", file=out)
    for line in lines[:show]:
        talk = f"{line.talk_seconds * time_scale:.1f} s" if line.talk_seconds is not None else "-"
        held = f"{line.file_seconds:.1f} s" if line.file_seconds is not None else line.problem
        print(f"  {line.file:<48} agent {line.agent_id or '-':<8} talk {talk:>8}  file {held}", file=out)
    if len(lines) > show:
        print(f"  ... and {len(lines) - show} more (`dialer recordings list`)", file=out)
