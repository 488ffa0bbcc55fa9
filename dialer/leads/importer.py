"""Lead import from CSV: any delimiter, UTF-8 / UTF-8-BOM / Windows-1252 (Latin-1), numbers to E.164.

Nothing is lost: every data row is either inserted as a lead or written to the
rejects file (its line number, the reason, then the original fields) and
counted by reason.  The file is streamed and inserted in batches, so a list of
millions of rows imports in bounded memory; the only thing that grows is the
set of numbers already seen (a Python int per number, for duplicate checks).

    report = await import_leads(db, "list.csv", campaign.id, "FR",
                                mapping={"phone": "Telephone"}, rejects_path="rejects.csv")
    print(report.summary())
"""

from __future__ import annotations

import asyncio
import codecs
import csv
import enum
import io
import itertools
import logging
import multiprocessing
import os
import time
import zoneinfo
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import UTC, datetime
from json.encoder import encode_basestring as encode_json_string
from pathlib import Path
from typing import IO, Any

from sqlalchemy.exc import SQLAlchemyError

from dialer.leads.numbers import (
    Normalized,
    RegionError,
    mask_numbers_in,
    normalize_many,
    normalize_number,
    normalize_region,
    number_problem,
)
from dialer.store.db import Database
from dialer.store.leads_repo import LeadAdmin, LeadInserter, RepairedList
from dialer.store.models import utcnow
from telephony.base import mask_number

log = logging.getLogger(__name__)

# Fields a lead has; the rest of a row's columns are kept as ``extra``.
LEAD_FIELDS = (
    "phone",
    "first_name",
    "last_name",
    "email",
    "external_id",
    "timezone",
    "consent",
    "consent_given_at",
    "consent_source",
    "priority",
)
# Header names recognised (case-insensitive) for a field when the mapping does not name its column.
FIELD_ALIASES: Mapping[str, tuple[str, ...]] = {
    "phone": (
        "phone",
        "phone_number",
        "telephone",
        "téléphone",
        "tel",
        "tél",
        "number",
        "numero",
        "numéro",
        "mobile",
        "msisdn",
    ),
    "first_name": ("first_name", "firstname", "first name", "given_name", "prenom", "prénom"),
    "last_name": ("last_name", "lastname", "last name", "surname", "family_name", "nom"),
    "email": ("email", "e-mail", "mail", "courriel"),
    "external_id": ("external_id", "customer_id", "id"),
    "timezone": ("timezone", "time_zone", "tz", "fuseau"),
    "consent": ("consent", "consentement", "opt_in", "optin"),
    "consent_given_at": (
        "consent_given_at",
        "consent_date",
        "consent_at",
        "date_consentement",
        "date consentement",
    ),
    "consent_source": ("consent_source", "source_consentement", "source consentement"),
    "priority": ("priority", "priorite", "priorité"),
}
_TRUE = frozenset({"1", "true", "yes", "y", "oui", "o", "x"})
_FALSE = frozenset({"0", "false", "no", "n", "non"})
_SCAN_CHUNK = 1 << 20
_POOL_MIN_BYTES = 4 << 20
# An import that has written nothing for this long says it is still alive (see LeadInserter).
_HEARTBEAT_S = 60.0
# The longest field a row may have (csv's own default limit); a longer one rejects its row.
FIELD_LIMIT = csv.field_size_limit()
DncCheck = Callable[[str], Awaitable[bool]]
Progress = Callable[["ImportProgress"], None]


class LeadImportError(Exception):
    """The file cannot be imported at all; the message names the problem and what to do."""


class RejectReason(enum.StrEnum):
    INVALID_NUMBER = "invalid_number"
    MISSING_NUMBER = "missing_number"
    DUPLICATE_IN_FILE = "duplicate_in_file"
    DUPLICATE_IN_CAMPAIGN = "duplicate_in_campaign"
    DO_NOT_CALL = "do_not_call"
    BAD_ROW = "bad_row"  # not as many fields as the header
    BAD_VALUE = "bad_value"  # a mapped field (timezone, consent, priority) cannot be read
    UNREADABLE = "unreadable_row"  # not CSV the reader can split (a field of megabytes, a stray quote)


@dataclass(frozen=True, slots=True)
class ImportProgress:
    rows: int
    bytes_read: int
    total_bytes: int


