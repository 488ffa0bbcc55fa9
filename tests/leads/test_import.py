"""Lead import: every row ends up as a lead or in the rejects file, with a reason the operator reads."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import timezone as pn_timezone

from dialer.domain.campaign import LeadStatus
from dialer.leads.exporter import export_leads
from dialer.leads.importer import (
    ImportProgress,
    LeadImportError,
    _extra_encoder,
    detect_encoding,
    import_leads,
    parse_mapping,
    sniff_delimiter,
)
from dialer.leads.numbers import (
    _MAX_NSN,
    _MIN_NSN,
    NOT_VALID,
    _international_fast,
    _RegionRules,
    normalize_number,
)
from dialer.store.db import Database
from dialer.store.repositories import CampaignRecord

MALFORMED = (
    "Telephone;Prenom;Nom;Consentement\n"  # line 1
    "01 23 45 67 89;Léa;Martin;oui\n"  # 2 ok
    "+33 1 23;Hugo;Bernard;\n"  # 3 invalid number
    "0123456789;Léa;Martin;non\n"  # 4 duplicate of line 2
    "\n"  # 5 blank: not a row
    "06 12 34 56 78;Chloé;Dubois\n"  # 6 missing field
    ";Inès;Thomas;oui\n"  # 7 no number
    "0033 6 12 34 56 79;Noé;Robert;peut-être\n"  # 8 bad consent
    '"06 12 34 56 80";"Zoé\nde Paris";Petit;1\n'  # 9-10 quoted field across lines: ok
    "+44 20 7946 0958;Maël;Richard;0\n"  # 11 UK number: ok
    "n/a;Anaïs;Durand;\n"  # 12 not a number
)


def write(tmp_path: Path, text: str, encoding: str = "utf-8", name: str = "leads.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def read_rejects(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


async def test_malformed_latin1_file_loses_nothing(
    db: Database, campaign: CampaignRecord, tmp_path: Path
) -> None:
    source = write(tmp_path, MALFORMED, "cp1252")
    rejects = tmp_path / "rejects.csv"
    report = await import_leads(db, source, campaign.id, "FR", {"phone": "Telephone"}, rejects)

    assert report.encoding == "cp1252" and report.delimiter == ";"
    assert report.rows == 9 and report.blank_lines == 1
    assert report.imported == 3
    assert dict(report.rejected) == {
        "invalid_number": 2,
        "duplicate_in_file": 1,
        "bad_row": 1,
        "missing_number": 1,
        "bad_value": 1,
    }
    assert report.imported + report.rejected_total == report.rows
    rows = read_rejects(rejects)
    assert [(r["line"], r["reason"]) for r in rows] == [
        ("3", "invalid_number"),
        ("4", "duplicate_in_file"),
        ("6", "bad_row"),
        ("7", "missing_number"),
        ("8", "bad_value"),
        ("12", "invalid_number"),
    ]
    assert rows[0]["Telephone"] == "+33 1 23" and rows[0]["Prenom"] == "Hugo"  # the original row, decoded
    assert report.messages[0] == (
        "lead row 3: '+33 1 23' is not a valid number for FR; the row was skipped and written to rejects.csv"
    )
    assert any("has 3 fields but the header has 4" in m for m in report.messages)

    leads = {lead.phone: lead async for lead in db.leads.iter_leads(campaign.id)}
    assert set(leads) == {"+33123456789", "+33612345680", "+442079460958"}
    lea = leads["+33123456789"]
    assert (lea.first_name, lea.last_name, lea.consent, lea.status) == ("Léa", "Martin", True, LeadStatus.NEW)
    assert lea.timezones == ("Europe/Paris",) and lea.timezone_source == "number"
    assert leads["+33612345680"].first_name == "Zoé\nde Paris"
    assert leads["+442079460958"].timezones == ("Europe/London",) and leads["+442079460958"].consent is False


async def test_second_import_rejects_numbers_already_in_campaign(
    db: Database, campaign: CampaignRecord, tmp_path: Path
) -> None:
    first = write(tmp_path, "phone,name\n0123456789,a\n0612345678,b\n", name="a.csv")
    second = write(tmp_path, "phone,name\n01 23 45 67 89,c\n0712345600,d\n0698765432,e\n", name="b.csv")
    await import_leads(db, first, campaign.id, "FR")
    report = await import_leads(db, second, campaign.id, "FR", rejects_path=tmp_path / "r.csv")
    assert report.imported == 1
    assert dict(report.rejected) == {"duplicate_in_campaign": 1, "invalid_number": 1}
    assert "is already a lead of this campaign" in report.messages[0]
    assert "+33123456789" not in report.messages[0]  # numbers in messages are masked
    assert sum((await db.leads.count_by_status(campaign.id)).values()) == 3


async def test_dnc_checker_rejects_listed_numbers(
    db: Database, campaign: CampaignRecord, tmp_path: Path
) -> None:
    source = write(tmp_path, "phone\n0123456789\n0612345678\n")
    asked: list[str] = []

    async def on_dnc(number: str) -> bool:
        asked.append(number)
        return number == "+33612345678"

    report = await import_leads(
        db, source, campaign.id, "FR", dnc_check=on_dnc, rejects_path=tmp_path / "r.csv"
    )
    assert asked == ["+33123456789", "+33612345678"]
    assert report.imported == 1 and dict(report.rejected) == {"do_not_call": 1}
    assert read_rejects(tmp_path / "r.csv")[0]["reason"] == "do_not_call"


async def test_missing_mapped_column_names_column_and_fix(
    db: Database, campaign: CampaignRecord, tmp_path: Path
) -> None:
    source = write(tmp_path, "Tel;Prenom\n0123456789;Léa\n")
    with pytest.raises(LeadImportError) as caught:
        await import_leads(db, source, campaign.id, "FR", {"phone": "Telephone"})
    message = str(caught.value)
    assert "column 'Telephone' (mapped to phone) is not in the header" in message
    assert "'Tel', 'Prenom'" in message and "--map phone=<column>" in message
    assert await db.leads.count_by_status(campaign.id) == {}


async def test_file_without_phone_column_says_how_to_map(
    db: Database, campaign: CampaignRecord, tmp_path: Path
) -> None:
    source = write(tmp_path, "Client,Ville\nLéa,Paris\n")
    with pytest.raises(
        LeadImportError,
        match=r"no phone column .* --map phone=<column name> .*--no-header --map phone=<column number>",
    ):
        await import_leads(db, source, campaign.id, "FR")


async def test_mixed_encodings_are_refused_with_the_line(
    db: Database, campaign: CampaignRecord, tmp_path: Path
) -> None:
    source = tmp_path / "mixed.csv"
    source.write_bytes("phone,name\n0123456789,Léa\n".encode() + b"0612345678,Zo\xe9\n")
    with pytest.raises(LeadImportError, match=r"mixes encodings.*byte 0xE9 at line 3.*CSV UTF-8"):
        await import_leads(db, source, campaign.id, "FR")


async def test_forced_wrong_encoding_reports_line_and_keeps_the_record(
    db: Database, campaign: CampaignRecord, tmp_path: Path
) -> None:
    source = tmp_path / "latin.csv"
    good = "".join(f"06123456{i:02d},x\n" for i in range(30))
    source.write_bytes(("phone,name\n" + good).encode() + b"0712345678,Zo\xe9\n")
    with pytest.raises(LeadImportError, match=r"not valid utf-8: byte 0xE9 near line"):
        await import_leads(db, source, campaign.id, "FR", encoding="utf-8", batch_size=10)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\xef\xbb\xbfphone\n0123456789\n", "utf-8-sig"),
        ("phone,nom\n0123456789,Léa\n".encode(), "utf-8"),
        ("phone,nom\n0123456789,Léa €\n".encode("cp1252"), "cp1252"),
        (b"phone,nom\n0123456789,L\xe9a \x81\n", "latin-1"),
        (b"phone\n0123456789\n", "utf-8"),
    ],
)
def test_encoding_is_detected(tmp_path: Path, data: bytes, expected: str) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(data)
    assert detect_encoding(path) == expected


def test_utf16_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes("phone\n0123456789\n".encode("utf-16"))
    with pytest.raises(LeadImportError, match="export it as 'CSV UTF-8'"):
        detect_encoding(path)


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_delimiter_is_sniffed(delimiter: str) -> None:
    sample = delimiter.join(["phone", "first_name", "city"]) + "\n"
    sample += delimiter.join(["01 23 45 67 89", "Léa", "Paris"]) + "\n"
    assert sniff_delimiter(sample) == delimiter


def test_mapping_syntax_errors_are_explained() -> None:
    assert parse_mapping("phone=Telephone, first_name=Prenom") == {
        "phone": "Telephone",
        "first_name": "Prenom",
    }
    with pytest.raises(LeadImportError, match="is not FIELD=COLUMN"):
        parse_mapping("phone:Telephone")


async def test_unknown_field_and_country_are_refused(
    db: Database, campaign: CampaignRecord, tmp_path: Path
) -> None:
    source = write(tmp_path, "phone\n0123456789\n")
    with pytest.raises(LeadImportError, match="unknown lead field"):
        await import_leads(db, source, campaign.id, "FR", {"mobile": "phone"})
    with pytest.raises(LeadImportError, match="not an ISO 3166 country code"):
        await import_leads(db, source, campaign.id, "XX")
    with pytest.raises(LeadImportError, match="is empty"):
        await import_leads(db, write(tmp_path, "", name="empty.csv"), campaign.id, "FR")


async def test_timezone_column_overrides_number_and_is_checked(
    db: Database, campaign: CampaignRecord, tmp_path: Path
) -> None:
    source = write(
        tmp_path, "phone,fuseau\n+7 912 345-67-89,\n0123456789,America/Cayenne\n0612345678,Mars/Olympus\n"
    )
    report = await import_leads(db, source, campaign.id, "FR", rejects_path=tmp_path / "r.csv")
    assert report.imported == 2 and dict(report.rejected) == {"bad_value": 1}
    leads = {lead.phone: lead async for lead in db.leads.iter_leads(campaign.id)}
    russian = leads["+79123456789"]
    assert (
        len(russian.timezones) > 1 and russian.timezone_source == "number"
    )  # a mobile: every zone of Russia
    assert leads["+33123456789"].timezones == ("America/Cayenne",)
    assert leads["+33123456789"].timezone_source == "column"


async def test_worker_processes_give_the_same_result(
    db: Database, campaign: CampaignRecord, tmp_path: Path
) -> None:
    lines = ["phone,first_name"] + [f"06 12 {i // 100:02d} {i % 100:02d} 00,n{i}" for i in range(3000)]
    lines += ["+33 1 23,bad", "06 12 00 00 00,dup"]
    source = write(tmp_path, "\n".join(lines) + "\n")
    seen: list[ImportProgress] = []
    report = await import_leads(
        db,
        source,
        campaign.id,
        "FR",
        workers=2,
        batch_size=700,
        progress=seen.append,
        rejects_path=tmp_path / "r.csv",
    )
    assert report.imported == 3000 and dict(report.rejected) == {"invalid_number": 1, "duplicate_in_file": 1}
    assert seen and seen[-1].bytes_read == seen[-1].total_bytes and seen[-1].rows == 3002
    assert [r["line"] for r in read_rejects(tmp_path / "r.csv")] == ["3002", "3003"]


async def test_export_lists_every_lead_with_its_state(
    db: Database, campaign: CampaignRecord, tmp_path: Path
) -> None:
    source = write(tmp_path, "phone,first_name,Ville\n0123456789,Léa,Paris\n0612345678,Hugo,\n")
    await import_leads(db, source, campaign.id, "FR")
    out = io.StringIO()
    assert await export_leads(db, campaign.id, out) == 2
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [(r["phone"], r["first_name"], r["status"]) for r in rows] == [
        ("+33123456789", "Léa", "new"),
        ("+33612345678", "Hugo", "new"),
    ]
    assert rows[0]["extra"] == '{"Ville": "Paris"}' and rows[1]["extra"] == ""
    out = io.StringIO()
    assert await export_leads(db, campaign.id, out, [LeadStatus.DONE]) == 0


REGIONS = ["FR", "DE", "BE", "NL", "IN", "ZA", "GB", "US", "CA", "IT", "RU", "BR", "AR", "MX", "AU", "ID"]


@settings(max_examples=600, deadline=None)
@given(
    region=st.sampled_from(REGIONS),
    prefix=st.sampled_from(
        ["", "0", "00", "000", "+", "+33 ", "0033 0", "+330", "+1 ", "+39 0", "+44 (0)", "8"]
    ),
    digits=st.text(alphabet="0123456789 .-/", min_size=4, max_size=16),
)
def test_normalize_number_agrees_with_phonenumbers(region: str, prefix: str, digits: str) -> None:
    """The import's shortcut and zone lookup give exactly phonenumbers' answer, valid or not."""
    raw = prefix + digits
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        assert normalize_number(raw, region) is None
        return
    if not phonenumbers.is_valid_number(parsed):
        assert normalize_number(raw, region) is None
        return
    expected_zones = tuple(z for z in pn_timezone.time_zones_for_number(parsed) if z != "Etc/Unknown")
    assert normalize_number(raw, region) == (
        phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164),
        expected_zones,
    )


@pytest.mark.parametrize(
    "raw",
    [
        "01 23 45 67 89",
        "01.23.45.67.89",
        "0123456789",
        "+33 1 23 45 67 89",
        "0033 1 23 45 67 89",
        "+33 (0)1 23 45 67 89",
        "33123456789",
        "+33-1-23-45-67-89",
        "01/23/45/67/89",
    ],
)
def test_french_spellings_give_one_number(raw: str) -> None:
    assert normalize_number(raw, "FR") == ("+33123456789", ("Europe/Paris",))


def _phonenumbers_answer(raw: str, region: str) -> tuple[str, tuple[str, ...]] | None:
    """What phonenumbers itself says: E.164 and zones of a valid number, else None."""
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    zones = tuple(z for z in pn_timezone.time_zones_for_number(parsed) if z != "Etc/Unknown")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164), zones


# Country codes shared by several regions (1, 44, 7, 39 ...) decide the region by leading digits
# or by trying each region's patterns; 800 and 882 are non-geographic; 54 strips a complex prefix.
FAST_REGIONS = [*REGIONS, "GG", "JE", "IM", "KZ", "VA", "PR", "JM", "SE", "CH", "AT", "PL", "ES", "PT"]


@st.composite
def near_valid_numbers(draw: st.DrawFn) -> tuple[str, str]:
    """A region, and the start of one of its example numbers completed with random digits."""
    region = draw(st.sampled_from(FAST_REGIONS))
    ntype = draw(st.sampled_from(list(range(11))))
    example = phonenumbers.example_number_for_type(region, ntype) or phonenumbers.example_number(region)
    if example is None:
        nsn, code = "", phonenumbers.country_code_for_region(region)
    else:
        nsn, code = phonenumbers.national_significant_number(example), example.country_code
    keep = draw(st.integers(min_value=0, max_value=len(nsn)))
    size = max(0, len(nsn) - keep + draw(st.sampled_from([0, 0, 0, 0, -1, 1, 2])))  # mostly the right length
    tail = draw(st.text(alphabet="0123456789", min_size=size, max_size=size))
    spelling = draw(
        st.sampled_from(["+{cc}{nsn}", "+{cc} {nsn}", "00{cc}{nsn}", "0{nsn}", "{nsn}", "+{cc}0{nsn}"])
    )
    return region, spelling.format(cc=code, nsn=nsn[:keep] + tail)


@settings(max_examples=1500, deadline=None)
@given(case=near_valid_numbers())
def test_fast_path_agrees_with_phonenumbers_near_valid_numbers(case: tuple[str, str]) -> None:
    """Numbers close to real ones, mostly valid, in every spelling: phonenumbers' answer exactly."""
    region, raw = case
    assert normalize_number(raw, region) == _phonenumbers_answer(raw, region)


