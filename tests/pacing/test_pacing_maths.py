"""Pacing maths and the learned models."""

import pytest

from dialer.domain.pacing import fits, lines_within_margin, target_abandon_rate
from dialer.pacing.model import AnswerModel, ReleaseModel


def test_margin_grows_with_the_variance_not_only_the_means() -> None:
    # Same means; more variance on the agents' side leaves room for fewer lines.
    certain = lines_within_margin(50, 1.0, 0.5, 5.0, 0.0, 0.2, 0.16, z=2.0)
    uncertain = lines_within_margin(50, 1.0, 0.5, 5.0, 2.0, 0.2, 0.16, z=2.0)
    assert certain > uncertain > 0


def test_lines_fill_the_room_exactly_under_the_rule() -> None:
    n = lines_within_margin(500, 2.0, 1.0, 30.0, 3.0, 0.2, 0.16, z=1.5)
    assert fits(n, 2.0, 1.0, 30.0, 3.0, 0.2, 0.16, 1.5)
    assert not fits(n + 1, 2.0, 1.0, 30.0, 3.0, 0.2, 0.16, 1.5)
    assert lines_within_margin(10, 2.0, 1.0, 30.0, 3.0, 0.2, 0.16, z=1.5) == 10  # capped by the room


def test_no_line_opens_when_agents_cannot_take_the_answers() -> None:
    assert lines_within_margin(40, 3.0, 1.0, 2.0, 0.5, 0.2, 0.16, z=0.0) == 0


def test_target_rate_is_bolder_with_budget_left_and_zero_when_it_is_gone() -> None:
    fresh = target_abandon_rate(0.03, 1000, 0, 1000.0, safety=0.9, boldness=1.0)
    spent = target_abandon_rate(0.03, 1000, 60, 1000.0, safety=0.9, boldness=1.0)
    assert fresh == pytest.approx(0.03)  # bounded by boldness x cap
    assert spent == 0.0
    assert (
        0.0 < target_abandon_rate(0.03, 1000, 30, 1000.0, safety=0.9, boldness=1.0) < 0.027
    )  # at the cap: careful


def test_answer_model_learns_that_long_ringing_calls_are_rarely_persons() -> None:
    model = AnswerModel(horizons=[5.0, 30.0])
    for i in range(1000):
        if i % 5 == 0:
            model.observe(6.0, True)  # persons answer at 6 s
        else:
            model.observe(22.0, False)  # everything else ends at 22 s
    model.refresh()
    assert model.person_probability == pytest.approx(0.2)
    assert model.row(0.0)[0][1] == pytest.approx(0.2)  # from launch, within 30 s
    assert model.row(4.0)[0][0] == pytest.approx(0.2)  # answers at 6 s: within the next 5 s
    assert model.row(10.0)[0][1] == 0.0  # ringing past 6 s: never a person here


def test_release_model_frees_wrapping_agents_first() -> None:
    model = ReleaseModel(horizons=[5.0, 15.0])
    for _ in range(100):
        model.observe_talk(100.0)
        model.observe_wrap(10.0)
    wrap_soon = model.wrap_row(8.0)[0]
    talk_early = model.talk_row(10.0)[0]
    assert wrap_soon[0] == pytest.approx(1.0)
    assert talk_early[1] == 0.0
    assert model.talk_row(98.0)[0][1] == pytest.approx(1.0)  # talk ends at 100 s, wrap-up 10 s