@dataclass(slots=True)
class ImportReport:
    source: str
    lead_list_id: int
    encoding: str
    delimiter: str
    rows: int = 0  # data rows read (blank lines not counted)
    imported: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    blank_lines: int = 0
    without_timezone: int = (
        0  # imported, but no zone could be derived: the compliance gate will not dial them
    )
    rejects_path: str | None = None
    messages: list[str] = field(default_factory=list)  # the first rejections, in operator's words
    seconds: float = 0.0
    # Lists of this campaign left `importing` by an import that was killed, repaired before this one.
    repaired: list[RepairedList] = field(default_factory=list)

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    def summary(self) -> str:
        parts = [
            f"{self.imported} leads imported from {self.source} "
            f"({self.encoding}, delimiter {self.delimiter!r})"
        ]
        if self.rejected_total:
            reasons = ", ".join(
                f"{n} {reason.replace('_', ' ')}" for reason, n in sorted(self.rejected.items())
            )
            parts.append(f"{self.rejected_total} rows rejected ({reasons}), written to {self.rejects_path}")
        else:
            parts.append("no row rejected")
        if self.without_timezone:
            parts.append(
                f"{self.without_timezone} leads have no known time zone "
                "and will not be dialed until one is set"
            )
        return "; ".join(parts)


# ---------------------------------------------------------------------------
# Encoding and dialect


def _line_of(path: Path, offset: int) -> int:
    line = 1
    with path.open("rb") as f:
        remaining = offset
        while remaining > 0:
            chunk = f.read(min(remaining, _SCAN_CHUNK))
            if not chunk:
                break
            line += chunk.count(b"\n")
            remaining -= len(chunk)
    return line


def detect_encoding(path: Path) -> str:
    """UTF-8 (with or without BOM) when the whole file decodes as UTF-8, else Windows-1252 / Latin-1.

    A file that mixes UTF-8 text and other bytes is refused: guessing would
    garble names silently.
    """
    with path.open("rb") as f:
        head = f.read(4)
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or b"\x00" in head:
            raise LeadImportError(
                f"{path} is UTF-16 or a binary file (a spreadsheet?); "
                "export it as 'CSV UTF-8' and import that"
            )
        f.seek(0)
        decoder = codecs.getincrementaldecoder("utf-8")()
        offset = 0
        non_ascii_ok = False
        cp1252_ok = True
        while True:
            chunk = f.read(_SCAN_CHUNK)
            if not chunk:
                break
            if b"\x00" in chunk:
                nul_line = _line_of(path, offset + chunk.index(b"\x00"))
                raise LeadImportError(
                    f"{path} contains NUL bytes near line {nul_line}: it is not a text CSV; "
                    "export it as 'CSV UTF-8' and import that"
                )
            if cp1252_ok and not chunk.isascii():
                try:
                    chunk.decode("cp1252")
                except UnicodeDecodeError:
                    cp1252_ok = False
            try:
                decoder.decode(chunk)
                if not chunk.isascii():
                    non_ascii_ok = True
            except UnicodeDecodeError as exc:
                bad_offset = offset + exc.start
                line = _line_of(path, bad_offset)
                if non_ascii_ok or _has_utf8_sequence(chunk[: exc.start]):
                    raise LeadImportError(
                        f"{path} mixes encodings: it has UTF-8 text, but byte "
                        f"0x{chunk[exc.start]:02X} at line {line} is not UTF-8; re-save the whole file as "
                        "'CSV UTF-8', or pass --encoding if you know its encoding"
                    ) from None
                return "cp1252" if cp1252_ok and _cp1252_rest_ok(f) else "latin-1"
            offset += len(chunk)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return "cp1252" if cp1252_ok else "latin-1"
    return "utf-8-sig" if head.startswith(codecs.BOM_UTF8) else "utf-8"


def _has_utf8_sequence(data: bytes) -> bool:
    return not data.isascii()


def _cp1252_rest_ok(f: IO[bytes]) -> bool:
    while chunk := f.read(_SCAN_CHUNK):
        try:
            chunk.decode("cp1252")
        except UnicodeDecodeError:
            return False
    return True


def sniff_delimiter(sample: str) -> str:
    """The delimiter of a CSV sample: csv.Sniffer, else the most frequent of , ; tab | in the header line."""
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        first = sample.splitlines()[0] if sample else ""
        counts = {d: first.count(d) for d in ",;\t|"}
        best = max(counts, key=lambda d: counts[d])
        return best if counts[best] else ","


_all_zones: frozenset[str] | None = None


def _known_zone(name: str) -> bool:
    global _all_zones
    if _all_zones is None:
        _all_zones = frozenset(zoneinfo.available_timezones())
    return name in _all_zones


# ---------------------------------------------------------------------------
# Header mapping


