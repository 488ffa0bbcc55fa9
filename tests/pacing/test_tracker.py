"""The abandonment tracker: rolling windows, budget, projection, persistence across a restart."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


def test_headroom_counts_the_abandons_the_window_can_still_take() -> None:
    def tracker() -> AbandonmentTracker:
        made = AbandonmentTracker("c1", 0.01, UK_WINDOW_S)
        _fill(made, 0, 300, 1)  # 300 answered in the first 300 s, the first one abandoned
        return made

    # 1 % of 300 is 3 abandons, 1 taken; an abandon also counts as answered: 2 / 0.99 more.
    assert tracker().headroom(400.0) == pytest.approx(2.0 / 0.99)
    # A day later the first 150 calls (the abandon among them) have left: 1.5 / 0.99.
    assert tracker().headroom(DAY + 149.5) == pytest.approx(1.5 / 0.99)
    # Looked at from now, the worst moment of the day ahead: the calls of 1 to 249 s have left
    # the window (the abandon of 0 s with them) and none came: 0.5 / 0.99...
    ahead = DAY - 400.0 + 249.5
    assert tracker().headroom(400.0, ahead) == pytest.approx(0.5 / 0.99)
    # ... a little more if answers keep coming meanwhile (the worst moment is when the call of
    # 249 s leaves) ...
    assert tracker().headroom(400.0, ahead, answers_per_s=1e-5) == pytest.approx(
        0.01 * (50 + 1e-5 * (DAY + 249.0 - 400.0)) / 0.99
    )
    # ... and none at all if they come fast enough: the worst moment is then now.
    assert tracker().headroom(400.0, ahead, answers_per_s=0.01) == pytest.approx(2.0 / 0.99)
    # The room comes back when an abandoned call leaves: the dip, not the end, is what counts.
    dip = AbandonmentTracker("c1", 0.01, UK_WINDOW_S)
    for i in range(300):
        dip.record(float(i), True, i == 200)  # the abandon is the 201st call
    assert dip.headroom(400.0, DAY) == pytest.approx((0.01 * 100 - 1) / 0.99)  # just before 200 leaves
    assert dip.headroom(DAY + 250.0) == pytest.approx(0.49 / 0.99)  # 49 left, no abandon among them


def test_headroom_is_negative_once_the_window_is_over_the_cap() -> None:
    tracker = AbandonmentTracker("c1", 0.01, UK_WINDOW_S)
    _fill(tracker, 0, 50, 1)
    assert tracker.headroom(100.0) < 0.0


@settings(max_examples=200, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.floats(0.0, 5000.0), st.booleans(), st.floats(0.0, 300.0)), min_size=1, max_size=80
    )
)
def test_counts_match_a_recount_whatever_the_order_calls_are_reported(
    steps: list[tuple[float, bool, float]],
) -> None:
    # Calls reported in any order (late reports included), the window asked about as time goes on.
    window = 1000.0
    tracker = AbandonmentTracker("c1", 0.03, window)
    reported: list[tuple[float, bool]] = []
    now = 0.0
    for at, abandoned, later in steps:
        tracker.record(at, True, abandoned)
        reported.append((at, abandoned))
        now += later
        inside = [lost for when, lost in reported if now - window < when <= now]
        if any(when > now for when, _ in reported):
            continue  # a call reported ahead of the clock asked about: not a question the pacer asks
        assert tracker.counts(now) == (len(inside), sum(inside))
        assert tracker.headroom(now) == pytest.approx((0.03 * len(inside) - sum(inside)) / 0.97)
