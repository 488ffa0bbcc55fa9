"""Pacing maths: how many new lines keep expected person-answers within the agents expected free.

Pure functions, no state and no I/O. The predictive pacer (dialer/pacing) feeds them with
learned probabilities; the benchmark's answer-time oracle feeds them with exact answer times.

The model: over a grid of horizons h_k, A_k is the number of person-answers arriving in
(now, now + h_k] and F_k the number of agents free by now + h_k + grace (the grace is the
2 seconds a person may wait). Both are sums of independent Bernoulli variables, approximated
by normal laws. A person finding no agent is lost, so the number of abandons over the horizon is
the largest deficit sup_k (A_k - F_k)^+; its expectation is bounded below by max_k E[(A_k - F_k)^+],
which is what we price. A new line is worth opening while the abandons it adds per person it
brings stay under a threshold that the caller steers from the abandonment budget.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_INV_SQRT2PI = 1.0 / math.sqrt(2.0 * math.pi)

# Variance added to every deficit: persons and agents are whole numbers, the normal law is not
# (a uniform rounding error has variance 1/12).
ROUNDING_VARIANCE = 1.0 / 12.0


def expected_excess(mean: float, variance: float) -> float:
    """E[X^+] for X normal with this mean and variance."""
    if variance <= 1e-12:
        return mean if mean > 0.0 else 0.0
    sd = math.sqrt(variance)
    z = mean / sd
    cdf = 0.5 * math.erfc(-z * _INV_SQRT2)
    pdf = _INV_SQRT2PI * math.exp(-0.5 * z * z)
    return mean * cdf + sd * pdf


def deficit_cost(
    answers_mean: Sequence[float],
    answers_var: Sequence[float],
    free_mean: Sequence[float],
    free_var: Sequence[float],
) -> float:
    """Expected abandons over the horizon: max over k of E[(A_k - F_k)^+]."""
    worst = 0.0
    for am, av, fm, fv in zip(answers_mean, answers_var, free_mean, free_var, strict=True):
        cost = expected_excess(am - fm, av + fv + ROUNDING_VARIANCE)
        if cost > worst:
            worst = cost
    return worst


def cost_with_new_lines(
    n: int,
    answers_mean: Sequence[float],
    answers_var: Sequence[float],
    free_mean: Sequence[float],
    free_var: Sequence[float],
    new_mean: Sequence[float],
    new_var: Sequence[float],
) -> float:
    """Expected abandons over the horizon if n identical new lines are opened now."""
    worst = 0.0
    for k in range(len(answers_mean)):
        mean = answers_mean[k] + n * new_mean[k] - free_mean[k]
        var = answers_var[k] + n * new_var[k] + free_var[k] + ROUNDING_VARIANCE
        cost = expected_excess(mean, var)
        if cost > worst:
            worst = cost
    return worst


def lines_within_threshold(
    max_new: int,
    answers_mean: Sequence[float],
    answers_var: Sequence[float],
    free_mean: Sequence[float],
    free_var: Sequence[float],
    new_mean: Sequence[float],
    new_var: Sequence[float],
    new_person_probability: float,
    threshold: float,
) -> int:
    """The most new lines (up to max_new) whose last one adds at most threshold abandons per person.

    The marginal cost grows with n (the deficit's excess is convex in its mean), so a binary
    search over n is exact under the model and keeps the decision cheap when hundreds of lines
    are in flight.
    """
    if max_new <= 0:
        return 0
    allowance = threshold * new_person_probability

    def marginal_ok(n: int) -> bool:
        hi = cost_with_new_lines(n, answers_mean, answers_var, free_mean, free_var, new_mean, new_var)
        lo = cost_with_new_lines(n - 1, answers_mean, answers_var, free_mean, free_var, new_mean, new_var)
        return hi - lo <= allowance

    if not marginal_ok(1):
        return 0
    low, high = 1, max_new
    while low < high:
        mid = (low + high + 1) // 2
        if marginal_ok(mid):
            low = mid
        else:
            high = mid - 1
    return low


def target_abandon_rate(
    cap: float,
    answered: int,
    abandoned: int,
    expected_answers: float,
    safety: float,
    boldness: float,
) -> float:
    """The abandonment rate to aim at over the next period so that the window ends under the cap.

    With answered / abandoned already in the window and expected_answers still to come, aiming at
    r gives a window rate of (abandoned + r * expected) / (answered + expected); solving for the
    safety-scaled cap spends the budget left: more than the cap early in a window with room to
    spare (bounded by boldness * cap), less when the window is already close to it, zero when the
    budget is gone.
    """
    if expected_answers <= 0.0:
        return 0.0
    aim = cap * safety
    rate = (aim * (answered + expected_answers) - abandoned) / expected_answers
    return max(0.0, min(rate, cap * boldness))
