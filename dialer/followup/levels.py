"""The follow-up service levels as pure rules: when each task is due and whether it met its deadline.

Nothing here reads a clock or a database: the caller gives ``now``.  A task is
``open`` until its work is done; an open task past its due time is
``overdue``; a task done by its due time is ``met``, one done later ``missed``;
``refused`` is a callback the compliance gate would not let us make.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from dialer.domain.campaign import CampaignSettings

# The pacer needs a moment to reach a callback once it is due (a tick, a free line, a ready agent).
CALLBACK_SLACK = timedelta(minutes=2)
# A callback is never dialed straight after the call that booked it.
MIN_CALLBACK_DELAY = timedelta(minutes=1)


class Kind(enum.StrEnum):
    CALLBACK = "callback"  # a callback booked with the customer
    INFORMATION = "information"  # information promised by email
    FOLLOW_UP = "follow_up"  # a later contact in the customer's preferred channel
    MISSED_CALL_BACK = "missed_call_back"  # a customer we missed (an abandoned call) called back


class Stored(enum.StrEnum):
    """What the table keeps: open until the work is done, then how it went."""

    OPEN = "open"
    MET = "met"
    MISSED = "missed"
    REFUSED = "refused"


class Level(enum.StrEnum):
    """What people see: the stored state with ``overdue`` for open work past its due time."""

    OPEN = "open"
    OVERDUE = "overdue"
    MET = "met"
    MISSED = "missed"
    REFUSED = "refused"


def callback_dial_at(settings: CampaignSettings, now: datetime, asked_for: datetime | None) -> datetime:
    """When a booked callback may be dialed: the customer's time, else early enough to meet the default.

    Without a time the callback is promised within ``callback_default_delay_s``;
    it is dialed soon enough that the grace for an absent agent and the
    pacer's slack still fit before that promise.
    """
    if asked_for is not None:
        return asked_for
    lead_time = timedelta(seconds=settings.callback_default_delay_s) - timedelta(
        seconds=settings.callback_grace_s
    )
    return now + max(MIN_CALLBACK_DELAY, lead_time - CALLBACK_SLACK)


def callback_due(settings: CampaignSettings, dial_at: datetime) -> datetime:
    """The deadline of a callback dialed from ``dial_at``: its agent's grace, then anyone, then the slack."""
    return dial_at + timedelta(seconds=settings.callback_grace_s) + CALLBACK_SLACK


def due_after(kind: Kind, settings: CampaignSettings, start: datetime) -> datetime:
    """The deadline of the other kinds, counted from what caused the task."""
    seconds = {
        Kind.INFORMATION: settings.info_email_within_s,
        Kind.FOLLOW_UP: settings.follow_up_within_s,
        Kind.MISSED_CALL_BACK: settings.missed_call_back_within_s,
    }.get(kind)
    if seconds is None:
        raise ValueError(f"a {kind.value} task's deadline comes from its callback (callback_due)")
    return start + timedelta(seconds=seconds)


def settled(due_at: datetime, done_at: datetime) -> Stored:
    """The stored result of work done at ``done_at`` for a task due at ``due_at``."""
    return Stored.MET if done_at <= due_at else Stored.MISSED


def level(stored: Stored | str, due_at: datetime, now: datetime) -> Level:
    """How a task stands at ``now``."""
    stored = Stored(stored)
    if stored is Stored.OPEN:
        return Level.OVERDUE if now > due_at else Level.OPEN
    return Level(stored.value)


@dataclass(frozen=True, slots=True)
class Tally:
    """Tasks of one kind by level."""

    kind: Kind
    open: int = 0
    overdue: int = 0
    met: int = 0
    missed: int = 0
    refused: int = 0

    @property
    def late(self) -> int:
        """Deadlines not kept: done late, or still not done past the due time."""
        return self.missed + self.overdue


def tally(rows: Iterable[tuple[Kind | str, Level | str]]) -> dict[Kind, Tally]:
    """Count (kind, level) pairs into one tally per kind, every kind present."""
    counts: dict[Kind, dict[str, int]] = {k: {} for k in Kind}
    for kind, lvl in rows:
        bucket = counts[Kind(kind)]
        name = Level(lvl).value
        bucket[name] = bucket.get(name, 0) + 1
    return {k: Tally(k, **v) for k, v in counts.items()}
