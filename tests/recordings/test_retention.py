"""The retention job on a virtual clock: files past the campaign's period go, and the deletion is logged."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from dialer.recordings.service import Recordings
from dialer.recordings.tables import RecordingDeletion
from dialer.store.db import Database
from dialer.store.models import Attempt
from dialer.store.repositories import CampaignRecord
from tests.recordings.helpers import recorded_calls
from tests.store.conftest import T0


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def test_files_past_the_period_are_deleted_and_logged_files_inside_are_kept(
    db: Database, campaign: CampaignRecord, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    old, recent = await recorded_calls(
        db, campaign, tmp_path, [("1001", T0, 4.0), ("1002", T0 + timedelta(days=20), 6.0)]
    )
    clock = Clock(T0 + timedelta(days=29, hours=23))
    recordings = Recordings(db, tmp_path, clock)
    assert await recordings.purge() == []  # one hour short of 30 days: nothing goes
    assert (tmp_path / f"{old}.wav").is_file()

    clock.now = T0 + timedelta(days=30, hours=1)
    caplog.set_level(logging.INFO, "dialer.recordings")
    [deleted] = await recordings.purge()
    assert (deleted.attempt_id, deleted.reason) == (old, "retention")
    assert not (tmp_path / f"{old}.wav").exists()
    assert (tmp_path / f"{recent}.wav").is_file()
    async with db.session() as s:
        [logged] = (await s.execute(select(RecordingDeletion))).scalars().all()
        row = await s.get(Attempt, old)
    assert (logged.attempt_id, logged.file, logged.retention_days, logged.agent_id) == (
        old,
        f"{old}.wav",
        30,
        "1001",
    )
    assert logged.deleted_at == clock.now
    assert row is not None and row.recording_file is None  # the call keeps no name of a gone file
    assert any(
        f"{old}.wav" in r.getMessage() and "retention 30 days" in r.getMessage() for r in caplog.records
    )

    assert await recordings.purge() == []  # done once
    clock.now = T0 + timedelta(days=51)
    [later] = await recordings.purge()
    assert later.attempt_id == recent and not (tmp_path / f"{recent}.wav").exists()


async def test_a_file_already_gone_is_logged_as_missing(
    db: Database, campaign: CampaignRecord, tmp_path: Path
) -> None:
    [attempt] = await recorded_calls(db, campaign, tmp_path, [("1001", T0, 3.0)])
    (tmp_path / f"{attempt}.wav").unlink()
    [deleted] = await Recordings(db, tmp_path, Clock(T0 + timedelta(days=31))).purge()
    assert deleted.reason == "missing"
    [logged] = await Recordings(db, tmp_path).deletions()
    assert logged.reason == "missing"


async def test_the_period_is_the_campaigns_own(
    db: Database, campaign: CampaignRecord, tmp_path: Path
) -> None:
    [attempt] = await recorded_calls(db, campaign, tmp_path, [("1001", T0, 3.0)])
    longer = campaign.settings.with_changes(recording_retention_days=90)
    await db.campaigns.update_settings(campaign.id, longer, now=T0)
    assert await Recordings(db, tmp_path, Clock(T0 + timedelta(days=60))).purge() == []
    assert (tmp_path / f"{attempt}.wav").is_file()
