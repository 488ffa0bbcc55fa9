"""The limits every pacer obeys, applied in one place: lines per campaign and per trunk, calls per second."""

from __future__ import annotations

from dataclasses import dataclass


class LimitsError(ValueError):
    """Pacing limits that cannot work."""


@dataclass(frozen=True, slots=True)
class PacingLimits:
    """max_lines: calls dialing at once for the campaign; calls_per_second: originate rate (None = no limit);
    burst: how many originates may leave at once when the rate allows."""

    max_lines: int = 50
    calls_per_second: float | None = None
    burst: int = 5

    def __post_init__(self) -> None:
        if self.max_lines < 1:
            raise LimitsError(f"max_lines is {self.max_lines}; set it to 1 or more lines per campaign")
        if self.calls_per_second is not None and self.calls_per_second <= 0:
            raise LimitsError(
                f"calls_per_second is {self.calls_per_second}; set a positive rate or leave it unset"
            )
        if self.burst < 1:
            raise LimitsError(f"burst is {self.burst}; set it to 1 or more")


class LineGate:
    """Clamps a wanted number of new lines to the limits; owns the calls-per-second token bucket."""

    def __init__(self, limits: PacingLimits) -> None:
        self.limits = limits
        self._tokens = float(limits.burst)
        self._refilled_at: float | None = None

    def admit(self, wanted: int, in_flight: int, trunk_lines_free: int | None, now: float) -> int:
        """How many of `wanted` new lines may open now; those are taken from the rate budget."""
        n = min(wanted, self.limits.max_lines - in_flight)
        if trunk_lines_free is not None:
            n = min(n, trunk_lines_free)
        rate = self.limits.calls_per_second
        if rate is not None:
            if self._refilled_at is None:
                self._refilled_at = now
            elapsed = max(0.0, now - self._refilled_at)
            self._tokens = min(float(self.limits.burst), self._tokens + elapsed * rate)
            self._refilled_at = now
            n = min(n, int(self._tokens))
        if n <= 0:
            return 0
        if rate is not None:
            self._tokens -= n
        return n