@settings(max_examples=600, deadline=None)
@given(
    default=st.sampled_from(REGIONS),
    code=st.sampled_from(["1", "7", "33", "39", "44", "49", "54", "61", "262", "590", "800", "882", "979"]),
    digits=st.text(alphabet="0123456789", min_size=0, max_size=18),
)
def test_international_fast_path_is_phonenumbers_or_defers(default: str, code: str, digits: str) -> None:
    """ "+CC..." decided without the general parser is what phonenumbers says; undecided goes the long way."""
    raw = "+" + code + digits
    fast = _international_fast(raw[1:])
    expected = _phonenumbers_answer(raw, default)
    if fast is NOT_VALID:
        assert expected is None
    elif fast is not None:
        assert fast == expected
    assert normalize_number(raw, default) == expected


def test_fast_path_length_bounds_are_phonenumbers_own() -> None:
    from phonenumbers import phonenumberutil

    assert (_MIN_NSN, _MAX_NSN) == (phonenumberutil._MIN_LENGTH_FOR_NSN, phonenumberutil._MAX_LENGTH_FOR_NSN)


@settings(max_examples=300, deadline=None)
@given(
    headers=st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=5, unique=True),
    values=st.lists(st.text(max_size=12), min_size=5, max_size=5),
)
def test_extra_columns_are_encoded_as_json_dumps_would(headers: list[str], values: list[str]) -> None:
    """Quotes, backslashes, control and non-ASCII characters: json.dumps' text; empty cells left out."""
    columns = list(enumerate(headers))
    expected = {h: values[i] for i, h in columns if values[i]}
    assert _extra_encoder(columns)(values) == (json.dumps(expected, ensure_ascii=False) if expected else None)


