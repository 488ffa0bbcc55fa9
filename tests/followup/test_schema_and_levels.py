"""The followup_tasks migration matches its model; the service-level rules on their own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection

from dialer.domain.campaign import CampaignSettings
from dialer.followup.levels import (
    Kind,
    Level,
    Stored,
    callback_dial_at,
    callback_due,
    due_after,
    level,
    settled,
    tally,
)
from dialer.followup.tasks import FollowupTask
from dialer.followup.templates import TemplateError, load_templates
from dialer.store.base import Base
from dialer.store.db import Database

NOW = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)


async def test_the_migration_builds_the_followup_tasks_table_of_the_model(db: Database) -> None:
    def ours(name: str | None, type_: str, parent_names: Any) -> bool:
        return type_ != "table" or name == FollowupTask.__tablename__

    def diff(conn: Connection) -> list[Any]:
        context = MigrationContext.configure(
            conn,
            opts={
                "compare_type": True,
                "include_name": ours,
                "include_object": lambda obj, name, type_, reflected, other: ours(name, type_, None),
            },
        )
        return list(compare_metadata(context, Base.metadata))

    async with db.engine.connect() as conn:
        assert await conn.run_sync(diff) == []


def test_a_callback_without_a_time_is_promised_within_the_default_delay() -> None:
    s = CampaignSettings(dial_string="PJSIP/{number}@t", caller_id="+33100000000")
    dial_at = callback_dial_at(s, NOW, None)
    assert callback_due(s, dial_at) == NOW + timedelta(seconds=s.callback_default_delay_s)
    asked = NOW + timedelta(days=1)
    assert callback_dial_at(s, NOW, asked) == asked
    short = s.with_changes(callback_default_delay_s=60.0)
    assert callback_dial_at(short, NOW, None) == NOW + timedelta(minutes=1)  # never straight away


def test_deadlines_of_the_other_kinds_come_from_the_campaign() -> None:
    s = CampaignSettings(dial_string="PJSIP/{number}@t", caller_id="+33100000000").with_changes(
        info_email_within_s=600.0
    )
    assert due_after(Kind.INFORMATION, s, NOW) == NOW + timedelta(minutes=10)
    assert due_after(Kind.FOLLOW_UP, s, NOW) == NOW + timedelta(hours=48)
    assert due_after(Kind.MISSED_CALL_BACK, s, NOW) == NOW + timedelta(hours=1)
    with pytest.raises(ValueError, match="callback_due"):
        due_after(Kind.CALLBACK, s, NOW)


def test_levels_over_the_clock() -> None:
    due = NOW + timedelta(hours=1)
    assert level(Stored.OPEN, due, due) is Level.OPEN
    assert level(Stored.OPEN, due, due + timedelta(microseconds=1)) is Level.OVERDUE
    assert settled(due, due) is Stored.MET and settled(due, due + timedelta(seconds=1)) is Stored.MISSED
    assert level("met", due, due + timedelta(days=9)) is Level.MET
    counts = tally([("callback", "overdue"), ("callback", "met"), ("information", "missed")])
    assert counts[Kind.CALLBACK].late == 1 and counts[Kind.INFORMATION].late == 1
    assert counts[Kind.FOLLOW_UP].open == 0


def test_the_shipped_templates_load_and_a_broken_one_is_named(tmp_path: Any) -> None:
    assert set(load_templates()) == {"brochure", "configurator"}
    broken = tmp_path / "t.toml"
    broken.write_text('[leaflet]\nlabel = "L"\nsubject = "S"\nlink = "x"\nbody = "Hi {name}"\n')
    with pytest.raises(TemplateError, match=r"\[leaflet\] uses an unknown placeholder"):
        load_templates(broken)
