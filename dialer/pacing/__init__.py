"""Dialing modes (progressive, ratio, predictive) and the abandonment tracker."""

from dialer.pacing.limits import LimitsError, LineGate, PacingLimits
from dialer.pacing.pacers import (
    MODES,
    AgentActivity,
    BusyAgent,
    Pacer,
    PacingError,
    PacingSnapshot,
    PredictivePacer,
    PredictiveParams,
    ProgressivePacer,
    RatioPacer,
    RingOutcome,
    make_pacer,
    progressive_lines,
)
from dialer.pacing.tracker import UK_WINDOW_S, US_WINDOW_S, AbandonmentTracker, AbandonRecord, TrackerError

__all__ = [
    "MODES",
    "UK_WINDOW_S",
    "US_WINDOW_S",
    "AbandonRecord",
    "AbandonmentTracker",
    "AgentActivity",
    "BusyAgent",
    "LimitsError",
    "LineGate",
    "Pacer",
    "PacingError",
    "PacingLimits",
    "PacingSnapshot",
    "PredictivePacer",
    "PredictiveParams",
    "ProgressivePacer",
    "RatioPacer",
    "RingOutcome",
    "TrackerError",
    "make_pacer",
    "progressive_lines",
]
