"""Pacing maths and the learned models."""

import math

import pytest

from dialer.domain.pacing import Moments, expected_excess, lines_worth_opening, target_abandon_rate
from dialer.pacing.model import AnswerModel, ReleaseModel


def test_expected_excess_of_a_centred_normal_is_its_sd_over_sqrt_2pi() -> None:
    assert expected_excess(0.0, 4.0) == pytest.approx(2.0 / math.sqrt(2.0 * math.pi))
    assert expected_excess(-10.0, 1.0) < 1e-12
    assert expected_excess(10.0, 1.0) == pytest.approx(10.0)


def test_right_skew_raises_the_expected_excess_below_the_mean() -> None:
    assert expected_excess(-2.0, 1.0, third=0.5) > expected_excess(-2.0, 1.0)


def _flat(value: float, k: int = 4) -> list[float]:
    return [value] * k


def test_more_lines_open_when_more_agents_are_free() -> None:
    answers = Moments(_flat(0.5), _flat(0.4), _flat(0.3))
    new = Moments([0.02, 0.08, 0.15, 0.19], [0.02, 0.07, 0.13, 0.15], [0.02, 0.06, 0.09, 0.09])
    spans = [2.0, 2.0, 4.0, 10.0]
    few = lines_worth_opening(40, answers, Moments(_flat(1.0), _flat(0.1), _flat(0.0)), new, spans, 1e-3)
    many = lines_worth_opening(40, answers, Moments(_flat(4.0), _flat(0.1), _flat(0.0)), new, spans, 1e-3)
    assert many > few


def test_no_line_opens_when_agents_cannot_take_the_answers() -> None:
    answers = Moments(_flat(3.0), _flat(1.0), _flat(0.5))
    new = Moments(_flat(0.2), _flat(0.16), _flat(0.1))
    assert (
        lines_worth_opening(40, answers, Moments(_flat(0.0), _flat(0.0), _flat(0.0)), new, _flat(2.0), 1e-3)
        == 0
    )


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
