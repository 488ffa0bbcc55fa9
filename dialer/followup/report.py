"""The "Follow-up deadlines" section of a report (the demo's final one): per kind, met / missed / open."""

from __future__ import annotations

from datetime import datetime
from typing import TextIO

from dialer.followup.board import FollowupBoard, Summary
from dialer.store.db import Database


def deadlines_lines(summary: Summary) -> list[str]:
    """Missed counts the work done late and the work still not done past its due time (overdue)."""
    lines = ["Follow-up deadlines          met  missed  (overdue)    open  refused"]
    for kind, t in summary.kinds.items():
        name, overdue = kind.value.replace("_", " "), f"({t.overdue})"
        lines.append(f"  {name:<24}{t.met:6d}{t.late:8d}  {overdue:>9}{t.open:8d}{t.refused:9d}")
    return lines


async def print_deadlines(db: Database, now: datetime, out: TextIO) -> Summary:
    board = FollowupBoard(db)
    summary = await board.summary(now)
    print("\n".join(deadlines_lines(summary)), file=out)
    upcoming = [t.due_at for t in await board.tasks(now, limit=1000) if t.due_at > now]
    if upcoming:
        wait = (min(upcoming) - now).total_seconds()
        print(f"  the next open task falls due in {wait:.0f} s (a longer run: --minutes 5)", file=out)
    return summary
