"""Predictive dialer service: pacing, compliance and the call record, over Asterisk or FreeSWITCH."""

__version__ = "0.1.0"