def parse_mapping(text: str) -> dict[str, str]:
    """``phone=Telephone,first_name=Prenom`` -> ``{"phone": "Telephone", "first_name": "Prenom"}``."""
    mapping: dict[str, str] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, sep, column = part.partition("=")
        if not sep or not name.strip() or not column.strip():
            raise LeadImportError(f"mapping {part!r} is not FIELD=COLUMN, e.g. phone=Telephone")
        mapping[name.strip()] = column.strip()
    return mapping


def no_header_names(width: int) -> list[str]:
    """Column names of a file without a header line: ``column 1``, ``column 2``, ..."""
    return [f"column {i}" for i in range(1, width + 1)]


def _numbers_in(header: list[str], region: str) -> list[int]:
    """Positions (from 1) of the header cells that are valid phone numbers: the line is data."""
    return [i for i, cell in enumerate(header, 1) if cell and normalize_number(cell, region) is not None]


def resolve_columns(
    header: list[str],
    mapping: Mapping[str, str],
    source: str,
    region: str | None = None,
    *,
    no_header: bool = False,
) -> dict[str, int]:
    """Column index of each lead field: the mapping first, then the usual header names (FIELD_ALIASES).

    Without a header line (``no_header``) columns are named by position:
    ``--map phone=2`` or ``phone="column 2"``.  With a header line that holds
    phone numbers, the file has no header: the error says to pass --no-header
    (taking that line as names would lose its lead).
    """
    unknown = sorted(set(mapping) - set(LEAD_FIELDS))
    if unknown:
        raise LeadImportError(
            f"unknown lead field(s) in the mapping: {', '.join(unknown)}; "
            f"fields are: {', '.join(LEAD_FIELDS)}"
        )
    by_name = {h.strip().casefold(): i for i, h in enumerate(header)}
    if no_header:
        by_name.update({str(i): i - 1 for i in range(1, len(header) + 1)})
    shown = ", ".join(repr(h) for h in header)
    in_data = _numbers_in(header, region) if region is not None and not no_header else []
    no_header_hint = (
        f"the first line of {source} looks like a lead, not column names (column "
        f"{in_data[0] if in_data else 1} holds a phone number): import it with --no-header and name "
        f"columns by position, e.g. --no-header --map phone={in_data[0] if in_data else 1}"
    )
    columns: dict[str, int] = {}
    for name, column in mapping.items():
        index = by_name.get(column.strip().casefold())
        if index is not None and in_data and index + 1 in in_data:
            raise LeadImportError(no_header_hint)
        if index is None:
            if no_header:
                raise LeadImportError(
                    f"column {column!r} (mapped to {name}) is not a column of {source}: without a header "
                    f"line, columns are numbered 1 to {len(header)}; e.g. --map {name}=1"
                )
            if in_data:
                raise LeadImportError(no_header_hint)
            raise LeadImportError(
                f"column {column!r} (mapped to {name}) is not in the header of {source}; "
                f"the header has: {shown}; fix the mapping, e.g. --map {name}=<column>"
            )
        columns[name] = index
    taken = set(columns.values())
    for name in LEAD_FIELDS:
        if name in columns:
            continue
        for alias in FIELD_ALIASES[name]:
            index = by_name.get(alias)
            if index is not None and index not in taken:
                columns[name] = index
                taken.add(index)
                break
    if "phone" not in columns:
        if no_header:
            raise LeadImportError(
                f"{source} has no header line, so say which column holds the number by its position, "
                f"from 1 to {len(header)}: e.g. --no-header --map phone=1"
            )
        if in_data:
            raise LeadImportError(no_header_hint)
        raise LeadImportError(
            f"no phone column in {source}: the header has: {shown}; "
            "say which column holds the number with --map phone=<column name> "
            "(a file without a header line: --no-header --map phone=<column number>)"
        )
    return columns


# ---------------------------------------------------------------------------
# The import


class _Rejects:
    """The rejects CSV, opened at the first rejected row."""

    def __init__(self, path: Path, header: list[str]) -> None:
        self.path = path
        self._header = header
        self._file: IO[str] | None = None
        self._writer: Any = None

    def write(self, line: int, reason: str, row: list[str]) -> None:
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("w", encoding="utf-8", newline="")
            self._writer = csv.writer(self._file)
            self._writer.writerow(["line", "reason", *self._header])
        self._writer.writerow([line, reason, *row])

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


class _Unreadable(list[str]):
    """A record the csv reader could not split: the lines it spans and the reader's complaint.

    An empty list, so the import's hot loop meets it only on its rare path (a blank-looking row).
    Its raw text is read again from the file at the end of the import, for the rejects file.
    """

    def __init__(self, first: int, last: int, error: str) -> None:
        super().__init__()
        self.first = first
        self.last = last
        self.error = error


