"""Alembic migrations of the dialer schema (run with ``dialer migrate``)."""
