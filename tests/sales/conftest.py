"""The API stack of tests/api with a configured seller, and a call of agent1 in wrap-up."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from dialer.sales.service import Sales
from dialer.settings import SellerSettings
from dialer.store.db import Database
from telephony.base import HungUp
from tests.api.conftest import Stack, build_stack
from tests.api.test_agent_flow import _add_lead, _call_reaches

NUMBER = "+33612345678"
SELLER = SellerSettings(
    name="Soleil Énergie SARL", address="12 rue de la Paix, 75002 Paris", email="c@soleil.example"
)


@pytest.fixture
async def stack(db: Database) -> AsyncIterator[Stack]:
    async for s in build_stack(db):
        s.desk.sales = Sales(db, SELLER)
        yield s


async def call_in_wrap_up(stack: Stack, first_name: str = "Jeanne") -> tuple[str, dict[str, str]]:
    """agent1 took a call from NUMBER and it ended: (attempt id, agent1's headers)."""
    await _add_lead(stack, stack.campaign_id, first_name)
    me = await stack.token("agent1")
    await stack.client.post("/api/me/login", headers=me)
    await stack.client.post("/api/me/ready", headers=me)
    attempt_id = await _call_reaches(stack, "agent1")
    await stack.engine.handle(HungUp(attempt_id, time.time(), cause=16))
    return attempt_id, me
