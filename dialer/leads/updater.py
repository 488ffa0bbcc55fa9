"""Lead update from CSV: change existing leads of a campaign, found by number.

The file is read like an import (same encodings, delimiters, mapping and
``--no-header``); each row names a lead by its number and gives the fields to
change.  An empty cell leaves the field as it is.  Columns that are not lead
fields are merged into the lead's extra fields.  Typical use: add the consent
an FR campaign needs (``consent``, ``consent_given_at``, ``consent_source``)
to leads imported without it; a lead the gate had ``blocked`` for want of
consent goes back in the list.

Nothing is lost: a row that changes no lead (not a lead of the campaign,
invalid number, bad value, a number given twice) goes to the rejects file
with its line and reason.
"""

from __future__ import annotations

import asyncio
import io
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from dialer.leads.importer import (
    _FALSE,
    _TRUE,
    LeadImportError,
    RejectReason,
    _check_source,
    _known_zone,
    _open_table,
    _parse_consent_time,
    _raw_lines,
    _Rejects,
    _Unreadable,
    _unreadable_reason,
    check_encoding,
    detect_encoding,
)
from dialer.leads.numbers import RegionError, normalize_number, normalize_region, number_problem
from dialer.store.db import Database
from dialer.store.leads_repo import LeadAdmin, LeadChange, UpdateOutcome
from dialer.store.models import utcnow
from telephony.base import mask_number

NOT_A_LEAD = "not_a_lead"


@dataclass(slots=True)
class UpdateReport:
    source: str
    encoding: str
    delimiter: str
    rows: int = 0
    updated: int = 0
    unblocked: int = 0  # updated leads the gate had blocked for want of consent, dialable again
    rejected: Counter[str] = field(default_factory=Counter)
    rejects_path: str | None = None
    messages: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    def summary(self) -> str:
        parts = [f"{self.updated} leads updated from {self.source}"]
        if self.unblocked:
            parts.append(
                f"{self.unblocked} of them had been blocked for want of consent and are dialable again"
            )
        if self.rejected_total:
            reasons = ", ".join(f"{n} {r.replace('_', ' ')}" for r, n in sorted(self.rejected.items()))
            parts.append(f"{self.rejected_total} rows rejected ({reasons}), written to {self.rejects_path}")
        else:
            parts.append("no row rejected")
        return "; ".join(parts)


