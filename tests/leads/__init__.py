"""Tests of the dialer's record (leads)."""
