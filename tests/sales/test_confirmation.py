"""The confirmation PDF shows the mandatory fields and the withdrawal form (text read back with pypdf)."""

from __future__ import annotations

import io
from datetime import date
from pathlib import Path

import pypdf
import pytest

from dialer.sales.confirmation import (
    DEFAULT_TEMPLATE,
    ConfirmationData,
    Seller,
    TemplateError,
    confirmation_pdf,
    load_template,
)

SELLER = Seller(
    "Soleil Énergie SARL", "12 rue de la Paix, 75002 Paris", "contact@soleil.example", "+33100000000"
)


def _data() -> ConfirmationData:
    return ConfirmationData(
        sale_ref="S-42",
        seller=SELLER,
        customer_name="Zoë Łukasiewicz",
        customer_address="3 chemin des Prés, 69001 Lyon",
        customer_email="zoe@example.org",
        product="Heat pump HP-12",
        price_cents=899_950,
        currency="EUR",
        delivery_terms="Delivered within 30 days, free of charge",
        installation_terms="Installed by our technician on the delivery day",
        contract_date=date(2026, 1, 31),
        delivery_date=date(2026, 2, 10),
        withdrawal_days=14,
        withdrawal_start="the later of the contract and the delivery",
        withdrawal_end=date(2026, 2, 24),
    )


def _text(pdf: bytes) -> list[str]:
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    return [" ".join((page.extract_text() or "").split()) for page in reader.pages]


def test_confirmation_pdf_contains_the_mandatory_fields_and_the_form() -> None:
    pages = _text(confirmation_pdf(load_template(), _data()))
    offer, form = " ".join(pages[:-1]), pages[-1]
    for shown in (
        "Soleil Énergie SARL",
        "12 rue de la Paix, 75002 Paris",
        "Heat pump HP-12",
        "8999.50 EUR",
        "Delivered within 30 days, free of charge",
        "Installed by our technician on the delivery day",
        "within 14 calendar days",
        "ends on 2026-02-24",
        "without any penalty",
        "Zoë Łukasiewicz",
    ):
        assert shown in offer, shown
    assert form.startswith("Withdrawal form")
    assert "I hereby give notice that I withdraw from my contract" in form
    assert "Heat pump HP-12 (order S-42)" in form and "Soleil Énergie SARL" in form


def test_a_template_that_drops_a_mandatory_field_is_refused(tmp_path: Path) -> None:
    edited = tmp_path / "confirmation.toml"
    edited.write_text(DEFAULT_TEMPLATE.read_text("utf-8").replace("{installation_terms}", "-"), "utf-8")
    with pytest.raises(TemplateError, match=r"\{installation_terms\}"):
        load_template(edited)
    edited.write_text(DEFAULT_TEMPLATE.read_text("utf-8").replace("{product}", "{produkt}"), "utf-8")
    with pytest.raises(TemplateError, match=r"unknown placeholder\(s\) \{produkt\}"):
        load_template(edited)


def test_an_operator_template_changes_the_wording(tmp_path: Path) -> None:
    edited = tmp_path / "confirmation.toml"
    edited.write_text(
        DEFAULT_TEMPLATE.read_text("utf-8").replace("Your order", "Votre commande"), encoding="utf-8"
    )
    pages = _text(confirmation_pdf(load_template(edited), _data()))
    assert "Votre commande" in pages[0]