async def update_leads(
    db: Database,
    path: str | Path,
    campaign_id: int,
    default_country: str,
    mapping: Mapping[str, str] | None = None,
    rejects_path: str | Path | None = None,
    *,
    encoding: str | None = None,
    no_header: bool = False,
    batch_size: int = 500,
    max_messages: int = 20,
    actor: str = "system",
) -> UpdateReport:
    """Update the leads of a campaign named by number in a CSV file; see the module docstring."""
    started = time.perf_counter()
    source = _check_source(Path(path))
    try:
        region = normalize_region(default_country)
    except RegionError as exc:
        raise LeadImportError(str(exc)) from None
    await db.campaigns.get(campaign_id)
    rejects_file = Path(rejects_path) if rejects_path else source.with_name(source.stem + ".rejects.csv")
    if encoding is None:
        encoding = await asyncio.to_thread(detect_encoding, source)
    else:
        check_encoding(encoding)
    admin = LeadAdmin(db)
    now = utcnow()
    with io.TextIOWrapper(source.open("rb"), encoding=encoding, newline="") as text:
        table = _open_table(text, source, mapping or {}, region, no_header)
        header, columns = table.header, table.columns
        report = UpdateReport(str(source), encoding, table.delimiter)
        rejects = _Rejects(rejects_file, header)
        fields = {name: i for name, i in columns.items() if name != "phone"}
        extra_columns = [(i, h) for i, h in enumerate(header) if i not in columns.values() and h]
        phone_i = columns["phone"]
        seen: set[str] = set()
        unreadable: dict[int, int] = {}
        batch: list[tuple[int, list[str], LeadChange]] = []

        def reject(line: int, reason: str, row: list[str], message: str) -> None:
            report.rejected[reason] += 1
            rejects.write(line, reason, row)
            if len(report.messages) < max_messages:
                report.messages.append(
                    f"row {line}: {message}; the row was skipped and written to {rejects_file.name}"
                )

        async def flush() -> None:
            if not batch:
                return
            outcome = await admin.apply_changes(campaign_id, [c for _, _, c in batch], actor=actor)
            for line, row, change in batch:
                done = outcome.get(change.phone)
                if done is None:
                    reject(
                        line,
                        NOT_A_LEAD,
                        row,
                        f"{mask_number(change.phone)} is not a lead of this campaign; "
                        "add it with `dialer leads import`",
                    )
                    continue
                report.updated += 1
                report.unblocked += done is UpdateOutcome.UNBLOCKED
            batch.clear()

        try:
            for line, row in table.records:
                if not "".join(row).strip():
                    if isinstance(row, _Unreadable):
                        report.rows += 1
                        report.rejected[RejectReason.UNREADABLE.value] += 1
                        unreadable[row.first] = row.last
                        if len(report.messages) < max_messages:
                            report.messages.append(f"row {line}: {_unreadable_reason(row)}")
                    continue
                report.rows += 1
                if len(row) != len(header):
                    reject(
                        line,
                        RejectReason.BAD_ROW.value,
                        row,
                        f"has {len(row)} fields but the header has {len(header)}",
                    )
                    continue
                raw = row[phone_i].strip()
                if not raw:
                    reject(line, RejectReason.MISSING_NUMBER.value, row, "the phone column is empty")
                    continue
                found = normalize_number(raw, region)
                if found is None:
                    reject(line, RejectReason.INVALID_NUMBER.value, row, number_problem(raw, region))
                    continue
                e164 = found[0]
                if e164 in seen:
                    reject(
                        line,
                        RejectReason.DUPLICATE_IN_FILE.value,
                        row,
                        f"{mask_number(e164)} appears earlier in the file; give each lead once",
                    )
                    continue
                change = _change_of(e164, row, fields, extra_columns, now)
                if isinstance(change, str):
                    reject(line, RejectReason.BAD_VALUE.value, row, change)
                    continue
                seen.add(e164)
                batch.append((line, row, change))
                if len(batch) >= batch_size:
                    await flush()
            await flush()
            for first, raw_text in _raw_lines(source, encoding, unreadable):
                rejects.write(first, RejectReason.UNREADABLE.value, [raw_text])
        finally:
            rejects.close()
    report.rejects_path = str(rejects_file) if report.rejected_total else None
    report.seconds = time.perf_counter() - started
    return report


def _change_of(
    phone: str,
    row: list[str],
    fields: Mapping[str, int],
    extra_columns: list[tuple[int, str]],
    now: datetime,
) -> LeadChange | str:
    """The change a row asks for, or why it cannot be read."""
    values = {name: row[i].strip() for name, i in fields.items() if row[i].strip()}
    consent: bool | None = None
    if "consent" in values:
        folded = values["consent"].casefold()
        if folded not in _TRUE and folded not in _FALSE:
            return f"consent {values['consent']!r} is not yes/no/1/0"
        consent = folded in _TRUE
    given_at: datetime | None = None
    if "consent_given_at" in values:
        parsed = _parse_consent_time(values["consent_given_at"], now)
        if isinstance(parsed, str):
            return parsed
        if consent is False:
            return "consent says no but a consent date is given"
        consent, given_at = True, parsed
    zones: tuple[str, ...] | None = None
    if "timezone" in values:
        if not _known_zone(values["timezone"]):
            return f"time zone {values['timezone']!r} is not an IANA zone name such as Europe/Paris"
        zones = (values["timezone"],)
    priority: int | None = None
    if "priority" in values:
        try:
            priority = int(values["priority"])
        except ValueError:
            return f"priority {values['priority']!r} is not a whole number"
    source = values.get("consent_source")
    if source is not None and len(source) > 200:
        return "consent source is longer than 200 characters"
    extra = {h: row[i].strip() for i, h in extra_columns if row[i].strip()}
    return LeadChange(
        phone=phone,
        consent=consent,
        consent_given_at=given_at,
        consent_source=source,
        timezones=zones,
        first_name=values.get("first_name"),
        last_name=values.get("last_name"),
        email=values.get("email"),
        external_id=values.get("external_id"),
        priority=priority,
        extra=extra or None,
    )


__all__ = ["NOT_A_LEAD", "UpdateReport", "update_leads"]
