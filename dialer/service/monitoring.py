"""Live monitoring (listen, whisper, barge) and recordings on demand: the supervisor's and agent's asks.

The PBX does the work (``telephony.supervision``); this module checks who may
ask, turns a PBX refusal into a ``Refused`` whose message says why, and keeps
the supervisors' legs so the agent screen can say that someone listens (only
when the agent's campaign says ``monitoring_visible``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select

from dialer.domain.campaign import CampaignSettings, RecordingPolicy
from dialer.service import Invalid, NotFound, Refused
from dialer.service.accounts import Principal
from dialer.service.visibility import can_see
from dialer.store.db import Database
from dialer.store.models import Attempt, Campaign
from dialer.store.repositories import Role
from telephony.base import PbxError
from telephony.supervision import MonitorMode, MonitorRefused, Supervision

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Monitor:
    leg_id: str
    agent_id: str
    mode: MonitorMode
    supervisor_id: str
    visible: bool  # the agent's campaign lets the agent see it
    started_at: float


class Monitoring:
    def __init__(
        self, db: Database, pbx: Callable[[], object | None], clock: Callable[[], float] = time.time
    ) -> None:
        self.db = db
        self._pbx = pbx
        self._clock = clock
        self.active: dict[str, Monitor] = {}

    def _supervision(self) -> Supervision:
        pbx = self._pbx()
        if pbx is None:
            raise Refused("no PBX is connected to this node: monitoring and recordings on demand need one")
        if not isinstance(pbx, Supervision):
            name = getattr(pbx, "name", type(pbx).__name__)
            raise Refused(f"the PBX {name} cannot monitor calls or record on demand")
        return pbx

    async def _settings_of_agent(self, agent_id: str) -> CampaignSettings | None:
        """The settings of the campaign of the agent's latest call."""
        async with self.db.session() as s:
            query = (
                select(Campaign.settings)
                .join(Attempt, Attempt.campaign_id == Campaign.id)
                .where(Attempt.agent_id == agent_id)
                .order_by(Attempt.created_at.desc())
                .limit(1)
            )
            raw = (await s.execute(query)).scalar_one_or_none()
        return None if raw is None else CampaignSettings.from_dict(raw)

    async def start(self, who: Principal, agent_id: str, mode: str, phone: str) -> Monitor:
        """Call the supervisor's ``phone`` into agent ``agent_id``'s call in ``mode``."""
        try:
            how = MonitorMode(mode)
        except ValueError:
            raise Invalid(f"mode {mode!r} is not one of listen, whisper, barge") from None
        if not phone:
            raise Invalid("phone is empty: give your own phone (e.g. PJSIP/2001) for the PBX to call")
        if not await can_see(self.db, who, agent_id):
            raise NotFound(f"no agent {agent_id} that you supervise")
        pbx = self._supervision()
        try:
            leg = await pbx.monitor(agent_id, how, phone)
        except MonitorRefused as exc:
            raise Refused(f"the PBX refused to {how.value} agent {agent_id}: {exc}") from None
        except PbxError as exc:
            raise Refused(f"the PBX could not {how.value} agent {agent_id}: {exc}") from None
        settings = await self._settings_of_agent(agent_id)
        visible = settings is not None and settings.monitoring_visible
        monitor = Monitor(leg, agent_id, how, who.user_id, visible, self._clock())
        self.active[leg] = monitor
        log.info("supervisor %s: %s on agent %s (leg %s)", who.user_id, how.value, agent_id, leg)
        return monitor

    async def stop(self, who: Principal, leg_id: str) -> None:
        monitor = self.active.get(leg_id)
        if monitor is None or (monitor.supervisor_id != who.user_id and who.role is not Role.ADMIN):
            raise NotFound(f"no monitoring {leg_id} of yours")
        try:
            await self._supervision().end_monitor(leg_id)
        except PbxError as exc:
            raise Refused(f"the PBX did not hang up your phone: {exc}") from None
        self.active.pop(leg_id, None)

    async def prune(self) -> None:
        """Forget the legs the PBX no longer has (the supervisor hung up)."""
        pbx = self._pbx()
        live_attempts = getattr(pbx, "live_attempts", None)
        if not self.active or live_attempts is None:
            return
        try:
            live = await live_attempts()
        except PbxError:
            return
        for leg in [leg for leg in self.active if leg not in live]:
            self.active.pop(leg, None)

    async def listed(self, who: Principal) -> list[Monitor]:
        await self.prune()
        return [m for m in self.active.values() if await can_see(self.db, who, m.agent_id)]

    async def watched(self, agent_id: str) -> bool:
        """Whether the agent is to be told that a supervisor listens (their campaign says so)."""
        await self.prune()
        return any(m.agent_id == agent_id and m.visible for m in self.active.values())

    async def call_on_demand(self, agent_id: str) -> str | None:
        """The agent's call in progress when its campaign records on demand, else None."""
        async with self.db.session() as s:
            query = (
                select(Attempt.id, Campaign.settings)
                .join(Campaign, Campaign.id == Attempt.campaign_id)
                .where(Attempt.agent_id == agent_id, Attempt.status == "open")
                .order_by(Attempt.created_at.desc())
                .limit(1)
            )
            found = (await s.execute(query)).first()
        if found is None or CampaignSettings.from_dict(found[1]).recording is not RecordingPolicy.ON_DEMAND:
            return None
        return str(found[0])

    async def record_on_demand(self, who: Principal, attempt_id: str, on: bool) -> None:
        """Resume (``on``) or silence the recording of a call in progress (campaigns recording on demand)."""
        async with self.db.session() as s:
            row = await s.get(Attempt, attempt_id)
            raw = (
                None
                if row is None
                else await s.scalar(select(Campaign.settings).where(Campaign.id == row.campaign_id))
            )
        if row is None or raw is None or not await can_see(self.db, who, row.agent_id):
            raise NotFound(f"no call {attempt_id} of yours")
        if who.role is Role.AGENT and row.agent_id != who.user_id:
            raise NotFound(f"no call {attempt_id} of yours")
        if row.status != "open":
            raise Refused(f"call {attempt_id} is over: there is nothing to record")
        if CampaignSettings.from_dict(raw).recording is not RecordingPolicy.ON_DEMAND:
            raise Refused(f"call {attempt_id}: its campaign does not record on demand")
        try:
            await self._supervision().set_recording_muted(attempt_id, not on)
        except PbxError as exc:
            raise Refused(f"the PBX did not {'start' if on else 'pause'} the recording: {exc}") from None
        log.info("call %s: recording %s by %s", attempt_id, "on" if on else "paused", who.user_id)
