"""Fakes of the engine's ports: a scripted PBX, an in-memory record, a gate, a pacer."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime

from dialer.pacing.pacers import AgentActivity, PacingSnapshot, RingOutcome
from dialer.pacing.tracker import AbandonmentTracker
from dialer.runtime.ports import (
    AttemptResult,
    CampaignPlan,
    GateVerdict,
    Lead,
    OpenAttempt,
)
from telephony.base import (
    Q850,
    AnswerRouter,
    CallEvent,
    OriginateRequest,
    PbxError,
)


class FakePbx:
    name = "fake"

    def __init__(self) -> None:
        self.queue: asyncio.Queue[CallEvent] = asyncio.Queue()
        self.originates: list[OriginateRequest] = []
        self.router: AnswerRouter | None = None
        self.refuse_next: str | None = None
        self.live: set[str] = set()
        self.on_originate: list = []
        self.hangups: list[str] = []
        self.messages: list[tuple[str, str]] = []
        self.connects: list[tuple[str, str]] = []

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    @property
    def connected(self) -> bool:
        return True

    async def events(self) -> AsyncIterator[CallEvent]:
        while True:
            yield await self.queue.get()

    async def originate(self, request: OriginateRequest) -> None:
        for hook in self.on_originate:
            hook(request)
        if self.refuse_next:
            reason, self.refuse_next = self.refuse_next, None
            raise PbxError(reason)
        self.originates.append(request)

    async def hangup(self, attempt_id: str, cause: int = Q850.NORMAL_CLEARING) -> None:
        self.hangups.append(attempt_id)

    async def connect_to_agent(self, attempt_id: str, agent_id: str) -> None:
        self.connects.append((attempt_id, agent_id))

    async def play_then_hangup(self, attempt_id: str, message: str) -> None:
        self.messages.append((attempt_id, message))

    async def login_agent(self, agent_id: str, endpoint: str) -> str:
        return f"agent-{agent_id}"

    async def live_attempts(self) -> set[str]:
        return set(self.live)

    def set_answer_router(self, router: AnswerRouter) -> None:
        self.router = router


@dataclass
class MemoryRecord:
    leads: list[Lead] = field(default_factory=list)
    attempts: dict[str, dict] = field(default_factory=dict)
    released: list[tuple[Lead, GateVerdict]] = field(default_factory=list)
    dispositions: list[tuple[str, str, str]] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    _n: int = 0
    outbox: list[tuple[str, str]] = field(default_factory=list)  # gate messages written with dispositions

    async def claim_leads(self, campaign_id: str, limit: int, now: datetime) -> list[Lead]:
        taken, self.leads = self.leads[:limit], self.leads[limit:]
        return taken

    async def release_lead(self, lead: Lead, verdict: GateVerdict, now: datetime) -> None:
        self.released.append((lead, verdict))

    async def open_attempt(self, lead: Lead, now: datetime) -> str:
        self._n += 1
        attempt_id = f"att-{self._n}"
        self.attempts[attempt_id] = {"lead": lead, "result": None, "events": []}
        self.log.append(f"open {attempt_id}")
        return attempt_id

    async def attempt_event(self, attempt_id: str, kind: str, at: datetime) -> None:
        self.attempts[attempt_id]["events"].append(kind)

    async def close_attempt(self, attempt_id: str, result: AttemptResult) -> bool:
        row = self.attempts[attempt_id]
        if row["result"] is not None:
            return False
        row["result"] = result
        self.log.append(f"close {attempt_id} {result.outcome}")
        return True

    async def dispose(self, attempt_id: str, agent_id: str, code: str, now: datetime, details) -> Lead:
        self.dispositions.append((attempt_id, agent_id, code))
        lead: Lead = self.attempts[attempt_id]["lead"]
        kind = {"not_interested": "refusal", "do_not_call": "do_not_call"}.get(code)
        if kind is not None:  # written with the disposition, as SqlRecord's unit of work does
            self.outbox.append((lead.number, kind))
        return lead

    async def open_attempts(self) -> list[OpenAttempt]:
        return [
            OpenAttempt(a, row["lead"].lead_id, row["lead"].campaign_id, row["lead"].number, datetime.now())
            for a, row in self.attempts.items()
            if row["result"] is None
        ]


@dataclass
class FakeGate:
    block: dict[str, str] = field(default_factory=dict)  # number -> rule
    explode: bool = False
    outcomes: list[tuple[str, str]] = field(default_factory=list)
    attempts: list[str] = field(default_factory=list)

    async def check(self, lead: Lead, plan: CampaignPlan, now: datetime) -> GateVerdict:
        if self.explode:
            raise ConnectionError("store unreachable")
        rule = self.block.get(lead.number)
        if rule:
            return GateVerdict(False, rule, f"blocked by {rule}")
        return GateVerdict(True, "allowed", "")

    async def record_attempt(self, lead: Lead, at: datetime) -> None:
        self.attempts.append(lead.number)

    async def record_outcome(self, lead: Lead, kind: str, at: datetime) -> None:
        self.outcomes.append((lead.number, kind))


@dataclass
class FixedPacer:
    """Keeps ``lines`` dialing (progressive-like for tests) and records what it observed."""

    lines: int = 1
    seen: list[tuple] = field(default_factory=list)
    tracker: AbandonmentTracker = field(default_factory=lambda: AbandonmentTracker("c1", 0.03, 86400))

    def lines_to_open(self, snapshot: PacingSnapshot, now: float) -> int:
        return self.lines - len(snapshot.calls_in_flight)

    def observe_dial_launched(self, call_id: object, at: float) -> None:
        self.seen.append(("launched",))

    def observe_ring_outcome(self, call_id: object, at: float, outcome: RingOutcome) -> None:
        self.seen.append(("ring", outcome.value))

    def observe_person_handled(self, call_id: object, at: float, abandoned: bool) -> None:
        self.seen.append(("person", abandoned))

    def observe_agent_state(self, agent_id: object, at: float, activity: AgentActivity) -> None:
        self.seen.append(("agent", activity.value))


def now_ts() -> float:
    return time.time()
