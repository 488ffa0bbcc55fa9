"""Several PBXs on one node: each ``[pbx.*]`` table is a member with its own trunk limits.

The engine talks to one ``Pbx``; the pool is that ``Pbx`` for a node with
several.  A campaign names a PBX (``pbx = "paris-1"``), a group (``pbx =
"paris"``: every member whose table says ``group = "paris"``) or ``default``
(the first table).  Each member's trunk limits, lines open at once
(``max_lines``) and new calls per second (``max_calls_per_second``), are
shared by every campaign that uses it: ``lines_for`` tells the engine how many
lines a campaign may open now, and ``originate`` places the call on the
member of its campaign with the most free lines.

A member whose link is down holds only its own campaigns (``lines_for`` gives
them nothing); the others go on dialing.  When it comes back, its adapter
checks the calls it had in flight against the PBX's live channels; the pool
then closes as ``lost`` any of them the adapter did not account for, so every
attempt still gets exactly one outcome.

Every other action (hang up, connect to an agent, play a message) goes to the
member that placed the call.  An agent's phone is called by the PBX of the
agent's campaigns: agents and their customers must be on the same PBX.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from prometheus_client import Histogram

from telephony.base import (
    Q850,
    AnswerRouter,
    CallEvent,
    Failed,
    HungUp,
    OriginateRequest,
    Outcome,
    Pbx,
    PbxError,
    PbxUnavailable,
)

if TYPE_CHECKING:
    from dialer.runtime.engine import Engine
    from dialer.runtime.ports import CampaignPlan
    from dialer.settings import PbxSettings

log = logging.getLogger(__name__)

DEFAULT_PBX = "default"
# A PBX's reply to an originate, the round trip a trunk limit cannot hide.
ROUNDTRIP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
LINK_CHECK_S = 0.5
# After a member's link returns its adapter reconciles first; the pool looks after this long.
RECONCILE_AFTER_S = 2.0


class _SoundCheck(Protocol):
    async def has_sound(self, name: str) -> bool | None: ...


@dataclass
class Member:
    """One PBX of the pool with its trunk limits and the calls it carries."""

    name: str  # the [pbx.<name>] table's
    pbx: Pbx
    max_lines: int
    calls_per_second: float
    groups: tuple[str, ...] = ()
    attempts: set[str] = field(default_factory=set)
    tokens: float = 0.0
    refilled_at: float = 0.0
    was_up: bool = True

    @property
    def lines_in_use(self) -> int:
        return len(self.attempts)

    @property
    def burst(self) -> float:
        return max(1.0, self.calls_per_second)

    def refill(self, now: float) -> None:
        self.tokens = min(self.burst, self.tokens + (now - self.refilled_at) * self.calls_per_second)
        self.refilled_at = now

    def free(self, now: float) -> int:
        """Calls this member may start now: free lines, within its calls-per-second budget."""
        if not self.pbx.connected:
            return 0
        self.refill(now)
        return max(0, min(self.max_lines - self.lines_in_use, int(self.tokens)))


class _Sounds:
    """Whether every PBX of a set has a sound: False when one lacks it, None when one cannot tell."""

    def __init__(self, members: Sequence[Member]) -> None:
        self.members = members

    async def has_sound(self, name: str) -> bool | None:
        answers: list[bool | None] = []
        for member in self.members:
            check: _SoundCheck | None = member.pbx if hasattr(member.pbx, "has_sound") else None  # type: ignore[assignment]
            answers.append(await check.has_sound(name) if check is not None else None)
        if False in answers:
            return False
        return None if None in answers else True


class PbxPool:
    """A ``Pbx`` over several; see the module's docstring."""

    name = "pool"

    def __init__(self, members: Sequence[Member], *, clock: Callable[[], float] = time.monotonic) -> None:
        if not members:
            raise ValueError("a PBX pool needs at least one PBX")
        self.members = list(members)
        # A node with one PBX names it as before (messages at start); several answer as a pool.
        self.name = self.members[0].name if len(self.members) == 1 else "pool"
        self._clock = clock
        now = clock()
        for member in self.members:
            member.tokens, member.refilled_at = member.burst, now
        self._by_attempt: dict[str, Member] = {}
        self._queue: asyncio.Queue[CallEvent] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._engine: Engine | None = None
        self._agent_campaigns: dict[str, list[str]] = {}  # told by the desk before a phone is called
        self.roundtrip = Histogram(
            "dialer_pbx_roundtrip_seconds",
            "Seconds from sending an originate to the PBX's reply, per PBX",
            labelnames=["pbx"],
            buckets=ROUNDTRIP_BUCKETS,
            registry=None,  # served by the ops collector
        )

    # -- wiring --------------------------------------------------------------------------------

    def attach(self, engine: Engine) -> None:
        """Give the engine the pool's trunk limits and let the pool see the campaigns' PBXs."""
        self._engine = engine
        engine.line_limit = self.lines_for

    def members_for(self, pbx_name: str) -> list[Member]:
        """The members a campaign naming ``pbx_name`` may use: a PBX, a group, or the default."""
        if pbx_name in ("", DEFAULT_PBX):
            return self.members[:1]
        exact = [m for m in self.members if m.name == pbx_name]
        return exact or [m for m in self.members if pbx_name in m.groups]

    def _members_of_campaign(self, campaign_id: str) -> list[Member]:
        run = self._engine.campaigns.get(campaign_id) if self._engine is not None else None
        return self.members_for(run.plan.pbx_name) if run is not None else self.members[:1]

    # -- trunk limits --------------------------------------------------------------------------

    def lines_for(self, plan: CampaignPlan) -> int:
        """Lines the campaign may open now on its PBXs (0 while they are all down)."""
        self._prune()
        now = self._clock()
        return sum(m.free(now) for m in self.members_for(plan.pbx_name))

    def campaign_can_dial(self, plan: CampaignPlan) -> bool:
        return any(m.pbx.connected for m in self.members_for(plan.pbx_name))

    def pbx_of_attempt(self, attempt_id: str) -> str:
        member = self._by_attempt.get(attempt_id)
        return member.name if member is not None else self.members[0].name

    # -- the Pbx interface ---------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return any(m.pbx.connected for m in self.members)

    async def start(self) -> None:
        """Start every PBX.  One that does not answer holds its campaigns and is tried again in the
        background; only when none answers does the start fail (there is nothing to dial on)."""
        failed: list[tuple[Member, PbxError]] = []
        for member in self.members:
            try:
                await member.pbx.start()
            except PbxError as refused:
                failed.append((member, refused))
            member.was_up = member.pbx.connected
        if len(failed) == 1 == len(self.members):
            raise failed[0][1]
        if len(failed) == len(self.members):
            first, error = failed[0]
            raise PbxError(f"no PBX answers (PBX {first.name!r}: {error})") from error
        loop = asyncio.get_running_loop()
        for member in self.members:
            self._tasks.append(loop.create_task(self._pump(member), name=f"pbx-pool-{member.name}"))
        for member, error in failed:
            log.error(
                "PBX %s does not answer at start (%s): its campaigns hold their dialing until it does; "
                "trying again in the background",
                member.name,
                error,
                extra={"pbx": member.name},
            )
            self._tasks.append(loop.create_task(self._start_later(member), name=f"pbx-start-{member.name}"))
        self._tasks.append(loop.create_task(self._watch_links(), name="pbx-pool-links"))

    async def _start_later(self, member: Member, first_s: float = 1.0, most_s: float = 30.0) -> None:
        delay = first_s
        while True:
            await asyncio.sleep(delay)
            try:
                await member.pbx.start()
            except PbxError as exc:
                log.warning("PBX %s still does not answer: %s; next try in %.0f s", member.name, exc, delay)
                delay = min(most_s, delay * 2)
                continue
            log.info("PBX %s answers: started", member.name, extra={"pbx": member.name})
            return

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        for member in self.members:
            await member.pbx.stop()

    async def events(self) -> AsyncIterator[CallEvent]:
        while True:
            yield await self._queue.get()

    async def originate(self, request: OriginateRequest) -> None:
        now = self._clock()
        candidates = [m for m in self._members_of_campaign(request.campaign_id) if m.free(now) > 0]
        if not candidates:
            raise PbxUnavailable("no free line on the campaign's PBXs (trunk limit reached or link down)")
        member = max(candidates, key=lambda m: m.max_lines - m.lines_in_use)
        member.tokens -= 1.0
        member.attempts.add(request.attempt_id)
        self._by_attempt[request.attempt_id] = member
        started = time.monotonic()
        try:
            await member.pbx.originate(request)
        except BaseException:
            self._release(request.attempt_id)
            raise
        self.roundtrip.labels(member.name).observe(time.monotonic() - started)

    def _member(self, attempt_id: str) -> Member:
        return self._by_attempt.get(attempt_id) or self.members[0]

    async def hangup(self, attempt_id: str, cause: int = Q850.NORMAL_CLEARING) -> None:
        await self._member(attempt_id).pbx.hangup(attempt_id, cause)

    async def connect_to_agent(self, attempt_id: str, agent_id: str) -> None:
        await self._member(attempt_id).pbx.connect_to_agent(attempt_id, agent_id)

    async def play_then_hangup(self, attempt_id: str, message: str) -> None:
        await self._member(attempt_id).pbx.play_then_hangup(attempt_id, message)

    async def login_agent(self, agent_id: str, endpoint: str) -> str:
        return await self._agent_member(agent_id).pbx.login_agent(agent_id, endpoint)

    def expect_agent(self, agent_id: str, campaigns: Sequence[str]) -> None:
        """The campaigns an agent signs in for, before their phone is called (``login_agent``)."""
        self._agent_campaigns[agent_id] = list(campaigns)

    def _agent_member(self, agent_id: str) -> Member:
        """The PBX of the agent's first campaign (its first connected PBX for a group); else the default."""
        campaigns = list(self._agent_campaigns.pop(agent_id, []))
        if self._engine is not None:
            campaigns += sorted(self._engine.agents.campaigns_of(agent_id))
        for campaign_id in campaigns:
            found = self._members_of_campaign(campaign_id)
            if found:
                return next((m for m in found if m.pbx.connected), found[0])
        return self.members[0]

    async def live_attempts(self) -> set[str]:
        """The calls every PBX has; a PBX that is down cannot say (its calls count as gone)."""
        live: set[str] = set()
        for member in self.members:
            if not member.pbx.connected:
                log.warning("PBX %s is down: the calls it may still carry cannot be listed", member.name)
                continue
            live |= await member.pbx.live_attempts()
        return live

    def set_answer_router(self, router: AnswerRouter) -> None:
        for member in self.members:
            member.pbx.set_answer_router(router)

    def set_phone_login(self, login: object) -> None:
        for member in self.members:
            setter = getattr(member.pbx, "set_phone_login", None)
            if callable(setter):
                setter(login)

    def sounds_of(self, pbx_name: str) -> _Sounds:
        """The sound check of the PBXs a campaign naming ``pbx_name`` dials on."""
        return _Sounds(self.members_for(pbx_name))

    async def has_sound(self, name: str) -> bool | None:
        """False when any PBX lacks the sound, None when one cannot tell, True when all have it."""
        return await _Sounds(self.members).has_sound(name)

    # -- events and links ----------------------------------------------------------------------

    def _prune(self) -> None:
        """Free the lines of calls the engine has closed whatever way they ended (its table is the
        record of what is up): a call whose last event never came cannot hold a line for ever."""
        if self._engine is None:
            return
        live = self._engine.calls
        for attempt_id in [a for a in self._by_attempt if a not in live]:
            self._release(attempt_id)

    def _release(self, attempt_id: str) -> None:
        member = self._by_attempt.pop(attempt_id, None)
        if member is not None:
            member.attempts.discard(attempt_id)

    async def _pump(self, member: Member) -> None:
        async for event in member.pbx.events():
            if isinstance(event, Failed | HungUp):
                self._release(event.attempt_id)
            self._queue.put_nowait(event)

    async def _watch_links(self) -> None:
        while True:
            await asyncio.sleep(LINK_CHECK_S)
            await self.check_links()

    async def check_links(self, reconcile_after_s: float = RECONCILE_AFTER_S) -> None:
        """Log each member going down or coming back; reconcile a returning member's calls."""
        for member in self.members:
            up = member.pbx.connected
            if up == member.was_up:
                continue
            member.was_up = up
            held = self._campaign_names(member)
            if not up:
                log.error(
                    "PBX %s is down: %d call(s) in flight on it; its campaigns hold their dialing (%s), "
                    "the others go on",
                    member.name,
                    member.lines_in_use,
                    ", ".join(held) or "none",
                )
                continue
            log.info("PBX %s is back: its campaigns dial again (%s)", member.name, ", ".join(held) or "none")
            await asyncio.sleep(reconcile_after_s)
            await self.reconcile(member)

    async def reconcile(self, member: Member) -> int:
        """Close as lost each call the member carried that it no longer has."""
        if not member.attempts:
            return 0
        try:
            live = await member.pbx.live_attempts()
        except PbxError as exc:
            log.warning("PBX %s: cannot list its live calls after the reconnect: %s", member.name, exc)
            return 0
        gone = sorted(member.attempts - live)
        for attempt_id in gone:
            self._release(attempt_id)
            self._queue.put_nowait(
                Failed(
                    attempt_id,
                    time.time(),
                    outcome=Outcome.LOST,
                    detail=f"not on PBX {member.name} when its link came back",
                )
            )
        if gone:
            log.warning(
                "PBX %s: %d call(s) gone while its link was down, recorded lost", member.name, len(gone)
            )
        return len(gone)

    def _campaign_names(self, member: Member) -> list[str]:
        if self._engine is None:
            return []
        return sorted(
            run.plan.name
            for run in self._engine.campaigns.values()
            if member in self.members_for(run.plan.pbx_name)
        )


def pool_of(tables: Sequence[PbxSettings], make: Callable[[PbxSettings], Pbx]) -> PbxPool:
    """The node's PBXs, one member per ``[pbx.*]`` table, each adapter built by ``make``."""
    return PbxPool([Member(t.name, make(t), t.max_lines, t.max_calls_per_second, t.groups) for t in tables])
