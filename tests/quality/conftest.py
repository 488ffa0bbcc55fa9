"""The API stack of tests/api for the quality routes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from dialer.store.db import Database
from tests.api.conftest import Stack, build_stack


@pytest.fixture
async def stack(db: Database) -> AsyncIterator[Stack]:
    async for s in build_stack(db):
        yield s
