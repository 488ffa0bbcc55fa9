"""``dialer demo`` records its calls: one WAV file per connected call, as long as the conversation."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from dialer.recordings.report import recording_lines
from dialer.runtime.demo import DemoOptions, run_demo
from dialer.store.db import Database

TIME_SCALE = 10.0


@pytest.mark.slow
async def test_the_demo_records_every_connected_call(tmp_path: Path) -> None:
    """On the default (Asterisk) simulator; FreeSWITCH's files are checked in tests/telephony/supervision."""
    out = io.StringIO()
    options = DemoOptions(seconds=5.0, agents=3, leads=60, time_scale=TIME_SCALE, workdir=tmp_path)
    outcomes = await run_demo(options, out)
    assert outcomes["connected"] >= 2, out.getvalue()
    async with Database(f"sqlite+aiosqlite:///{tmp_path / 'dialer.db'}") as db:
        lines = await recording_lines(db, tmp_path / "recordings")
    assert len(lines) >= outcomes["connected"]
    for line in lines:
        assert line.problem is None and line.file_seconds is not None and line.talk_seconds is not None
        # the simulator's file is as long as the conversation, in the PBX's own seconds
        assert line.file_seconds == pytest.approx(line.talk_seconds * TIME_SCALE, abs=1.2), line
    assert f"Recordings: {len(lines)}/{len(lines)} files" in out.getvalue()
