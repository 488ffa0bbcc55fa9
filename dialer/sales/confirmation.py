"""The written confirmation of a telephone sale: an operator-edited template made into a PDF.

The template (``templates/confirmation.toml``, or the operator's copy named by
``[seller] confirmation_template``) holds the headings and paragraphs with
``{placeholders}``; it is checked when loaded, so a template that drops one of
the mandatory fields (seller's name and address, product, price, delivery and
installation terms, withdrawal period) or the withdrawal form is refused with
what is missing.  The PDF is made with fpdf2 and a Unicode TrueType font
(DejaVu Sans, Debian's fonts-dejavu-core), so names and addresses in any Latin,
Greek or Cyrillic script print as written.
"""

from __future__ import annotations

import string
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fpdf import FPDF

DEFAULT_TEMPLATE = Path(__file__).with_name("templates") / "confirmation.toml"
FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
FONT_REGULAR = FONT_DIR / "DejaVuSans.ttf"
FONT_BOLD = FONT_DIR / "DejaVuSans-Bold.ttf"

PLACEHOLDERS = frozenset(
    {
        "seller_name",
        "seller_address",
        "seller_email",
        "seller_phone",
        "customer_name",
        "customer_address",
        "customer_email",
        "sale_ref",
        "product",
        "price",
        "currency",
        "delivery_terms",
        "installation_terms",
        "contract_date",
        "delivery_date",
        "withdrawal_days",
        "withdrawal_start",
        "withdrawal_end",
    }
)
# What the law wants on the confirmation: the template must print each of these.
MANDATORY = (
    "seller_name",
    "seller_address",
    "product",
    "price",
    "currency",
    "delivery_terms",
    "installation_terms",
    "withdrawal_days",
    "withdrawal_end",
)


class TemplateError(ValueError):
    """The confirmation template cannot be used; the message names the file and the problem."""


@dataclass(frozen=True, slots=True)
class Seller:
    """Who sells: printed on every confirmation (``[seller]`` in dialer.toml)."""

    name: str = ""
    address: str = ""
    email: str = ""
    phone: str = ""

    def missing(self) -> list[str]:
        return [f for f in ("name", "address") if not getattr(self, f).strip()]


@dataclass(frozen=True, slots=True)
class Section:
    heading: str
    text: str


@dataclass(frozen=True, slots=True)
class ConfirmationTemplate:
    title: str
    sections: tuple[Section, ...]
    form: Section
    source: str


def _fields(text: str, where: str) -> set[str]:
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
    except ValueError as exc:
        raise TemplateError(f"{where}: {exc} (write a literal brace as {{{{ or }}}})") from None
    unknown = sorted(n for n in names if n not in PLACEHOLDERS)
    if unknown:
        raise TemplateError(
            f"{where}: unknown placeholder(s) {', '.join('{' + n + '}' for n in unknown)}; "
            f"use only: {', '.join(sorted(PLACEHOLDERS))}"
        )
    return names


def parse_template(data: Mapping[str, object], source: str) -> ConfirmationTemplate:
    """Check and build a template from parsed TOML; TemplateError names what is wrong."""
    title = data.get("title")
    raw_sections = data.get("section")
    raw_form = data.get("form")
    if not isinstance(title, str) or not title.strip():
        raise TemplateError(f"{source}: 'title' is missing; give the document's title")
    if not isinstance(raw_sections, list) or not raw_sections:
        raise TemplateError(f"{source}: no [[section]]; give at least one heading and text")
    if not isinstance(raw_form, Mapping):
        raise TemplateError(f"{source}: [form] is missing; the withdrawal form must be attached")
    used = _fields(title, f"{source}: title")
    sections: list[Section] = []
    for i, raw in enumerate([*raw_sections, raw_form]):
        where = f"{source}: section {i + 1}" if i < len(raw_sections) else f"{source}: [form]"
        if not isinstance(raw, Mapping):
            raise TemplateError(f"{where} must be a table with 'heading' and 'text'")
        heading, text = raw.get("heading"), raw.get("text")
        if not isinstance(heading, str) or not isinstance(text, str) or not text.strip():
            raise TemplateError(f"{where} needs a 'heading' and a non-empty 'text'")
        used |= _fields(heading, where) | _fields(text, where)
        sections.append(Section(heading, text))
    missing = [name for name in MANDATORY if name not in used]
    if missing:
        raise TemplateError(
            f"{source}: the confirmation must show {', '.join('{' + n + '}' for n in missing)}; "
            "put them back in a section"
        )
    return ConfirmationTemplate(title, tuple(sections[:-1]), sections[-1], source)


