"""The store tests' running campaign, for the follow-up tests."""

from tests.store.conftest import campaign

__all__ = ["campaign"]
