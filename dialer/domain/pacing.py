"""Pacing maths: how many new lines keep expected person-answers within the agents expected free.

Pure functions, no state and no I/O. The predictive pacer (dialer/pacing) feeds them with
learned probabilities; the benchmark's answer-time oracle feeds them with exact answer times.

The rule: A, the person answers still to come from the calls dialing (plus any new line), and F,
the agents free within a short horizon (ready now, or finishing talk and wrap-up soon, plus the
2 seconds a person may wait), are sums of independent Bernoulli variables. Lines open while
    E[A] + z * sd(A - F) <= E[F],
so the margin grows with the variance of both sides, not only with their means: many calls of
uncertain outcome, or agents whose release is a guess, call for more room than a few certain ones.
The pacer steers z from the abandonment budget.
"""

from __future__ import annotations


def fits(
    n: int,
    answers_mean: float,
    answers_var: float,
    free_mean: float,
    free_var: float,
    new_mean: float,
    new_var: float,
    z: float,
) -> bool:
    """Whether n new lines keep E[A] + z sd(A - F) within E[F]."""
    slack = free_mean - answers_mean - n * new_mean
    if slack < 0.0:
        return False
    variance = answers_var + n * new_var + free_var
    return slack * slack >= z * z * variance if z > 0.0 else True


def lines_within_margin(
    max_new: int,
    answers_mean: float,
    answers_var: float,
    free_mean: float,
    free_var: float,
    new_mean: float,
    new_var: float,
    z: float,
) -> int:
    """The most new lines (up to max_new) that keep person answers within the free agents, with margin.

    The left side grows with n, so the answer is found by doubling then bisecting: a handful of
    evaluations even with hundreds of lines of room.
    """
    if max_new <= 0 or new_mean <= 0.0:
        return 0

    def ok(n: int) -> bool:
        return fits(n, answers_mean, answers_var, free_mean, free_var, new_mean, new_var, z)

    if not ok(1):
        return 0
    low, high = 1, 2
    while high <= max_new and ok(high):
        low, high = high, high * 2
    high = min(high - 1, max_new)
    while low < high:
        mid = (low + high + 1) // 2
        if ok(mid):
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
    safety-scaled cap spends the budget left: more than the safety-scaled cap early in a window
    with room to spare (bounded by boldness * cap), less when the window is already close to the
    cap, zero when the budget is gone.
    """
    if expected_answers <= 0.0:
        return 0.0
    aim = cap * safety
    rate = (aim * (answered + expected_answers) - abandoned) / expected_answers
    return max(0.0, min(rate, cap * boldness))