def _records(reader: Iterator[list[str]], line_of: Callable[[], int]) -> Iterator[tuple[int, list[str]]]:
    """Rows with the line each starts on (a quoted field may span lines).

    A record the reader cannot split (a field longer than FIELD_LIMIT) comes
    as an :class:`_Unreadable`; reading goes on with the next line.
    """
    start = line_of() + 1
    while True:
        try:
            for row in reader:
                yield start, row
                start = line_of() + 1
            return
        except csv.Error as exc:
            yield start, _Unreadable(start, max(start, line_of()), str(exc))
            start = line_of() + 1


def _unreadable_reason(row: _Unreadable) -> str:
    if "field larger than field limit" in row.error:
        return (
            f"has a field longer than {FIELD_LIMIT:,} characters (a quote left open, or not a lead list?); "
            "its raw text goes to the rejects file"
        )
    return f"cannot be read as CSV ({row.error}); its raw text goes to the rejects file"


def _raw_lines(source: Path, encoding: str, spans: Mapping[int, int]) -> Iterator[tuple[int, str]]:
    """The raw text of each span of lines ``first -> last`` of the file, as the csv reader split them."""
    pending = sorted(spans.items())
    if not pending:
        return
    index = 0
    parts: list[str] = []
    with source.open(encoding=encoding, newline="") as text:
        for number, line in enumerate(text, 1):
            first, last = pending[index]
            if number < first:
                continue
            parts.append(line)
            if number >= last:
                yield first, "".join(parts).rstrip("\r\n")
                parts = []
                index += 1
                if index == len(pending):
                    return


@dataclass(slots=True)
class _Table:
    """An open CSV file past its header: the columns, and the data rows with their lines."""

    header: list[str]
    columns: dict[str, int]
    delimiter: str
    records: Iterator[tuple[int, list[str]]]


def _open_table(
    text: io.TextIOWrapper,
    source: Path,
    mapping: Mapping[str, str],
    region: str,
    no_header: bool,
) -> _Table:
    sample = text.read(64 * 1024)
    if not sample.strip():
        raise LeadImportError(f"{source} is empty; it needs a header line and one lead per line")
    text.seek(0)
    delimiter = sniff_delimiter(sample.lstrip("\ufeff"))
    reader = csv.reader(text, delimiter=delimiter)
    header: list[str] = []
    first: tuple[int, list[str]] | None = None
    start = 1
    try:
        for row in reader:
            if any(cell.strip() for cell in row):
                if no_header:
                    first = (start, row)
                    header = no_header_names(len(row))
                else:
                    header = [cell.strip().lstrip("\ufeff") for cell in row]
                break
            start = reader.line_num + 1
    except csv.Error as exc:
        raise LeadImportError(
            f"the first line of {source} cannot be read as CSV ({exc}); is it a CSV file?"
        ) from None
    if not header:
        raise LeadImportError(f"{source} has no header line; the first line must name the columns")
    if first is not None and first[1] and first[1][0].startswith("\ufeff"):
        first[1][0] = first[1][0].lstrip("\ufeff")
    columns = resolve_columns(header, mapping, str(source), region, no_header=no_header)
    records = _records(reader, lambda: reader.line_num)
    if first is not None:
        records = itertools.chain([first], records)
    return _Table(header, columns, delimiter, records)


def _parse_consent(value: str) -> bool | None:
    """yes/no/1/0 (and French oui/non) -> bool; None when the value is not one of them."""
    folded = value.casefold()
    if folded in _TRUE:
        return True
    if folded in _FALSE:
        return False
    return None


def _parse_consent_time(value: str, now: datetime) -> datetime | str:
    """A consent date (ISO, UTC unless it names a zone), or the reason it cannot be one."""
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return f"consent date {value!r} is not a date; write it as 2026-03-01 or 2026-03-01T14:30"
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    if when > now:
        return f"consent date {value!r} is in the future"
    return when


def _workers_for(source: Path, workers: int | None) -> int:
    if workers is not None:
        return max(0, workers)
    if source.stat().st_size < _POOL_MIN_BYTES:
        return 0  # starting processes costs more than parsing a small file
    # Parsing is a fifth of an import's work since most numbers take the fast
    # path; the importing process and the database driver's thread keep two
    # cores busy, so worker processes only pay on the cores left over.
    return max(0, min(4, (os.cpu_count() or 1) - 2))


