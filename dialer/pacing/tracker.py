"""Abandonment tracker: the abandoned / person-answered rate of one campaign over its rolling window.

An abandoned call is a person-answered call not connected to an agent within 2 seconds. The
rate is counted over the jurisdiction's window (US: 30 days rolling, UK: 24 hours). The tracker
keeps only what it needs in memory; the daemon persists the history through the attempts table
and gives it back with restore() at start-up, so a restart never resets the budget.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

US_WINDOW_S = 30 * 86400.0
UK_WINDOW_S = 86400.0


class TrackerError(ValueError):
    """A tracker was configured or fed with values that cannot be right."""


@dataclass(frozen=True, slots=True)
class AbandonRecord:
    """One person-answered call: when it was answered and whether it was abandoned."""

    at: float
    person_answered: bool
    abandoned: bool


class AbandonmentTracker:
    """Rolling abandonment rate, budget and projection for one campaign."""

    def __init__(self, campaign_id: str, cap: float, window_s: float) -> None:
        if not 0.0 < cap < 1.0:
            raise TrackerError(
                f"campaign {campaign_id}: abandonment cap {cap!r} must be a fraction in (0, 1)"
            )
        if window_s <= 0.0:
            raise TrackerError(f"campaign {campaign_id}: window of {window_s!r} s must be positive")
        self.campaign_id = campaign_id
        self.cap = cap
        self.window_s = window_s
        self._events: deque[tuple[float, bool]] = deque()
        self._answered = 0
        self._abandoned = 0
        self._latest = float("-inf")

    def record(self, at: float, person_answered: bool, abandoned: bool) -> None:
        """Count one call outcome; only person-answered calls weigh on the rate."""
        if abandoned and not person_answered:
            raise TrackerError(
                f"campaign {self.campaign_id}: a call at {at} is marked abandoned but was not answered "
                "by a person; only person-answered calls can be abandoned"
            )
        if not person_answered:
            return
        if at < self._latest:
            # Outcomes come from several call legs and may arrive slightly out of order; keep the
            # deque sorted so eviction stays a pop from the left.
            self._insert_sorted(at, abandoned)
        else:
            self._events.append((at, abandoned))
            self._latest = at
        self._answered += 1
        if abandoned:
            self._abandoned += 1

    def _insert_sorted(self, at: float, abandoned: bool) -> None:
        items = list(self._events)
        index = len(items)
        while index > 0 and items[index - 1][0] > at:
            index -= 1
        items.insert(index, (at, abandoned))
        self._events = deque(items)

    def _evict(self, now: float) -> None:
        horizon = now - self.window_s
        events = self._events
        while events and events[0][0] <= horizon:
            _, abandoned = events.popleft()
            self._answered -= 1
            if abandoned:
                self._abandoned -= 1

    def counts(self, now: float) -> tuple[int, int]:
        """(person-answered, abandoned) within the window ending at now."""
        self._evict(now)
        return self._answered, self._abandoned

    def rate(self, now: float) -> float:
        """Abandoned / person-answered over the window (0 when nothing was answered)."""
        answered, abandoned = self.counts(now)
        return abandoned / answered if answered else 0.0

    def budget_left(self, now: float) -> float:
        """How many more abandons the window can take right now without crossing the cap."""
        answered, abandoned = self.counts(now)
        return self.cap * answered - abandoned

    def projected_rate(self, now: float, extra_answered: float, extra_abandoned: float) -> float:
        """The window's rate if extra_answered more person-answers come, extra_abandoned of them lost."""
        answered, abandoned = self.counts(now)
        total = answered + extra_answered
        return (abandoned + extra_abandoned) / total if total > 0 else 0.0

    def export(self) -> list[AbandonRecord]:
        """The history still inside the window, for persistence."""
        return [AbandonRecord(at, True, abandoned) for at, abandoned in self._events]

    def restore(self, records: Iterable[AbandonRecord | tuple[float, bool, bool]]) -> int:
        """Load history (e.g. from abandon_history(campaign_id, since)); returns how many were kept."""
        kept = 0
        rows = [
            r if isinstance(r, AbandonRecord) else AbandonRecord(float(r[0]), bool(r[1]), bool(r[2]))
            for r in records
        ]
        for row in sorted(rows, key=lambda r: r.at):
            if row.person_answered:
                self.record(row.at, True, row.abandoned)
                kept += 1
        return kept
