"""A desk over a real Engine (FakePbx, FakeGate, FixedPacer) and the SQL record, and the API on it."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI

from dialer.api.app import create_app
from dialer.domain.campaign import CampaignSettings, CampaignStatus
from dialer.runtime.agents import AgentRegistry
from dialer.runtime.bootstrap import SqlRecord, plan_of
from dialer.runtime.engine import Engine
from dialer.service.accounts import Accounts
from dialer.service.desk import Desk
from dialer.service.outbox import OutboxRelay
from dialer.store.db import Database
from dialer.store.repositories import Role
from tests.runtime.fakes import FakeGate, FakePbx, FixedPacer

T0 = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
PASSWORD = "a long password"


@dataclass
class Stack:
    db: Database
    engine: Engine
    pbx: FakePbx
    gate: FakeGate
    agents: AgentRegistry
    desk: Desk
    accounts: Accounts
    relay: OutboxRelay
    app: FastAPI
    campaign_id: int
    client: httpx.AsyncClient

    async def token(self, user: str) -> dict[str, str]:
        reply = await self.client.post("/api/login", json={"user": user, "password": PASSWORD})
        assert reply.status_code == 200, reply.text
        return {"Authorization": f"Bearer {reply.json()['token']}"}


async def build_stack(db: Database) -> AsyncIterator[Stack]:
    record = await db.campaigns.create(
        "spring", CampaignSettings(dial_string="PJSIP/{digits}@trunk", caller_id="+33100000000"), now=T0
    )
    record = await db.campaigns.set_status(record.id, CampaignStatus.RUNNING, now=T0)
    agents = AgentRegistry(clock=time.time)
    pbx, gate = FakePbx(), FakeGate()
    engine = Engine(pbx, SqlRecord(db, "node-1", agents), gate, agents, tick_s=0.05)
    engine.add_campaign(plan_of(record), FixedPacer(lines=1))  # type: ignore[arg-type]
    relay = OutboxRelay(db, gate)
    desk = Desk(db, engine, agents, relay=relay, clock=time.time)
    accounts = Accounts(db, hasher=FAST)
    for user, role in (
        ("agent1", Role.AGENT),
        ("agent2", Role.AGENT),
        ("sup", Role.SUPERVISOR),
        ("root", Role.ADMIN),
    ):
        await accounts.add_user(user, user.capitalize(), role, PASSWORD, actor="test")
    app = create_app(desk, accounts)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://dialer") as client:
        yield Stack(db, engine, pbx, gate, agents, desk, accounts, relay, app, record.id, client)


@pytest.fixture
async def stack(db: Database) -> AsyncIterator[Stack]:
    async for s in build_stack(db):
        yield s