def _extra_encoder(columns: list[tuple[int, str]]) -> Callable[[list[str]], str | None]:
    """The row's non-empty unmapped columns as a JSON object, or None when there are none.

    Exactly ``json.dumps({header: value, ...}, ensure_ascii=False)``, built
    from the keys encoded once: ``json.dumps`` makes a new encoder on every
    call with non-default options, a tenth of the import's time.
    """
    keys = [(i, encode_json_string(h) + ": ") for i, h in columns]

    def encode(row: list[str]) -> str | None:
        parts = [key + encode_json_string(row[i]) for i, key in keys if row[i]]
        return "{" + ", ".join(parts) + "}" if parts else None

    return encode


def _check_source(source: Path) -> Path:
    if not source.is_file():
        raise LeadImportError(f"{source} does not exist or is not a file; give the path of a CSV file")
    return source


def _size_and_path(source: Path) -> tuple[int, str]:
    return source.stat().st_size, str(source.resolve())


def _mask(e164: str) -> str:
    return mask_number(e164)


def check_encoding(encoding: str) -> None:
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise LeadImportError(
            f"encoding {encoding!r} is unknown; use utf-8, utf-8-sig, cp1252 or latin-1"
        ) from None


def database_failure(exc: BaseException) -> str:
    """A database error in the operator's words, without the numbers the driver puts in it."""
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    first = text[0] if text else exc.__class__.__name__
    return f"the database refused the import ({exc.__class__.__name__}: {mask_numbers_in(first)})"


async def import_leads(
    db: Database,
    path: str | Path,
    campaign_id: int,
    default_country: str,
    mapping: Mapping[str, str] | None = None,
    rejects_path: str | Path | None = None,
    dnc_check: DncCheck | None = None,
    progress: Progress | None = None,
    *,
    encoding: str | None = None,
    list_name: str | None = None,
    no_header: bool = False,
    batch_size: int = 20000,
    max_messages: int = 20,
    workers: int | None = 0,
    actor: str = "system",
) -> ImportReport:
    """Import a CSV file of leads into a campaign; see the module docstring.

    ``mapping`` maps lead fields to column names (``{"phone": "Telephone"}``);
    unmapped columns named like a field are taken as that field, the others
    kept in the lead's ``extra``.  ``no_header``: the first line is a lead, and
    columns are named by position (``{"phone": "2"}``).  ``dnc_check(e164)``
    returning True rejects the row as do-not-call.  ``workers``: processes that
    parse numbers next to the import (0: none; None: one per core beyond two,
    for files over a few MB).  Worker processes are spawned, so they re-import
    the main module: a script that asks for them must guard its entry point
    with ``if __name__ == "__main__"``.

    Imports into one campaign may run at the same time: a number that the
    other import inserted first is rejected here as a duplicate.  Lists of the
    campaign left ``importing`` by a killed import are repaired first
    (``report.repaired``).  Raises :class:`LeadImportError` when the file as
    a whole cannot be read (encoding, no header, missing column) or the
    database refuses it; the message never holds a full number.
    """
    started = time.perf_counter()
    source = _check_source(Path(path))
    try:
        region = normalize_region(default_country)
    except RegionError as exc:
        raise LeadImportError(str(exc)) from None
    await db.campaigns.get(campaign_id)  # NotFound with a clear message
    rejects_file = Path(rejects_path) if rejects_path else source.with_name(source.stem + ".rejects.csv")
    if encoding is None:
        encoding = await asyncio.to_thread(detect_encoding, source)
    else:
        check_encoding(encoding)
    repaired = await LeadAdmin(db).repair_interrupted_imports(campaign_id, actor=actor)
    for lost in repaired:
        log.warning(
            "lead list %s (%s) was left importing by an import that stopped (last seen %s); "
            "marked interrupted with its %s leads",
            lost.id,
            lost.name,
            lost.last_seen.isoformat(timespec="seconds"),
            lost.leads,
        )
    state = _ImportState()
    try:
        report = await _run(
            db,
            source,
            campaign_id,
            region,
            encoding,
            mapping or {},
            rejects_file,
            dnc_check,
            progress,
            list_name,
            no_header,
            batch_size,
            max_messages,
            _workers_for(source, workers),
            state,
        )
    except BaseException as exc:
        if state.pending is not None:
            # Let the batch in flight finish: its rows are counted as imported.
            try:
                skipped = await state.pending
                if state.report is not None:
                    state.report.imported += state.pending_rows - len(skipped)
                    if skipped:
                        state.report.rejected[RejectReason.DUPLICATE_IN_CAMPAIGN.value] += len(skipped)
            except Exception as late:
                log.error("the last batch of %s could not be inserted: %s", source, database_failure(late))
        failure = database_failure(exc) if isinstance(exc, SQLAlchemyError) else None
        if state.report is not None:
            await db.leads.finish_list(
                state.report.lead_list_id,
                imported=state.report.imported,
                rejected=state.report.rejected_total,
                status="failed",
                actor=actor,
                detail={"error": failure or mask_numbers_in(str(exc)) or exc.__class__.__name__},
            )
            done = (
                f"; {state.report.imported} leads were imported before the error (lead list "
                f"{state.report.lead_list_id}) and {state.report.rejected_total} rows written to "
                f"{rejects_file}: importing the file again rejects those already imported as duplicates"
            )
        else:
            done = ""
        if isinstance(exc, UnicodeDecodeError):
            raise LeadImportError(
                f"{source} is not valid {encoding}: byte 0x{exc.object[exc.start]:02X} near line "
                f"{state.line}; re-save it as 'CSV UTF-8' or pass the right --encoding{done}"
            ) from None
        if failure is not None:
            raise LeadImportError(
                f"{failure} near line {state.line} of {source}{done}; check that the database is "
                "reachable and migrated (`dialer migrate`), then import again"
            ) from None
        if isinstance(exc, LeadImportError) and done:
            raise LeadImportError(f"{exc}{done}") from None
        raise
    report.repaired = repaired
    report.rejects_path = str(rejects_file) if report.rejected_total else None
    report.seconds = time.perf_counter() - started
    await db.leads.finish_list(
        report.lead_list_id,
        imported=report.imported,
        rejected=report.rejected_total,
        status="complete",
        actor=actor,
        detail={"rejected_by_reason": dict(report.rejected), "source": str(source), "encoding": encoding},
    )
    return report


