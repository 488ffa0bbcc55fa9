"""Sales: confirmations, withdrawal periods; the customer record.

Supervisors list the sales in their withdrawal period, record a withdrawal
received by any channel, enter the delivery date and download a confirmation;
they search and read customer records and add notes.  Exporting or erasing a
person's data is for admins.  An agent reaches a customer record only through
the call on their desk (``/api/me/call/record``).
"""

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from dialer.api.auth import Admin, Anyone, Supervisor
from dialer.sales.customers import file_as_dict
from dialer.sales.service import SaleStatus, SaleView, WithdrawalChannel
from dialer.service import NotFound
from dialer.service.desk import Desk

Id = Annotated[int, Path(ge=1, le=2**31 - 1)]
NoteText = Annotated[str, Field(min_length=1, max_length=4000)]


class SaleOut(BaseModel):
    id: int
    ref: str
    campaign_id: int
    campaign: str
    customer_id: int
    customer_name: str
    agent_id: str | None
    product: str
    price: str
    currency: str
    contract_date: date
    delivery_date: date | None
    withdrawal_end: date | None = Field(description="last day a withdrawal is accepted; None until delivery")
    status: str
    withdrawal_received_at: datetime | None
    withdrawal_channel: str | None
    confirmation_channel: str
    created_at: datetime


class WithdrawalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    received_at: AwareDatetime = Field(description="when the customer's withdrawal reached the seller")
    channel: WithdrawalChannel


class WithdrawalOut(BaseModel):
    sale: SaleOut
    reason: str
    day: int | None


class DeliveryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    delivered_on: date


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: NoteText


class NoteOut(BaseModel):
    id: int
    at: datetime
    author: str
    text: str


class CustomerSummaryOut(BaseModel):
    id: int
    number_masked: str
    first_name: str | None
    last_name: str | None
    email: str | None
    last_contact_at: datetime | None
    erased: bool


class ErasureOut(BaseModel):
    customer_id: int
    counts: dict[str, int]


def _sale_out(view: SaleView) -> SaleOut:
    return SaleOut(**{name: getattr(view, name) for name in SaleOut.model_fields})


def router(desk: Desk) -> APIRouter:
    api = APIRouter(prefix="/api")
    records = desk.customers

    @api.get("/sales", response_model=list[SaleOut], tags=["sales"])
    async def sales(
        who: Supervisor, status: Annotated[SaleStatus | None, Query()] = None, everything: bool = False
    ) -> list[SaleOut]:
        """The sales still in their withdrawal period (default), or every sale (``everything``)."""
        if everything or status is not None:
            return [_sale_out(v) for v in await desk.sales.by_status(status)]
        return [_sale_out(v) for v in await desk.sales.in_withdrawal_period()]

    @api.get("/sales/{sale_id}", response_model=SaleOut, tags=["sales"])
    async def sale(who: Supervisor, sale_id: Id) -> SaleOut:
        return _sale_out(await desk.sales.get(sale_id))

    @api.post("/sales/{sale_id}/withdrawal", response_model=WithdrawalOut, tags=["sales"])
    async def withdraw(who: Supervisor, sale_id: Id, body: WithdrawalIn) -> WithdrawalOut:
        """Record a withdrawal: accepted through the last day (never a penalty), 409 with the reason after."""
        view, decision = await desk.sales.withdraw(sale_id, body.received_at, body.channel, who.user_id)
        return WithdrawalOut(sale=_sale_out(view), reason=decision.reason, day=decision.day)

    @api.post("/sales/{sale_id}/delivery", response_model=SaleOut, tags=["sales"])
    async def delivered(who: Supervisor, sale_id: Id, body: DeliveryIn) -> SaleOut:
        """The delivery date: the withdrawal period's end follows from it."""
        return _sale_out(await desk.sales.set_delivery(sale_id, body.delivered_on, who.user_id))

    @api.get(
        "/sales/{sale_id}/confirmation.pdf",
        tags=["sales"],
        response_class=Response,
        responses={200: {"content": {"application/pdf": {}}}},
    )
    async def confirmation(who: Supervisor, sale_id: Id) -> Response:
        name, pdf = await desk.sales.confirmation(sale_id)
        return Response(
            pdf, media_type="application/pdf", headers={"Content-Disposition": f'inline; filename="{name}"'}
        )

    @api.get("/customers", response_model=list[CustomerSummaryOut], tags=["customers"])
    async def search(
        who: Supervisor, q: Annotated[str, Query(min_length=2, max_length=200)]
    ) -> list[CustomerSummaryOut]:
        """Customer records by name, email or a number's last digits."""
        return [CustomerSummaryOut(**vars_of(c)) for c in await records.search(q)]

    @api.get("/customers/{customer_id}", tags=["customers"])
    async def customer(who: Supervisor, customer_id: Id) -> dict[str, Any]:
        """The whole record: identity verified (who, when), history, notes, sales."""
        return file_as_dict(await records.get(customer_id))

    @api.post("/customers/{customer_id}/notes", response_model=NoteOut, tags=["customers"])
    async def note(who: Supervisor, customer_id: Id, body: NoteIn) -> NoteOut:
        n = await records.add_note(customer_id, who.user_id, body.text)
        return NoteOut(id=n.id, at=n.at, author=n.author, text=n.text)

    @api.get("/customers/{customer_id}/export", tags=["customers"])
    async def export(who: Admin, customer_id: Id) -> dict[str, Any]:
        """Everything held about the person, as JSON (an access or portability request)."""
        return await records.export(customer_id, who.user_id)

    @api.post("/customers/{customer_id}/erase", response_model=ErasureOut, tags=["customers"])
    async def erase(who: Admin, customer_id: Id) -> ErasureOut:
        """Erase the person's data; their do-not-call entries stay as a hashed number the gate checks."""
        report = await records.erase(customer_id, who.user_id)
        return ErasureOut(customer_id=report.customer_id, counts=report.counts)

    @api.get("/me/call/record", tags=["agent"])
    async def my_customer(who: Anyone) -> dict[str, Any]:
        """The record of the customer on your call: everything every agent wrote, with who and when."""
        on_desk = desk.call_number(who.user_id)
        if on_desk is None:
            raise NotFound("no call on your desk")
        found = await records.for_number(on_desk[1])
        if found is None:
            raise NotFound("first contact: this customer has no record yet")
        return file_as_dict(found)

    @api.post("/me/call/notes", response_model=NoteOut, tags=["agent"])
    async def my_note(who: Anyone, body: NoteIn) -> NoteOut:
        """A note on the record of the customer on your call, signed with your name and the time."""
        on_desk = desk.call_number(who.user_id)
        if on_desk is None:
            raise NotFound("no call on your desk")
        attempt_id, number = on_desk
        n = await records.add_note(None, who.user_id, body.text, number=number, attempt_id=attempt_id)
        return NoteOut(id=n.id, at=n.at, author=n.author, text=n.text)

    return api


def vars_of(obj: object) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in CustomerSummaryOut.model_fields}
