"""Sales use cases: record a sale with its confirmation, list the withdrawal periods, take a withdrawal.

A sale is recorded by the desk's disposition (code ``sale``) in the same unit
of work as the disposition: the sale row, the customer's email or postal
address, and the confirmation (a PDF by email, or a letter to post when the
customer has no email) are written together or not at all.  The PDF is made
before the transaction opens, in a worker thread, so neither the event loop
nor the database waits for it.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from dialer.domain.campaign import CampaignSettings, WithdrawalStart
from dialer.domain.dispositions import DispositionError
from dialer.notify.messages import Attachment, Channel, queue_notification
from dialer.sales.confirmation import (
    ConfirmationData,
    ConfirmationTemplate,
    Seller,
    confirmation_pdf,
    format_price,
    load_template,
    render_text,
)
from dialer.sales.tables import Sale
from dialer.sales.withdrawal import START_IN_WORDS, WithdrawalDecision, decide_withdrawal, period_end
from dialer.service import Invalid, NotFound, Refused
from dialer.settings import SellerSettings
from dialer.store.db import Database
from dialer.store.models import AuditEntry, Campaign, Customer, Lead
from dialer.store.repositories import AttemptRecord

log = logging.getLogger(__name__)

CONFIRMATION_REASON = "sale.confirmation"
# PDFs are made one at a time in a worker process of their own, started at the first sale: a PDF takes
# about 0.1 s of CPU, which in the node's own process would hold the interpreter lock while calls are
# being connected, and fpdf2 with its fonts (some 20-30 MiB) stays out of the node's memory.
_pdf_workers: ProcessPoolExecutor | None = None


async def _make_pdf(template: ConfirmationTemplate, data: ConfirmationData) -> bytes:
    global _pdf_workers
    for _ in range(2):  # a worker that died (killed, out of memory) is replaced once
        if _pdf_workers is None:
            _pdf_workers = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        try:
            return await asyncio.get_running_loop().run_in_executor(
                _pdf_workers, confirmation_pdf, template, data
            )
        except BrokenProcessPool:
            log.warning("the process making confirmation PDFs stopped; starting another")
            _pdf_workers = None
    raise Refused("the confirmation PDF could not be made (its worker process keeps stopping); try again")


class SaleStatus(enum.StrEnum):
    ACTIVE = "active"
    WITHDRAWN = "withdrawn"


class WithdrawalChannel(enum.StrEnum):
    PHONE = "phone"
    EMAIL = "email"
    POST = "post"
    FORM = "form"  # the withdrawal form sent with the confirmation
    IN_PERSON = "in_person"


class SaleDetailsMissing(DispositionError):
    """A sale disposition without what its confirmation must state."""


@dataclass(frozen=True, slots=True)
class SaleTerms:
    """What the agent enters with a sale (the desk's disposition carries it)."""

    product: str | None = None
    price_cents: int | None = None
    currency: str = "EUR"
    delivery_terms: str | None = None
    installation_terms: str | None = None
    delivery_date: date | None = None
    email: str | None = None  # where the confirmation goes; else the customer record's
    address: str | None = None  # postal address, for a confirmation by post; else the record's


def sale_ref(attempt_id: str) -> str:
    """The order reference printed on the confirmation: stable, derived from the call."""
    return "S-" + attempt_id.replace("-", "")[:10].upper()


@dataclass(frozen=True, slots=True)
class PreparedSale:
    """A complete sale, its confirmation made, waiting for the disposition's unit of work."""

    terms: SaleTerms
    data: ConfirmationData
    channel: Channel
    recipient: str
    pdf: bytes
    letter: str


@dataclass(frozen=True, slots=True)
class SaleView:
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
    withdrawal_end: date | None
    status: str
    withdrawal_received_at: datetime | None
    withdrawal_channel: str | None
    confirmation_channel: str
    created_at: datetime


def _name(first: str | None, last: str | None) -> str:
    return " ".join(p for p in (first, last) if p)


class Sales:
    def __init__(
        self,
        db: Database,
        seller: SellerSettings | None = None,
        *,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.db = db
        settings = seller or SellerSettings()
        self.seller = Seller(settings.name, settings.address, settings.email, settings.phone)
        self.tz = ZoneInfo(settings.timezone)
        self._template_path = settings.confirmation_template
        self._template: ConfirmationTemplate | None = None
        self._wall = wall

    def template(self) -> ConfirmationTemplate:
        if self._template is None:
            self._template = load_template(self._template_path)
        return self._template

    # -- recording a sale (called by the desk) ---------------------------------------------

    async def prepare(
        self,
        attempt: AttemptRecord,
        terms: SaleTerms | None,
        identity: dict[str, str],
        now: datetime,
    ) -> PreparedSale | list[str]:
        """The sale's confirmation made ready, or the list of what is missing to make it."""
        terms = terms or SaleTerms()
        missing = [
            name
            for name, value in (
                ("product", terms.product),
                ("price", terms.price_cents),
                ("delivery_terms", terms.delivery_terms),
                ("installation_terms", terms.installation_terms),
            )
            if value is None or (isinstance(value, str) and not value.strip())
        ]
        if terms.price_cents is not None and terms.price_cents <= 0:
            missing.append("price (above zero)")
        customer = await self.db.customers.get(attempt.number)
        lead = await self.db.leads.get(attempt.lead_id)
        email = terms.email or identity.get("email") or (customer.email if customer else None) or lead.email
        address = terms.address or await self._address_of(attempt.number)
        if not email and not address:
            missing.append("email or postal address (where the written confirmation goes)")
        if missing:
            return missing
        first = identity.get("first_name") or (customer.first_name if customer else None) or lead.first_name
        last = identity.get("last_name") or (customer.last_name if customer else None) or lead.last_name
        settings = (await self.db.campaigns.get(attempt.campaign_id)).settings
        contract = now.astimezone(self.tz).date()
        data = ConfirmationData(
            sale_ref=sale_ref(attempt.id),
            seller=self.seller,
            customer_name=_name(first, last),
            customer_address=address or "",
            customer_email=email or "",
            product=str(terms.product).strip(),
            price_cents=int(terms.price_cents or 0),
            currency=terms.currency,
            delivery_terms=str(terms.delivery_terms).strip(),
            installation_terms=str(terms.installation_terms).strip(),
            contract_date=contract,
            delivery_date=terms.delivery_date,
            withdrawal_days=settings.withdrawal_days,
            withdrawal_start=START_IN_WORDS[settings.withdrawal_starts],
            withdrawal_end=period_end(
                contract, terms.delivery_date, settings.withdrawal_starts, settings.withdrawal_days
            ),
        )
        self._check_seller()
        template = self.template()
        pdf = await _make_pdf(template, data)
        letter = "\n\n".join(f"{h}\n{t}" if h else t for h, t in render_text(template, data))
        if email:
            return PreparedSale(terms, data, Channel.EMAIL, email, pdf, letter)
        return PreparedSale(terms, data, Channel.POST, f"{data.customer_name}, {address}"[:320], pdf, letter)

    def _check_seller(self) -> None:
        missing = self.seller.missing()
        if missing:
            raise Refused(
                f"the seller's {' and '.join(missing)} are not configured, and a sale's written confirmation "
                "must show them: set [seller] name and address in dialer.toml, then qualify the call again"
            )

    async def _address_of(self, number: str) -> str | None:
        async with self.db.read_session() as s:
            found = await s.execute(select(Customer.address).where(Customer.phone == number))
            return found.scalar_one_or_none()

    async def record(
        self,
        s: AsyncSession,
        prepared: PreparedSale | list[str],
        attempt: AttemptRecord,
        disposition_id: int,
        agent_id: str,
        now: datetime,
    ) -> Sale:
        """Write the sale and queue its confirmation in the caller's transaction (the disposition's)."""
        if isinstance(prepared, list):
            raise SaleDetailsMissing(
                "a sale needs what its written confirmation states; missing: " + ", ".join(prepared)
            )
        customer = (
            await s.execute(select(Customer).where(Customer.phone == attempt.number).with_for_update())
        ).scalar_one()
        if prepared.channel is Channel.EMAIL and not customer.email:
            customer.email = prepared.recipient
        if prepared.terms.address:
            customer.address = prepared.terms.address
        settings = CampaignSettings.from_dict(
            (
                await s.execute(select(Campaign.settings).where(Campaign.id == attempt.campaign_id))
            ).scalar_one()
        )
        data = prepared.data
        sale = Sale(
            attempt_id=attempt.id,
            disposition_id=disposition_id,
            lead_id=attempt.lead_id,
            customer_id=customer.id,
            campaign_id=attempt.campaign_id,
            agent_id=agent_id,
            product=data.product,
            price_cents=data.price_cents,
            currency=data.currency,
            delivery_terms=data.delivery_terms,
            installation_terms=data.installation_terms,
            contract_date=data.contract_date,
            delivery_date=data.delivery_date,
            withdrawal_days=settings.withdrawal_days,
            withdrawal_starts=settings.withdrawal_starts.value,
            withdrawal_end=data.withdrawal_end,
            status=SaleStatus.ACTIVE.value,
            confirmation_channel=prepared.channel.value,
            created_at=now,
        )
        s.add(sale)
        await s.flush()
        note = (
            f"Please find attached the confirmation of your order {data.sale_ref} and the withdrawal form."
            if prepared.channel is Channel.EMAIL
            else "Print the attached confirmation and withdrawal form and post them to the customer."
        )
        message = queue_notification(
            s,
            channel=prepared.channel,
            recipient=prepared.recipient,
            subject=f"Confirmation of your order {data.sale_ref} - {self.seller.name}",
            body=f"{note}\n\n{prepared.letter}",
            reason=CONFIRMATION_REASON,
            now=now,
            ref=f"sale:{sale.id}",
            attachments=[Attachment(f"confirmation-{data.sale_ref}.pdf", "application/pdf", prepared.pdf)],
            campaign_id=attempt.campaign_id,
            customer_id=customer.id,
        )
        await s.flush()
        sale.confirmation_id = message.id
        return sale

    # -- the withdrawal period -----------------------------------------------------------

    async def in_withdrawal_period(self, today: date | None = None) -> list[SaleView]:
        """Active sales whose withdrawal period has not ended (or not started: delivery unknown)."""
        today = today or self._wall().astimezone(self.tz).date()
        return await self._views(
            Sale.status == SaleStatus.ACTIVE.value,
            or_(Sale.withdrawal_end.is_(None), Sale.withdrawal_end >= today),
        )

    async def by_status(self, status: SaleStatus | None = None) -> list[SaleView]:
        return await self._views(*([Sale.status == status.value] if status else []))

    async def get(self, sale_id: int) -> SaleView:
        found = await self._views(Sale.id == sale_id)
        if not found:
            raise NotFound(f"no sale {sale_id}; list them with GET /api/sales")
        return found[0]

    async def _views(self, *where: object) -> list[SaleView]:
        query = (
            select(Sale, Campaign.name, Customer.first_name, Customer.last_name)
            .join(Campaign, Campaign.id == Sale.campaign_id)
            .join(Customer, Customer.id == Sale.customer_id)
            .where(*where)  # type: ignore[arg-type]
            .order_by(Sale.withdrawal_end.is_(None), Sale.withdrawal_end, Sale.id)
        )
        async with self.db.read_session() as s:
            return [
                SaleView(
                    sale.id,
                    sale_ref(sale.attempt_id),
                    sale.campaign_id,
                    campaign,
                    sale.customer_id,
                    _name(first, last),
                    sale.agent_id,
                    sale.product,
                    format_price(sale.price_cents),
                    sale.currency,
                    sale.contract_date,
                    sale.delivery_date,
                    sale.withdrawal_end,
                    sale.status,
                    sale.withdrawal_received_at,
                    sale.withdrawal_channel,
                    sale.confirmation_channel,
                    sale.created_at,
                )
                for sale, campaign, first, last in await s.execute(query)
            ]

    async def set_delivery(self, sale_id: int, delivered_on: date, actor: str) -> SaleView:
        """The goods were delivered on ``delivered_on``: the withdrawal period's end follows from it."""
        now = self._wall()
        async with self.db.session() as s, s.begin():
            sale = await s.get(Sale, sale_id, with_for_update=True)
            if sale is None:
                raise NotFound(f"no sale {sale_id}")
            if delivered_on < sale.contract_date:
                raise Invalid(
                    f"delivery on {delivered_on.isoformat()} is before the contract of "
                    f"{sale.contract_date.isoformat()}; give the day the goods were delivered"
                )
            sale.delivery_date = delivered_on
            sale.withdrawal_end = period_end(
                sale.contract_date,
                delivered_on,
                WithdrawalStart(sale.withdrawal_starts),
                sale.withdrawal_days,
            )
            _audit(s, now, actor, "sale.delivered", sale.id, {"delivered_on": delivered_on.isoformat()})
        return await self.get(sale_id)

    async def withdraw(
        self, sale_id: int, received_at: datetime, channel: WithdrawalChannel, actor: str
    ) -> tuple[SaleView, WithdrawalDecision]:
        """Record a withdrawal received by any channel: it stops the sale, at no cost to the customer.

        One received after the period's last day is refused (``Refused`` with the
        reason) and the refusal is kept in the audit with the same reason.
        """
        now = self._wall()
        if received_at > now:
            raise Invalid(f"a withdrawal received at {received_at.isoformat()} is in the future")
        async with self.db.session() as s, s.begin():
            sale = await s.get(Sale, sale_id, with_for_update=True)
            if sale is None:
                raise NotFound(f"no sale {sale_id}")
            if sale.status == SaleStatus.WITHDRAWN.value:
                assert sale.withdrawal_received_at is not None
                raise Refused(
                    f"sale {sale_id} was already withdrawn (received "
                    f"{sale.withdrawal_received_at.isoformat()} by {sale.withdrawal_channel})"
                )
            decision = decide_withdrawal(
                received_at,
                sale.contract_date,
                sale.delivery_date,
                WithdrawalStart(sale.withdrawal_starts),
                sale.withdrawal_days,
                self.tz,
            )
            detail = {
                "received_at": received_at.isoformat(),
                "channel": channel.value,
                "reason": decision.reason,
            }
            if decision.accepted:
                sale.status = SaleStatus.WITHDRAWN.value
                sale.withdrawal_received_at = received_at
                sale.withdrawal_channel = channel.value
                sale.withdrawal_recorded_by = actor
                _audit(s, now, actor, "sale.withdrawn", sale.id, detail)
            else:
                _audit(s, now, actor, "sale.withdrawal_refused", sale.id, detail)
        if not decision.accepted:
            raise Refused(f"withdrawal of sale {sale_id} refused: {decision.reason}")
        log.info("sale %s withdrawn (%s, %s)", sale_id, channel.value, decision.reason)
        return await self.get(sale_id), decision

    async def confirmation(self, sale_id: int) -> tuple[str, bytes]:
        """The confirmation PDF of a sale as it reads today (file name, bytes)."""
        async with self.db.read_session() as s:
            row = (
                await s.execute(
                    select(Sale, Customer, Lead)
                    .join(Customer, Customer.id == Sale.customer_id)
                    .join(Lead, Lead.id == Sale.lead_id)
                    .where(Sale.id == sale_id)
                )
            ).one_or_none()
        if row is None:
            raise NotFound(f"no sale {sale_id}")
        sale, customer, lead = row
        data = ConfirmationData(
            sale_ref=sale_ref(sale.attempt_id),
            seller=self.seller,
            customer_name=_name(customer.first_name or lead.first_name, customer.last_name or lead.last_name),
            customer_address=customer.address or "",
            customer_email=customer.email or lead.email or "",
            product=sale.product,
            price_cents=sale.price_cents,
            currency=sale.currency,
            delivery_terms=sale.delivery_terms,
            installation_terms=sale.installation_terms,
            contract_date=sale.contract_date,
            delivery_date=sale.delivery_date,
            withdrawal_days=sale.withdrawal_days,
            withdrawal_start=START_IN_WORDS[WithdrawalStart(sale.withdrawal_starts)],
            withdrawal_end=sale.withdrawal_end,
        )
        self._check_seller()
        pdf = await _make_pdf(self.template(), data)
        return f"confirmation-{data.sale_ref}.pdf", pdf


def _audit(
    s: AsyncSession, now: datetime, actor: str, action: str, sale_id: int, detail: dict[str, str]
) -> None:
    s.add(
        AuditEntry(at=now, actor=actor, action=action, entity="sale", entity_id=str(sale_id), detail=detail)
    )