@dataclass(slots=True)
class _ImportState:
    """What an interrupted import has done so far, for its error message and its lead-list record."""

    report: ImportReport | None = None
    pending: asyncio.Task[set[str]] | None = None
    pending_rows: int = 0
    line: int = 0


async def _run(
    db: Database,
    source: Path,
    campaign_id: int,
    region: str,
    encoding: str,
    mapping: Mapping[str, str],
    rejects_file: Path,
    dnc_check: DncCheck | None,
    progress: Progress | None,
    list_name: str | None,
    no_header: bool,
    batch_size: int,
    max_messages: int,
    workers: int,
    state: _ImportState,
) -> ImportReport:
    total_bytes, resolved = _size_and_path(source)
    raw = source.open("rb")
    text = io.TextIOWrapper(raw, encoding=encoding, newline="")
    rejects: _Rejects | None = None
    pool: ProcessPoolExecutor | None = None
    try:
        table = _open_table(text, source, mapping, region, no_header)
        header, columns, delimiter = table.header, table.columns, table.delimiter
        extra_columns = [(i, h) for i, h in enumerate(header) if i not in columns.values() and h]
        rejects = _Rejects(rejects_file, header)

        lead_list_id = await db.leads.create_list(campaign_id, list_name or source.name, resolved, region)
        report = ImportReport(
            source=str(source), lead_list_id=lead_list_id, encoding=encoding, delimiter=delimiter
        )
        state.report = report
        seen: set[int] = set()
        in_campaign: set[int] = set()
        async for phone in db.leads.numbers_of_campaign(campaign_id):
            in_campaign.add(int(phone[1:]))

        now = utcnow()
        writer = LeadInserter(db, campaign_id, lead_list_id, now)
        await writer.claim()
        width = len(header)
        phone_i = columns["phone"]
        tz_i = columns.get("timezone")
        consent_i = columns.get("consent")
        consent_at_i = columns.get("consent_given_at")
        consent_source_i = columns.get("consent_source")
        priority_i = columns.get("priority")
        first_i, last_i, email_i, external_i = (
            columns.get(name) for name in ("first_name", "last_name", "email", "external_id")
        )
        batch: list[tuple[Any, ...]] = []
        lines_of_batch: list[int] = []
        pending_lines: list[int] = []
        # Rows another import inserted first, by line: written to the rejects file at the end.
        late_duplicates: set[int] = set()
        # Records the reader could not split: first line -> last line, written at the end.
        unreadable: dict[int, int] = {}
        rejects_name = rejects_file.name
        last_write = time.monotonic()

        def reject(line: int, reason: RejectReason, row: list[str], message: str) -> None:
            assert rejects is not None
            report.rejected[reason.value] += 1
            rejects.write(line, reason.value, row)
            if len(report.messages) < max_messages:
                report.messages.append(
                    f"lead row {line}: {message}; the row was skipped and written to {rejects_name}"
                )

        pending_batch: list[tuple[Any, ...]] = []

        async def flush() -> None:
            nonlocal batch, lines_of_batch, pending_batch, pending_lines, last_write
            if state.pending is not None:
                skipped = await state.pending
                state.pending = None
                report.imported += state.pending_rows - len(skipped)
                if skipped:
                    for line, values in zip(pending_lines, pending_batch, strict=True):
                        if values[LeadInserter.PHONE] in skipped:
                            late_duplicates.add(line)
                    report.rejected[RejectReason.DUPLICATE_IN_CAMPAIGN.value] += len(skipped)
            if batch:
                # Insert this batch while the next rows are read: the driver works in its own thread.
                state.pending = asyncio.create_task(writer.insert(batch))
                state.pending_rows = len(batch)
                pending_batch = batch
                pending_lines = lines_of_batch
                batch, lines_of_batch = [], []
                last_write = time.monotonic()

        def text_of(row: list[str], index: int | None) -> str | None:
            return (row[index].strip() or None) if index is not None else None

        extra_of = _extra_encoder(extra_columns)
        make_row = writer.row
        remember = seen.add
        keep_line = lines_of_batch.append
        if workers > 0:
            pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
        chunks = _normalized_chunks(table.records, phone_i, width, region, pool, workers)
        async for chunk, results in chunks:
            for (line, row), normalized in zip(chunk, results, strict=True):
                state.line = line
                if not "".join(row).strip():  # an empty line, or only delimiters
                    if isinstance(row, _Unreadable):
                        report.rows += 1
                        report.rejected[RejectReason.UNREADABLE.value] += 1
                        unreadable[row.first] = row.last
                        if len(report.messages) < max_messages:
                            report.messages.append(
                                f"lead row {line}: {_unreadable_reason(row)}; the row was skipped and "
                                f"written to {rejects_name}"
                            )
                    else:
                        report.blank_lines += 1
                    continue
                report.rows += 1
                if len(row) != width:
                    reject(
                        line,
                        RejectReason.BAD_ROW,
                        row,
                        f"has {len(row)} fields but the header has {width} (a stray {delimiter!r} or quote?)",
                    )
                    continue
                raw_number = row[phone_i].strip()
                if not raw_number:
                    reject(
                        line,
                        RejectReason.MISSING_NUMBER,
                        row,
                        f"the phone column {header[phone_i]!r} is empty",
                    )
                    continue
                if normalized is None:
                    reject(line, RejectReason.INVALID_NUMBER, row, number_problem(raw_number, region))
                    continue
                e164, zones = normalized
                key = int(e164[1:])
                if key in seen:
                    reject(
                        line,
                        RejectReason.DUPLICATE_IN_FILE,
                        row,
                        f"{_mask(e164)} appears earlier in the file",
                    )
                    continue
                if key in in_campaign:
                    reject(
                        line,
                        RejectReason.DUPLICATE_IN_CAMPAIGN,
                        row,
                        f"{_mask(e164)} is already a lead of this campaign "
                        "(to change it, use `dialer leads update`)",
                    )
                    continue
                if dnc_check is not None and await dnc_check(e164):
                    reject(line, RejectReason.DO_NOT_CALL, row, f"{_mask(e164)} is on a do-not-call list")
                    continue
                tz_source = "number"
                if tz_i is not None and row[tz_i].strip():
                    zone = row[tz_i].strip()
                    if not _known_zone(zone):
                        reject(
                            line,
                            RejectReason.BAD_VALUE,
                            row,
                            f"time zone {zone!r} is not an IANA zone name such as Europe/Paris",
                        )
                        continue
                    zones = (zone,)
                    tz_source = "column"
                consent: bool | None = None
                if consent_i is not None and row[consent_i].strip():
                    value = row[consent_i].strip().casefold()
                    if value in _TRUE:
                        consent = True
                    elif value in _FALSE:
                        consent = False
                    else:
                        reject(
                            line, RejectReason.BAD_VALUE, row, f"consent {row[consent_i]!r} is not yes/no/1/0"
                        )
                        continue
                consent_at: datetime | None = None
                if consent_at_i is not None and row[consent_at_i].strip():
                    parsed = _parse_consent_time(row[consent_at_i].strip(), now)
                    if isinstance(parsed, str):
                        reject(line, RejectReason.BAD_VALUE, row, parsed)
                        continue
                    if consent is False:
                        reject(
                            line, RejectReason.BAD_VALUE, row, "consent says no but a consent date is given"
                        )
                        continue
                    consent, consent_at = True, parsed
                consent_source = text_of(row, consent_source_i) if consent_source_i is not None else None
                if consent_source is not None and len(consent_source) > 200:
                    reject(line, RejectReason.BAD_VALUE, row, "consent source is longer than 200 characters")
                    continue
                priority = 0
                if priority_i is not None and row[priority_i].strip():
                    try:
                        priority = int(row[priority_i])
                    except ValueError:
                        reject(
                            line,
                            RejectReason.BAD_VALUE,
                            row,
                            f"priority {row[priority_i]!r} is not a whole number",
                        )
                        continue
                if not zones:
                    report.without_timezone += 1
                remember(key)
                batch.append(
                    make_row(
                        e164,
                        zones,
                        tz_source,
                        consent,
                        consent_at,
                        consent_source,
                        priority,
                        text_of(row, first_i),
                        text_of(row, last_i),
                        text_of(row, email_i),
                        text_of(row, external_i),
                        extra_of(row),
                    )
                )
                keep_line(line)
                if len(batch) >= batch_size:
                    await flush()
                    keep_line = lines_of_batch.append
            if progress is not None:
                progress(ImportProgress(report.rows, raw.tell(), total_bytes))
            if time.monotonic() - last_write > _HEARTBEAT_S:
                await writer.heartbeat()
                last_write = time.monotonic()
        await flush()
        await flush()
        for first, raw_text in _raw_lines(source, encoding, unreadable):
            rejects.write(first, RejectReason.UNREADABLE.value, [raw_text])
        if late_duplicates:
            _write_late_duplicates(source, encoding, mapping, region, no_header, late_duplicates, rejects)
            if len(report.messages) < max_messages:
                report.messages.append(
                    f"{len(late_duplicates)} rows were imported meanwhile by another import into this "
                    f"campaign; they were skipped as duplicates and written to {rejects_name}"
                )
        if progress is not None:
            progress(ImportProgress(report.rows, total_bytes, total_bytes))
        if pool is not None:
            pool.shutdown(wait=True)  # idle by now: they exit at once
            pool = None
        return report
    finally:
        text.close()
        if rejects is not None:
            rejects.close()
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


