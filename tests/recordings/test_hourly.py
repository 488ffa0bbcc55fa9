"""The daemon's retention task: runs at once, then every period, survives a failed run, stops when told."""

from __future__ import annotations

import asyncio

import pytest

from dialer.recordings.runtime import purge_hourly
from dialer.recordings.service import Deleted


class CountingRecordings:
    def __init__(self) -> None:
        self.runs = 0

    async def purge(self) -> list[Deleted]:
        self.runs += 1
        if self.runs == 2:
            raise OSError("disk gone")
        return []


async def test_the_task_purges_periodically_and_survives_a_failure(caplog: pytest.LogCaptureFixture) -> None:
    recordings = CountingRecordings()
    stop = asyncio.Event()
    task = asyncio.create_task(purge_hourly(recordings, stop, every_s=0.02))  # type: ignore[arg-type]
    while recordings.runs < 4:
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, 1.0)
    assert any("retention job failed" in r.getMessage() for r in caplog.records)
    runs = recordings.runs
    await asyncio.sleep(0.05)
    assert recordings.runs == runs  # stopped