@st.composite
def region_and_near_valid_nsn(draw: st.DrawFn) -> tuple[str, str]:
    """Any region, and the start of one of its example national numbers completed with random digits."""
    region = draw(st.sampled_from(sorted(phonenumbers.SUPPORTED_REGIONS)))
    ntype = draw(st.integers(min_value=0, max_value=10))
    example = phonenumbers.example_number_for_type(region, ntype) or phonenumbers.example_number(region)
    nsn = phonenumbers.national_significant_number(example) if example else ""
    keep = draw(st.integers(min_value=0, max_value=len(nsn)))
    size = max(0, len(nsn) - keep + draw(st.sampled_from([0, 0, 0, -1, 1])))
    return region, nsn[:keep] + draw(st.text(alphabet="0123456789", min_size=size, max_size=size))


@settings(max_examples=1500, deadline=None)
@given(case=region_and_near_valid_nsn())
def test_number_type_patterns_agree_with_phonenumbers_in_every_region(case: tuple[str, str]) -> None:
    """The combined per-length pattern and the one-by-one fallback both type numbers as phonenumbers does."""
    from phonenumbers import PhoneMetadata, phonenumberutil

    region, nsn = case
    meta = PhoneMetadata.metadata_for_region(region)
    assert meta is not None
    rules = _RegionRules(meta)
    expected = phonenumberutil._number_type_helper(nsn, meta)
    assert rules.type_of(nsn) == expected
    assert rules.one_by_one(nsn) == expected