def _write_late_duplicates(
    source: Path,
    encoding: str,
    mapping: Mapping[str, str],
    region: str,
    no_header: bool,
    lines: set[int],
    rejects: _Rejects,
) -> None:
    """Write the rows of ``lines`` to the rejects file: numbers another import inserted first."""
    with source.open(encoding=encoding, newline="") as text:
        table = _open_table(text, source, mapping, region, no_header)
        for line, row in table.records:
            if line in lines:
                rejects.write(line, RejectReason.DUPLICATE_IN_CAMPAIGN.value, row)


_Chunk = list[tuple[int, list[str]]]


async def _normalized_chunks(
    records: Iterator[tuple[int, list[str]]],
    phone_i: int,
    width: int,
    region: str,
    pool: ProcessPoolExecutor | None,
    workers: int,
    chunk_size: int = 2000,
) -> AsyncIterator[tuple[_Chunk, list[Normalized | None]]]:
    """Rows in file order, by chunks, each with its normalized numbers.

    With a pool, a few chunks are parsed ahead in worker processes while this
    process checks and inserts the previous ones; the look-ahead is bounded, so
    memory is too.
    """

    def raws(chunk: _Chunk) -> list[str]:
        return [row[phone_i].strip() if len(row) == width else "" for _, row in chunk]

    loop = asyncio.get_running_loop()
    ahead: deque[tuple[_Chunk, asyncio.Future[list[Normalized | None]]]] = deque()
    depth = 2 * workers
    broken = False

    async def result_of(
        chunk: _Chunk, future: asyncio.Future[list[Normalized | None]]
    ) -> list[Normalized | None]:
        nonlocal broken
        try:
            return await future
        except BrokenProcessPool:
            # A worker died (killed, out of memory, a main module that cannot be
            # re-imported): parse here instead, the import goes on.
            if not broken:
                log.warning("number parsing processes stopped; parsing in the importing process instead")
            broken = True
            return normalize_many(raws(chunk), region)

    while True:
        chunk = list(itertools.islice(records, chunk_size))
        if not chunk:
            break
        if pool is None or broken:
            while ahead:
                done, future = ahead.popleft()
                yield done, await result_of(done, future)
            yield chunk, normalize_many(raws(chunk), region)
            continue
        ahead.append((chunk, loop.run_in_executor(pool, normalize_many, raws(chunk), region)))
        if len(ahead) > depth:
            done, future = ahead.popleft()
            yield done, await result_of(done, future)
    while ahead:
        done, future = ahead.popleft()
        yield done, await result_of(done, future)


__all__ = [
    "LEAD_FIELDS",
    "DncCheck",
    "ImportProgress",
    "ImportReport",
    "LeadImportError",
    "RejectReason",
    "detect_encoding",
    "import_leads",
    "parse_mapping",
]
