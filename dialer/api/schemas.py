"""What the HTTP API reads and writes: every field bounded, every time zone-aware.

Bounds are part of the contract: a request outside them gets a 422 naming the
field, never reaches the record (a NUL byte or an out-of-range integer would
otherwise be a database error).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from dialer.domain.dispositions import DispositionCode
from dialer.sales.service import SaleTerms
from dialer.service.desk import PauseReason
from dialer.store.repositories import Role


def _printable(value: str) -> str:
    if any(ord(c) < 32 and c not in "\n\t" for c in value):
        raise ValueError("control characters are not allowed")
    return value


def _line(value: str) -> str:
    if any(ord(c) < 32 for c in value):
        raise ValueError("control characters (line breaks included) are not allowed")
    return value


Text = Annotated[str, Field(max_length=4000), AfterValidator(_printable)]
Line = Annotated[str, Field(max_length=200), AfterValidator(_line)]
UserId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._@-]+$")]
Password = Annotated[str, Field(min_length=1, max_length=1024)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginIn(Strict):
    user: Annotated[str, Field(min_length=1, max_length=64)]
    password: Password


class TokenOut(BaseModel):
    token: str = Field(description="send as `Authorization: Bearer <token>`; shown only once")
    token_type: str = "bearer"
    expires_at: datetime
    user: str
    role: Role


class Health(BaseModel):
    status: str
    campaigns_dialing: int
    agents_logged_in: int


class Problem(BaseModel):
    detail: str


class DeskLoginIn(Strict):
    campaigns: list[Annotated[str, Field(max_length=20, pattern=r"^[0-9]+$")]] | None = Field(
        None, max_length=100, description="campaign ids; all campaigns this node dials when left out"
    )
    endpoint: Line | None = Field(None, description="the softphone the PBX calls, e.g. PJSIP/1001")


class PauseIn(Strict):
    reason: PauseReason


class AgentOut(BaseModel):
    agent_id: str
    state: str
    seconds_in_state: float
    pause_reason: PauseReason | None
    pause_after_call: PauseReason | None
    campaigns: list[str]
    attempt_id: str | None


class MeOut(BaseModel):
    user: str
    name: str
    role: Role
    token_expires_at: datetime
    desk: AgentOut


class LeadOut(BaseModel):
    lead_id: int
    first_name: str | None
    last_name: str | None
    email: str | None
    external_id: str | None
    attempts: int
    extra: dict[str, Any]


class CustomerOut(BaseModel):
    first_name: str | None
    last_name: str | None
    email: str | None
    identity: dict[str, Any]


class HistoryOut(BaseModel):
    at: datetime
    campaign: str
    agent_id: str | None
    code: str
    result: str | None
    objections: list[str]
    next_actions: list[str]
    comments: str | None
    callback_at: datetime | None
    appointment_at: datetime | None


class DispositionChoice(BaseModel):
    code: str
    label: str


class CallOut(BaseModel):
    attempt_id: str
    phase: str = Field(description="talking or wrap_up")
    campaign_id: str
    campaign_name: str
    number: str = Field(description="masked: only the last digits")
    connected_at: datetime
    lead: LeadOut | None
    customer: CustomerOut | None
    history: list[HistoryOut] = Field(description="every earlier disposition of this customer, newest first")
    comments: list[HistoryOut] = Field(description="the history entries that carry a comment")
    dispositions: list[DispositionChoice]
    wrap_up_limit_s: float | None = Field(
        None, description="seconds of wrap-up before the campaign's default disposition is written"
    )


class SaleIn(Strict):
    """With a ``sale``: what the written confirmation states; a missing field is named in the 422."""

    product: Line | None = None
    price: Decimal | None = Field(None, gt=0, max_digits=12, decimal_places=2, description="taxes included")
    currency: str = Field("EUR", pattern=r"^[A-Z]{3}$")
    delivery_terms: Text | None = None
    installation_terms: Text | None = None
    delivery_date: date | None = None
    email: Annotated[str, Field(max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")] | None = None
    address: Text | None = Field(None, description="postal address: without email, it goes by post")

    def terms(self) -> SaleTerms:
        return SaleTerms(
            product=self.product,
            price_cents=None if self.price is None else int(self.price * 100),
            currency=self.currency,
            delivery_terms=self.delivery_terms,
            installation_terms=self.installation_terms,
            delivery_date=self.delivery_date,
            email=self.email,
            address=self.address,
        )


class DispositionIn(Strict):
    code: DispositionCode
    identity: dict[Annotated[str, Field(max_length=40, pattern=r"^[a-z_]+$")], Line] = Field(
        default_factory=dict, max_length=20, description="identity fields the agent verified"
    )
    objections: list[Line] = Field(default_factory=list, max_length=20)
    result: Text | None = None
    callback_at: AwareDatetime | None = None
    callback_agent_only: bool = False
    appointment_at: AwareDatetime | None = None
    next_actions: list[Line] = Field(default_factory=list, max_length=20)
    comments: Text | None = None
    sale: SaleIn | None = None
    information_template: Annotated[str, Field(max_length=40, pattern=r"^[a-z0-9_]+$")] | None = Field(
        default=None, description="information promised by email: a template name (brochure, configurator)"
    )
    follow_up: bool = Field(default=False, description="a follow-up contact promised in the preferred way")


class CallbackIn(Strict):
    at: AwareDatetime
    agent_only: bool = False
    comments: Text | None = None


class DispositionOut(BaseModel):
    attempt_id: str
    code: str
    lead_status: str
    callback_id: int | None
    appointment_id: int | None
    gate_update_queued: bool
    agent_state: str | None
    sale_id: int | None = None


class CallInProgressOut(BaseModel):
    attempt_id: str
    campaign_id: str
    campaign_name: str
    state: str
    agent_id: str | None
    number: str = Field(description="masked")
    seconds: float


class CampaignOut(BaseModel):
    id: int
    name: str
    status: str
    settings: dict[str, Any]
    updated_at: datetime


class CampaignSummaryOut(BaseModel):
    id: int
    name: str
    status: str
    dialing: bool = Field(description="this node dials it now")
    pacing: str | None = Field(description="the pacer this node uses for it; None when it does not dial it")
    dial_level: float | None = Field(description="calls in progress per agent taking its calls")
    lines: int = Field(description="calls in progress")
    agents: int = Field(description="agents taking its calls (logged in for it, not paused)")
    outcomes: dict[str, int] = Field(description="calls ended since this node started dialing it, by outcome")
    blocked: dict[str, int] = Field(description="leads the compliance gate refused, by rule")


class AbandonmentOut(BaseModel):
    campaign_id: int
    rate: float
    cap: float
    window_s: float
    person_answered: int
    abandoned: int
    budget_left: float
    over_cap: bool


class UserOut(BaseModel):
    id: str
    name: str
    role: Role
    active: bool
    created_at: datetime


class UserIn(Strict):
    id: UserId
    name: Line
    role: Role
    password: Annotated[str, Field(min_length=8, max_length=1024)]


class UserPatch(Strict):
    name: Line | None = None
    role: Role | None = None
    active: bool | None = None
    password: Annotated[str, Field(min_length=8, max_length=1024)] | None = None
