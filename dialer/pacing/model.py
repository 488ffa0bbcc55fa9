"""What the predictive pacer learns online from what the dialer observes.

AnswerModel: from every dial's launch and outcome times, the probability that a call which has
rung e seconds is answered by a person within the next h seconds. It is an empirical hazard
(counts of terminal events per half-second of ring time, person answers apart), with
exponential forgetting so that a drifting contact rate is followed.

ReleaseModel: from agent state changes, the probability that an agent who has talked x seconds
(or wrapped up y seconds) is free within the next h seconds: the empirical talk-time law given
that it already exceeds x, convolved with the empirical wrap-up law.

Both build their lookup tables on refresh (every row a decision may need), so that a pacing
decision costs one table lookup and two additions per call in flight and per busy agent.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import accumulate

Row = tuple[tuple[float, ...], tuple[float, ...]]
"""Per horizon: probability p and its Bernoulli variance p(1 - p)."""


def _row(probs: Sequence[float]) -> Row:
    clipped = tuple(min(1.0, max(0.0, p)) for p in probs)
    return clipped, tuple(p * (1.0 - p) for p in clipped)


def _cdf_at(cdf: Sequence[float], bin_s: float, t: float) -> float:
    """A binned CDF read at ``t``, linear within the bin so small horizons are not rounded to nothing."""
    if t < 0.0:
        return 0.0
    index = int(t / bin_s)
    if index >= len(cdf):
        return 1.0
    low = cdf[index - 1] if index > 0 else 0.0
    return low + (cdf[index] - low) * (t / bin_s - index)


class AnswerModel:
    """Person-answer probability within each horizon, given the ring time already elapsed."""

    BIN_S = 0.5

    def __init__(
        self,
        horizons: Sequence[float],
        max_ring_s: float = 60.0,
        decay: float = 0.9,
        decay_every: int = 200,
        refresh_every: int = 25,
    ) -> None:
        self.horizons = tuple(horizons)
        self.bins = math.ceil(max_ring_s / self.BIN_S) + 1
        self._person = [0.0] * self.bins
        self._ended = [0.0] * self.bins
        self._decay = decay
        self._decay_every = decay_every
        self._refresh_every = refresh_every
        self._since_decay = 0
        self._since_refresh = 0
        self.observations = 0
        self.persons = 0
        self._table: list[Row] = []
        self._empty: Row = _row([0.0] * len(self.horizons))
        self.person_probability = 0.0

    def observe(self, ring_s: float, person: bool) -> None:
        """A dial ended after ring_s seconds: answered by a person, or anything else."""
        index = min(self.bins - 1, max(0, int(ring_s / self.BIN_S)))
        self._ended[index] += 1.0
        if person:
            self._person[index] += 1.0
            self.persons += 1
        self.observations += 1
        self._since_decay += 1
        self._since_refresh += 1
        if self._since_decay >= self._decay_every:
            self._since_decay = 0
            self._person = [w * self._decay for w in self._person]
            self._ended = [w * self._decay for w in self._ended]
        if self._since_refresh >= self._refresh_every or not self._table:
            self.refresh()

    def refresh(self) -> None:
        """Rebuild the lookup table from the current counts."""
        self._since_refresh = 0
        bins = self.bins
        cum_person = [0.0, *accumulate(self._person)]
        cum_ended = [0.0, *accumulate(self._ended)]
        total = cum_ended[-1]
        steps = [round(h / self.BIN_S) for h in self.horizons]
        table: list[Row] = []
        for b in range(bins):
            alive = total - cum_ended[b]
            if alive <= 1e-9:
                table.append(self._empty)
                continue
            base = cum_person[b]
            table.append(_row([(cum_person[min(bins, b + s)] - base) / alive for s in steps]))
        self._table = table
        self.person_probability = cum_person[-1] / total if total > 0 else 0.0

    def row(self, ring_s: float) -> Row:
        """Probabilities that a call ringing for ring_s seconds is a person answer within each horizon."""
        index = int(ring_s / self.BIN_S)
        if index >= self.bins or not self._table:
            return self._empty
        return self._table[index]

    def row_at_bin(self, index: int) -> Row:
        if index >= self.bins or not self._table:
            return self._empty
        return self._table[index]


class ReleaseModel:
    """Probability that a busy agent is free within each horizon, given time in talk or wrap-up."""

    TALK_BIN_S = 1.0
    TALK_CACHE_BIN_S = 2.0
    WRAP_BIN_S = 0.5
    WRAP_POINTS = 8

    def __init__(
        self,
        horizons: Sequence[float],
        max_talk_s: float = 3600.0,
        max_wrap_s: float = 600.0,
        refresh_every: int = 50,
    ) -> None:
        self.horizons = tuple(horizons)
        self._talk = [0.0] * (int(max_talk_s / self.TALK_BIN_S) + 1)
        self._wrap = [0.0] * (int(max_wrap_s / self.WRAP_BIN_S) + 1)
        self.talks = 0
        self.wraps = 0
        self._talk_sum = 0.0
        self._wrap_sum = 0.0
        self._refresh_every = refresh_every
        self._since_refresh = 0
        self._talk_cdf: list[float] = []
        self._wrap_cdf: list[float] = []
        self._wrap_points: list[float] = []
        self._talk_rows: dict[int, Row] = {}
        self._wrap_rows: dict[int, Row] = {}
        self._ready = False

    @property
    def mean_talk(self) -> float:
        return self._talk_sum / self.talks if self.talks else 0.0

    @property
    def mean_wrap(self) -> float:
        return self._wrap_sum / self.wraps if self.wraps else 0.0

    def observe_talk(self, duration_s: float) -> None:
        self._talk[min(len(self._talk) - 1, max(0, int(duration_s / self.TALK_BIN_S)))] += 1.0
        self.talks += 1
        self._talk_sum += duration_s
        self._tick()

    def observe_wrap(self, duration_s: float) -> None:
        self._wrap[min(len(self._wrap) - 1, max(0, int(duration_s / self.WRAP_BIN_S)))] += 1.0
        self.wraps += 1
        self._wrap_sum += duration_s
        self._tick()

    def _tick(self) -> None:
        self._since_refresh += 1
        # The laws settle quickly; refresh often at first, then about every 10 % more data.
        due = max(self._refresh_every, (self.talks + self.wraps) // 10)
        if self._since_refresh >= due or not self._ready:
            self.refresh()

    def refresh(self) -> None:
        """Rebuild the cumulative laws and drop the cached rows."""
        self._since_refresh = 0
        if not self.talks or not self.wraps:
            return
        talk_total = float(sum(self._talk))
        self._talk_cdf = [c / talk_total for c in accumulate(self._talk)]
        wrap_total = float(sum(self._wrap))
        self._wrap_cdf = [c / wrap_total for c in accumulate(self._wrap)]
        # Wrap-up as a few equally likely points (mid-quantiles): enough for the convolution.
        points = []
        for i in range(self.WRAP_POINTS):
            q = (i + 0.5) / self.WRAP_POINTS
            index = next(j for j, c in enumerate(self._wrap_cdf) if c >= q)
            points.append((index + 0.5) * self.WRAP_BIN_S)
        self._wrap_points = points
        # Every row a decision may need is built here, so that a decision never builds one.
        self._talk_rows = {
            b: self._build_talk_row(b)
            for b in range(int(len(self._talk_cdf) * self.TALK_BIN_S / self.TALK_CACHE_BIN_S) + 1)
        }
        self._wrap_rows = {b: self._build_wrap_row(b) for b in range(len(self._wrap_cdf) + 1)}
        self._ready = True

    def _talk_cdf_at(self, t: float) -> float:
        return _cdf_at(self._talk_cdf, self.TALK_BIN_S, t)

    def _wrap_cdf_at(self, t: float) -> float:
        return _cdf_at(self._wrap_cdf, self.WRAP_BIN_S, t)

    def _build_wrap_row(self, b: int) -> Row:
        y = b * self.WRAP_BIN_S
        base = self._wrap_cdf_at(y)
        alive = 1.0 - base
        if alive <= 1e-6:
            mean = max(self.mean_wrap, 1.0)
            return _row([1.0 - math.exp(-h / mean) for h in self.horizons])
        return _row([(self._wrap_cdf_at(y + h) - base) / alive for h in self.horizons])

    def _build_talk_row(self, b: int) -> Row:
        x = b * self.TALK_CACHE_BIN_S
        base = self._talk_cdf_at(x)
        alive = 1.0 - base
        if alive <= 1e-4:
            # Longer than anything seen: assume a memoryless remainder with the mean handle time.
            mean = max(self.mean_talk + self.mean_wrap, 1.0)
            return _row([1.0 - math.exp(-h / mean) for h in self.horizons])
        weight = 1.0 / (alive * len(self._wrap_points))
        probs = []
        for h in self.horizons:
            total = 0.0
            for w in self._wrap_points:
                gained = self._talk_cdf_at(x + h - w) - base
                if gained > 0.0:
                    total += gained
            probs.append(total * weight)
        return _row(probs)

    @property
    def ready(self) -> bool:
        return self._ready

    def talk_row(self, elapsed_s: float) -> Row:
        """Probabilities that an agent in talk for elapsed_s is free (talk and wrap done) per horizon."""
        b = int(elapsed_s / self.TALK_CACHE_BIN_S)
        row = self._talk_rows.get(b)
        if row is None:
            row = self._build_talk_row(b)
            self._talk_rows[b] = row
        return row

    def wrap_row(self, elapsed_s: float) -> Row:
        """Probabilities that an agent in wrap-up for elapsed_s is free per horizon."""
        b = min(int(elapsed_s / self.WRAP_BIN_S), len(self._wrap_cdf))
        row = self._wrap_rows.get(b)
        if row is None:
            row = self._build_wrap_row(b)
            self._wrap_rows[b] = row
        return row
