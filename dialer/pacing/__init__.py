"""Dialing modes (progressive, ratio, predictive) and the abandonment tracker."""
