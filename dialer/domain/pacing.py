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
from dataclasses import dataclass

_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_INV_SQRT2PI = 1.0 / math.sqrt(2.0 * math.pi)

# Variance added to every deficit: persons and agents are whole numbers, the normal law is not
# (a uniform rounding error has variance 1/12).
ROUNDING_VARIANCE = 1.0 / 12.0


def expected_excess(mean: float, variance: float, third: float = 0.0) -> float:
    """E[X^+] for X of this mean, variance and third cumulant (normal law with a first Edgeworth term).

    Sums of Bernoulli variables with small probabilities (person answers) are skewed to the right:
    the plain normal law underestimates the upper tail that abandons come from. With Y standardized
    and d = -mean / sd, the Edgeworth density phi(y) (1 + skew/6 He3(y)) gives
    E[(Y - d)^+] = phi(d) - d Phi(-d) + skew/6 d phi(d).
    """
    if variance <= 1e-12:
        return mean if mean > 0.0 else 0.0
    sd = math.sqrt(variance)
    z = mean / sd
    cdf = 0.5 * math.erfc(-z * _INV_SQRT2)
    pdf = _INV_SQRT2PI * math.exp(-0.5 * z * z)
    excess = mean * cdf + sd * pdf
    if third:
        skew = third / (variance * sd)
        excess -= sd * skew / 6.0 * z * pdf
    return excess if excess > 0.0 else 0.0


@dataclass(frozen=True, slots=True)
class Moments:
    """Mean, variance and third cumulant per horizon of a sum of independent Bernoulli variables."""

    mean: Sequence[float]
    var: Sequence[float]
    third: Sequence[float]


def _excess_per_horizon(
    n: int, answers: Moments, free: Moments, new: Moments
) -> tuple[list[float], list[float]]:
    """Per horizon, E[(A_k - F_k)^+] and E[A_k - F_k] with n new lines (expected_excess inlined)."""
    am, av, a3 = answers.mean, answers.var, answers.third
    fm, fv, f3 = free.mean, free.var, free.third
    nm, nv, n3 = new.mean, new.var, new.third
    excess = []
    means = []
    sqrt, exp, erfc = math.sqrt, math.exp, math.erfc
    for k in range(len(am)):
        mean = am[k] + n * nm[k] - fm[k]
        var = av[k] + n * nv[k] + fv[k] + ROUNDING_VARIANCE
        sd = sqrt(var)
        z = mean / sd
        pdf = _INV_SQRT2PI * exp(-0.5 * z * z)
        value = mean * 0.5 * erfc(-z * _INV_SQRT2) + sd * pdf
        third = a3[k] + n * n3[k] - f3[k]
        value -= third / var * z * pdf / 6.0
        excess.append(value if value > 0.0 else 0.0)
        means.append(mean)
    return excess, means


def lines_worth_opening(
    max_new: int,
    answers: Moments,
    free: Moments,
    new: Moments,
    spans: Sequence[float],
    threshold: float,
) -> int:
    """The most new lines (up to max_new) whose last one buys enough agent time for its risk.

    For the n-th line, the agent idle time it saves over the horizon is the sum over k of
    span_k x (E[(F_k - A_k)^+] before - after) (idle agents are the other side of the deficit:
    E[(F - A)^+] = E[(A - F)^+] - E[A - F]); the abandons it adds are the growth of
    max_k E[(A_k - F_k)^+]. A line opens while added abandons <= threshold x idle seconds saved:
    a line for an agent already idle is worth a risk that a line for an agent who may free in
    twenty seconds is not, since that one can still be dialed later with more to go on.
    Both sides are monotone in n, so a binary search finds the last line worth it.
    """
    if max_new <= 0:
        return 0
    cache: dict[int, tuple[float, float]] = {}

    def totals(n: int) -> tuple[float, float]:
        found = cache.get(n)
        if found is None:
            excess, means = _excess_per_horizon(n, answers, free, new)
            idle = 0.0
            for span, e, m in zip(spans, excess, means, strict=True):
                idle += span * (e - m)
            found = (max(excess), idle)
            cache[n] = found
        return found

    def worth(n: int) -> bool:
        cost_hi, idle_hi = totals(n)
        cost_lo, idle_lo = totals(n - 1)
        saved = idle_lo - idle_hi
        return saved > 0.0 and cost_hi - cost_lo <= threshold * saved

    if not worth(1):
        return 0
    # Most decisions open a line or two: search upwards by doubling, then bisect.
    low, high = 1, 2
    while high <= max_new and worth(high):
        low, high = high, high * 2
    high = min(high - 1, max_new)
    while low < high:
        mid = (low + high + 1) // 2
        if worth(mid):
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
