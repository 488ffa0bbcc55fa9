"""Tests of the dialer's record (cli)."""
