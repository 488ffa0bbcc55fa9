"""The demo's simulated agents: API clients, as a person at the agent screen is.

Each one is a user in the demo's database; it signs in over HTTP
(``POST /api/login``), asks the PBX to call its simulated softphone
(``POST /api/me/login`` with the endpoint), goes ready, watches its desk
(``GET /api/me``) and qualifies each call 1 to 4 seconds into the wrap-up
(``POST /api/calls/{id}/disposition``).  So the demo drives the same use
cases, the same API and the same PBX login as real agents do.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from dialer.service.accounts import Accounts
from dialer.store.repositories import Role

log = logging.getLogger(__name__)

DISPOSITIONS = [
    ("sale", 20),  # a short demo still shows sales, their confirmations and their withdrawal periods
    ("not_interested", 25),
    ("callback_requested", 15),
    ("appointment_set", 15),
    ("not_qualified", 15),
    ("wrong_number", 5),
    ("do_not_call", 5),
]
POLL_S = 0.25
DEMO_PRODUCTS = [
    ("Heat pump HP-12", "8999.00"),
    ("Solar panels, 6 kWc", "12490.00"),
    ("Smart thermostat", "249.90"),
]


class ApiAgent:
    """One simulated agent at its screen."""

    def __init__(self, client: httpx.AsyncClient, agent_id: str, password: str, rng: random.Random) -> None:
        self.client = client
        self.agent_id = agent_id
        self.password = password
        self.rng = rng
        self.headers: dict[str, str] = {}
        self.qualified = 0
        self.failures = 0
        self.visits = 0  # field visits booked in the salespeople's calendar

    async def _post(self, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        reply = await self.client.post(path, json=body, headers=self.headers)
        if reply.status_code >= 400:
            self.failures += 1
            log.warning(
                "agent %s: %s answered %d: %s", self.agent_id, path, reply.status_code, reply.text[:200]
            )
        return reply

    async def sign_in(self, endpoint: str, campaign_id: str) -> None:
        reply = await self.client.post("/api/login", json={"user": self.agent_id, "password": self.password})
        reply.raise_for_status()
        self.headers = {"Authorization": f"Bearer {reply.json()['token']}"}
        (
            await self._post("/api/me/login", {"campaigns": [campaign_id], "endpoint": endpoint})
        ).raise_for_status()
        (await self._post("/api/me/ready")).raise_for_status()

    async def work(self, stop: asyncio.Event) -> None:
        """Qualify every call that reaches wrap-up, until ``stop``."""
        done: set[str] = set()
        while not stop.is_set():
            try:
                reply = await self.client.get("/api/me", headers=self.headers)
            except httpx.HTTPError as exc:
                log.warning("agent %s: the API did not answer: %s", self.agent_id, exc)
                await asyncio.sleep(1.0)
                continue
            desk = reply.json().get("desk", {}) if reply.status_code == 200 else {}
            attempt = desk.get("attempt_id")
            if desk.get("state") == "wrap_up" and attempt and attempt not in done:
                done.add(attempt)
                await asyncio.sleep(self.rng.uniform(1.0, 4.0))
                await self.qualify(attempt)
            await asyncio.sleep(POLL_S)

    async def qualify(self, attempt_id: str) -> None:
        codes, weights = zip(*DISPOSITIONS, strict=True)
        code = self.rng.choices(codes, weights)[0]
        now = datetime.now(UTC)
        body: dict[str, Any] = {"code": code}
        if code == "callback_requested" and attempt_id[-1] in "02468ace":  # else: within the default delay
            body["callback_at"] = (now + timedelta(days=1)).isoformat()
        elif code == "not_qualified":  # wants to read about it first: the brochure by email
            body["identity"] = {"email": f"customer-{attempt_id[:8]}@example.com"}
            body["information_template"] = "brochure"
        elif code == "appointment_set":
            visit = await self.book_visit(attempt_id)
            body["appointment_at"] = visit or (now + timedelta(days=2)).isoformat()
        elif code == "sale":
            body["comments"] = "asked for the written offer"
            body["sale"] = self._sale(now)
            body["follow_up"] = True
        reply = await self._post(f"/api/calls/{attempt_id}/disposition", body)
        if reply.status_code == 200:
            self.qualified += 1

    async def book_visit(self, attempt_id: str) -> str | None:
        """Book one of the next free field visits for the customer (as on the screen); its start, or None.

        None when there is no field calendar (no salesperson covers the customer) or no slot is left.
        """
        for _ in range(2):  # another agent may take the slot first: ask again once
            reply = await self.client.get(
                "/api/calendar/slots", params={"attempt_id": attempt_id, "count": 3}, headers=self.headers
            )
            slots = reply.json().get("slots", []) if reply.status_code == 200 else []
            if not slots:
                return None
            slot = self.rng.choice(slots)
            body = {"attempt_id": attempt_id, "salesperson_id": slot["salesperson_id"]}
            body["starts_at"] = slot["starts_at"]
            booked = await self.client.post("/api/calendar/appointments", json=body, headers=self.headers)
            if booked.status_code == 201:
                self.visits += 1
                return str(booked.json()["starts_at"])
        return None

    def _sale(self, now: datetime) -> dict[str, Any]:
        """The terms of a demo sale; most customers give an email, the others a postal address."""
        product, price = self.rng.choice(DEMO_PRODUCTS)
        sale: dict[str, Any] = {
            "product": product,
            "price": price,
            "delivery_terms": "Delivered to your door, free of charge",
            "installation_terms": "Installed by our technician on the delivery day",
            "delivery_date": (now + timedelta(days=self.rng.randint(3, 20))).date().isoformat(),
        }
        if self.rng.random() < 0.75:
            sale["email"] = f"customer{self.rng.randint(1000, 9999)}@example.org"
        else:
            sale["address"] = f"{self.rng.randint(1, 99)} rue des Lilas, 69001 Lyon"
        return sale


class ApiAgents:
    """The demo's team: created as users, signed in over the API, working until stopped."""

    def __init__(self, agents: list[ApiAgent]) -> None:
        self.agents = agents
        self.tasks: list[asyncio.Task[None]] = []

    @property
    def failures(self) -> int:
        return sum(a.failures for a in self.agents)

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def sign_in_simulated_agents(
    accounts: Accounts,
    client: httpx.AsyncClient,
    pbx_kind: str,
    count: int,
    campaign_id: str,
    rng: random.Random,
    stop: asyncio.Event,
) -> ApiAgents:
    """Create ``count`` agent users and sign each in over the API with its simulated softphone."""
    team: list[ApiAgent] = []
    for i in range(count):
        agent_id = f"{1001 + i}"
        password = secrets.token_urlsafe(12)
        await accounts.add_user(agent_id, f"Demo agent {agent_id}", Role.AGENT, password, actor="demo")
        endpoint = f"PJSIP/{agent_id}@agents" if pbx_kind == "asterisk" else f"sofia/dialer/{agent_id}@agents"
        agent = ApiAgent(client, agent_id, password, rng)
        await agent.sign_in(endpoint, campaign_id)
        team.append(agent)
    agents = ApiAgents(team)
    loop = asyncio.get_running_loop()
    agents.tasks = [loop.create_task(a.work(stop), name=f"demo-agent-{a.agent_id}") for a in team]
    return agents