def load_template(path: Path | None = None) -> ConfirmationTemplate:
    path = path or DEFAULT_TEMPLATE
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise TemplateError(f"cannot read the confirmation template {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise TemplateError(f"{path}: not valid TOML: {exc}") from None
    return parse_template(data, str(path))


@dataclass(frozen=True, slots=True)
class ConfirmationData:
    """Everything one confirmation prints."""

    sale_ref: str
    seller: Seller
    customer_name: str
    customer_address: str
    customer_email: str
    product: str
    price_cents: int
    currency: str
    delivery_terms: str
    installation_terms: str
    contract_date: date
    delivery_date: date | None
    withdrawal_days: int
    withdrawal_start: str  # in words: "the later of the contract and the delivery"
    withdrawal_end: date | None

    def values(self) -> dict[str, str]:
        return {
            "seller_name": self.seller.name,
            "seller_address": self.seller.address,
            "seller_email": self.seller.email or "-",
            "seller_phone": self.seller.phone or "-",
            "customer_name": self.customer_name or "-",
            "customer_address": self.customer_address or "-",
            "customer_email": self.customer_email or "-",
            "sale_ref": self.sale_ref,
            "product": self.product,
            "price": format_price(self.price_cents),
            "currency": self.currency,
            "delivery_terms": self.delivery_terms,
            "installation_terms": self.installation_terms or "none",
            "contract_date": self.contract_date.isoformat(),
            "delivery_date": self.delivery_date.isoformat() if self.delivery_date else "to be agreed",
            "withdrawal_days": str(self.withdrawal_days),
            "withdrawal_start": self.withdrawal_start,
            "withdrawal_end": self.withdrawal_end.isoformat()
            if self.withdrawal_end
            else f"{self.withdrawal_days} days after the delivery",
        }


def format_price(cents: int) -> str:
    return f"{Decimal(cents) / 100:.2f}"


def render_text(template: ConfirmationTemplate, data: ConfirmationData) -> list[tuple[str, str]]:
    """The filled (heading, text) pairs, title first and the form last: what the PDF and a letter print."""
    values = data.values()
    out = [("", template.title.format_map(values))]
    for section in (*template.sections, template.form):
        out.append((section.heading.format_map(values), section.text.format_map(values)))
    return out


def _pdf() -> FPDF:
    from fpdf import FPDF  # here: the process that makes the PDFs is the one that loads fpdf2 and fontTools

    for font in (FONT_REGULAR, FONT_BOLD):
        if not font.is_file():
            raise TemplateError(
                f"the confirmation font {font} is missing; install Debian's fonts-dejavu-core "
                "(apt-get install fonts-dejavu-core)"
            )
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=True, margin=18)
    pdf.add_font("DejaVu", "", str(FONT_REGULAR))
    pdf.add_font("DejaVu", "B", str(FONT_BOLD))
    return pdf


def confirmation_pdf(template: ConfirmationTemplate, data: ConfirmationData) -> bytes:
    """The confirmation as a PDF: the offer's terms, then the withdrawal form on a page of its own."""
    parts = render_text(template, data)
    pdf = _pdf()
    pdf.set_title(parts[0][1])
    pdf.set_author(data.seller.name)
    pdf.add_page()
    pdf.set_font("DejaVu", "B", 15)
    pdf.multi_cell(0, 8, parts[0][1], new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    for i, (heading, text) in enumerate(parts[1:]):
        if i == len(parts) - 2:  # the form: its own page, so it can be cut out and sent back
            pdf.add_page()
            pdf.set_font("DejaVu", "B", 14)
        else:
            pdf.set_font("DejaVu", "B", 12)
        pdf.multi_cell(0, 7, heading, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("DejaVu", "", 10.5)
        pdf.multi_cell(0, 5.5, text, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(3)
    return bytes(pdf.output())
