"""Abandonment tracker: the abandoned / person-answered rate of one campaign over its rolling window.

An abandoned call is a person-answered call not connected to an agent within 2 seconds. The
rate is counted over the jurisdiction's window (US: 30 days rolling, UK: 24 hours). The tracker
keeps only what it needs in memory; the daemon persists the history through the attempts table
and gives it back with restore() at start-up, so a restart never resets the budget.
"""

from __future__ import annotations

from bisect import bisect_right
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
        # Person-answered calls in time order from index _head on (those before have left the
        # window), and _lost[i], the abandoned calls among the first i: the counts of the window
        # at any moment, now or ahead, are two bisections away.
        self._at: list[float] = []
        self._lost: list[int] = [0]
        self._head = 0

    def record(self, at: float, person_answered: bool, abandoned: bool) -> None:
        """Count one call outcome; only person-answered calls weigh on the rate."""
        if abandoned and not person_answered:
            raise TrackerError(
                f"campaign {self.campaign_id}: a call at {at} is marked abandoned but was not answered "
                "by a person; only person-answered calls can be abandoned"
            )
        if not person_answered:
            return
        lost = 1 if abandoned else 0
        if not self._at or at >= self._at[-1]:
            self._at.append(at)
            self._lost.append(self._lost[-1] + lost)
            return
        # Outcomes come from several call legs and may arrive slightly out of order: insert in
        # time order (only the few calls after it shift) so that leaving the window stays in order.
        index = bisect_right(self._at, at, lo=self._head)
        self._at.insert(index, at)
        self._lost.insert(index + 1, self._lost[index] + lost)
        if lost:
            for i in range(index + 2, len(self._lost)):
                self._lost[i] += 1

    def _evict(self, now: float) -> None:
        self._head = bisect_right(self._at, now - self.window_s, lo=self._head)
        if self._head > 4096 and 2 * self._head > len(self._at):
            base = self._lost[self._head]
            del self._at[: self._head]
            self._lost = [n - base for n in self._lost[self._head :]]
            self._head = 0

    def counts(self, now: float) -> tuple[int, int]:
        """(person-answered, abandoned) within the window ending at now."""
        self._evict(now)
        return len(self._at) - self._head, self._lost[-1] - self._lost[self._head]

    def counts_ahead(self, now: float, ahead_s: float) -> tuple[int, int]:
        """(person-answered, abandoned) of the calls recorded so far still in the window at now + ahead_s."""
        self._evict(now)
        first = bisect_right(self._at, now + ahead_s - self.window_s, lo=self._head)
        return len(self._at) - first, self._lost[-1] - self._lost[first]

    def headroom(self, now: float, ahead_s: float = 0.0, answers_per_s: float = 0.0) -> float:
        """How many more calls may be abandoned without the window crossing the cap, now and at
        the worst moment of the next ahead_s seconds.

        Ahead, the calls recorded so far leave the window as they age (the room dips each time an
        answered call leaves, and comes back when an abandoned one does), while answers_per_s more
        person-answered calls, none abandoned, are assumed to come meanwhile. An abandoned call
        also counts as answered, hence the 1 / (1 - cap). Below 1, not one abandon is affordable;
        negative, the window is over the cap (or will be by then, with no abandon at all).
        """
        self._evict(now)
        at, lost, cap = self._at, self._lost, self.cap
        first = self._head
        answered, abandoned = len(at) - first, lost[-1] - lost[first]
        worst = cap * answered - abandoned
        if ahead_s > 0.0:
            last = bisect_right(at, now + ahead_s - self.window_s, lo=first)
            shift = self.window_s - now
            for i in range(first, last):
                # Just after the call handled at at[i] leaves the window, at at[i] + window_s.
                answered -= 1
                if lost[i + 1] > lost[i]:
                    abandoned -= 1
                    continue  # the room grows: not a dip
                room = cap * (answered + answers_per_s * (at[i] + shift)) - abandoned
                if room < worst:
                    worst = room
        return worst / (1.0 - cap)

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
        at, lost = self._at, self._lost
        return [AbandonRecord(at[i], True, lost[i + 1] > lost[i]) for i in range(self._head, len(at))]

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
