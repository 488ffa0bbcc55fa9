"""The abandonment tracker: rolling windows, budget, projection, persistence across a restart."""

import pytest

from dialer.pacing import UK_WINDOW_S, US_WINDOW_S, AbandonmentTracker, AbandonRecord, TrackerError

DAY = 86400.0


def _fill(tracker: AbandonmentTracker, day: float, answered: int, abandoned: int) -> None:
    for i in range(answered):
        tracker.record(day * DAY + i, True, i < abandoned)


def test_us_window_counts_30_days_rolling_across_a_restart() -> None:
    before = AbandonmentTracker("c1", 0.03, US_WINDOW_S)
    _fill(before, 0, 100, 10)  # day 0: 10 %, will leave the window
    _fill(before, 20, 100, 2)  # day 20: 2 %
    before.record(25 * DAY, False, False)  # not person-answered: no weight
    after = AbandonmentTracker("c1", 0.03, US_WINDOW_S)
    assert after.restore(before.export()) == 200
    assert after.counts(29 * DAY) == (200, 12)
    # Day 30 + a bit: day 0 is more than 30 days old and drops out; day 20 stays.
    assert after.counts(30 * DAY + 200) == (100, 2)
    assert after.rate(30 * DAY + 200) == pytest.approx(0.02)


def test_uk_window_keeps_only_24_hours_after_restore() -> None:
    before = AbandonmentTracker("c1", 0.03, UK_WINDOW_S)
    _fill(before, 0, 50, 5)
    _fill(before, 0.5, 50, 0)
    after = AbandonmentTracker("c1", 0.03, UK_WINDOW_S)
    after.restore([(r.at, r.person_answered, r.abandoned) for r in before.export()])
    assert after.counts(0.9 * DAY) == (100, 5)
    assert after.counts(1.2 * DAY) == (50, 0)
    assert after.rate(1.2 * DAY) == 0.0


def test_restore_drops_rows_that_were_not_person_answered() -> None:
    tracker = AbandonmentTracker("c1", 0.03, UK_WINDOW_S)
    kept = tracker.restore([AbandonRecord(1.0, True, True), AbandonRecord(2.0, False, False)])
    assert kept == 1
    assert tracker.counts(3.0) == (1, 1)


def test_out_of_order_outcomes_are_still_evicted_in_time_order() -> None:
    tracker = AbandonmentTracker("c1", 0.03, 100.0)
    tracker.record(50.0, True, False)
    tracker.record(10.0, True, True)  # late report of an earlier call
    assert tracker.counts(60.0) == (2, 1)
    assert tracker.counts(115.0) == (1, 0)


def test_budget_left_and_projected_rate() -> None:
    tracker = AbandonmentTracker("c1", 0.03, UK_WINDOW_S)
    _fill(tracker, 0, 1000, 20)
    assert tracker.budget_left(2000.0) == pytest.approx(10.0)
    assert tracker.projected_rate(2000.0, 1000, 50) == pytest.approx(70 / 2000)


def test_abandoned_call_that_no_person_answered_is_refused() -> None:
    tracker = AbandonmentTracker("c1", 0.03, UK_WINDOW_S)
    with pytest.raises(TrackerError, match="only person-answered"):
        tracker.record(1.0, False, True)


@pytest.mark.parametrize(("cap", "window"), [(0.0, UK_WINDOW_S), (1.5, UK_WINDOW_S), (0.03, 0.0)])
def test_impossible_cap_or_window_is_refused(cap: float, window: float) -> None:
    with pytest.raises(TrackerError):
        AbandonmentTracker("c1", cap, window)
