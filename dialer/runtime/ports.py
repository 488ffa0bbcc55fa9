"""What the runtime needs from the record, the compliance gate and the pacer.

The campaign engine depends only on these protocols; the bootstrap plugs the
SQL store, the compliance gate and the pacer in, and tests plug fakes in.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from dialer.domain.campaign import render_dial_string
from telephony.base import AmdResult


class AmdPolicy(enum.StrEnum):
    OFF = "off"  # no detection: every answer goes to an agent
    HANGUP = "hangup"  # detection on; machines are hung up
    LEAVE_MESSAGE = "leave_message"  # detection on; machines get the campaign's message


@dataclass(frozen=True)
class CampaignPlan:
    """What the engine needs of a running campaign, read from its settings."""

    campaign_id: str
    name: str
    dial_string_template: str  # e.g. "PJSIP/{digits}@trunk" (see dialer.domain.campaign)
    caller_id_number: str
    caller_id_name: str = ""
    ring_timeout_s: float = 25.0
    amd_policy: AmdPolicy = AmdPolicy.OFF
    machine_message: str = ""
    identification_message: str = "dialer-identification"
    answer_to_agent_limit_s: float = 2.0
    wrap_up_limit_s: float = 60.0
    default_disposition: str = "not_qualified"
    max_lines: int = 50
    pbx_name: str = ""
    recording: str = "none"  # dialer.domain.campaign.RecordingPolicy: none / all / on_demand
    recording_announcement: str = ""  # played to the customer before the agent, when recording

    def dial_string(self, number_e164: str, attempt_id: str = "") -> str:
        return render_dial_string(
            self.dial_string_template, number=number_e164, campaign=self.campaign_id, attempt=attempt_id
        )


@dataclass(frozen=True)
class Lead:
    """A lead claimed for dialing (it stays claimed until its attempt closes or it is released)."""

    lead_id: str
    campaign_id: str
    number: str  # E.164
    timezones: tuple[str, ...] = ()
    attempts: int = 0
    consent: bool | None = None
    consent_given_at: datetime | None = None  # when the person agreed, if the list said
    consent_source: str | None = None  # how the person agreed, if the list said
    last_outcome: str | None = None
    last_attempt_at: datetime | None = None
    callback_agent_id: str | None = None


@dataclass(frozen=True)
class GateVerdict:
    allowed: bool
    rule: str
    reason: str
    retry_after: datetime | None = None


@dataclass(frozen=True)
class AttemptResult:
    """How an attempt ended, written in one transaction with the lead's next state."""

    outcome: str  # the call's one result (CallResult): connected, abandoned, machine, dropped, busy, ... lost
    ended_at: datetime
    cause: int | None = None
    amd: AmdResult | None = None
    amd_detail: str = ""  # the detector's own words: LONGGREETING-1500-1500, beep 1000 Hz
    abandoned: bool = False  # outcome == "abandoned": for readers that want a flag
    person_answered: bool = False
    answered: bool = False  # the PBX answered (a lost call may have been)
    agent_id: str | None = None
    detail: str = ""
    originated_at: datetime | None = None  # when the PBX accepted the originate


@dataclass(frozen=True)
class DispositionDetails:
    """What an agent may add to the one-click qualification."""

    callback_at: datetime | None = None
    callback_agent_only: bool = False
    appointment_at: datetime | None = None
    comments: str | None = None


@dataclass(frozen=True)
class OpenAttempt:
    attempt_id: str
    lead_id: str
    campaign_id: str
    number: str
    opened_at: datetime


class Record(Protocol):
    """The database side: leads, attempts, dispositions."""

    async def claim_leads(self, campaign_id: str, limit: int, now: datetime) -> list[Lead]: ...

    async def release_lead(self, lead: Lead, verdict: GateVerdict, now: datetime) -> None:
        """Give back a claimed lead the gate blocked, due again at ``verdict.retry_after``."""

    async def open_attempt(self, lead: Lead, now: datetime) -> str:
        """Write the attempt row (committed) and return its id, before the originate is sent."""

    async def attempt_event(self, attempt_id: str, kind: str, at: datetime) -> None:
        """Stamp ringing / answered / connected times."""

    async def close_attempt(self, attempt_id: str, result: AttemptResult) -> bool:
        """Write the outcome with the lead's next state; False when it was already closed."""

    async def dispose(
        self, attempt_id: str, agent_id: str, code: str, now: datetime, details: DispositionDetails
    ) -> Lead:
        """Write the agent's disposition with the lead's next state; returns the lead concerned."""

    async def open_attempts(self) -> list[OpenAttempt]: ...


class Gate(Protocol):
    """The compliance gate.  ``check`` must not raise: a rule it cannot evaluate blocks."""

    async def check(self, lead: Lead, plan: CampaignPlan, now: datetime) -> GateVerdict: ...

    async def record_attempt(self, lead: Lead, at: datetime) -> None: ...

    async def record_outcome(self, lead: Lead, kind: str, at: datetime) -> None:
        """kind: contact, machine, abandoned, refusal (lock-out), do_not_call (blocks the number)."""
