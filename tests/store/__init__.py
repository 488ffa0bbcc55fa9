"""Tests of the dialer's record (store)."""
