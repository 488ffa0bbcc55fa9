"""Alembic revisions: ``0001_core`` and the revisions that build on it."""
