"""Phone numbers of imported rows: E.164 and candidate time zones, with phonenumbers.

Kept free of the database and the event loop so that a pool of worker
processes can normalize large files next to the import (parsing is the
costliest step of an import).
"""

from __future__ import annotations

import re

import phonenumbers
from phonenumbers import PhoneMetadata, PhoneNumberType, is_number_type_geographical
from phonenumbers.tzdata import TIMEZONE_DATA, TIMEZONE_LONGEST_PREFIX

# phonenumbers says this when it does not know; the lead then has no zone at all,
# and the compliance gate refuses to dial it (fail closed).
_UNKNOWN_ZONE = "Etc/Unknown"
_country_zones: dict[int, tuple[str, ...]] = {}

Normalized = tuple[str, tuple[str, ...]]


class RegionError(ValueError):
    """The default country is not one phonenumbers knows."""


def normalize_region(country: str) -> str:
    region = country.strip().upper()
    if region == "UK":
        region = "GB"
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise RegionError(
            f"default country {country!r} is not an ISO 3166 country code phonenumbers knows; "
            "use e.g. FR, GB, US"
        )
    return region


_prefix_lengths: dict[str, tuple[int, ...]] = {}


def _lengths_under(country_code: str) -> tuple[int, ...]:
    """Lengths of the zone-table prefixes of one country code, longest first (computed once per code)."""
    lengths = _prefix_lengths.get(country_code)
    if lengths is None:
        lengths = tuple(
            sorted(
                {len(k) for k in TIMEZONE_DATA if k.startswith(country_code) or country_code.startswith(k)},
                reverse=True,
            )
        )
        _prefix_lengths[country_code] = lengths
    return lengths


def _longest_prefix_zones(digits: str, country_code: str) -> tuple[str, ...]:
    # Only the prefix lengths the table has for this country are tried: the
    # answer is that of phonenumbers' loop over every length, longest first.
    for length in _lengths_under(country_code):
        if length > TIMEZONE_LONGEST_PREFIX or length > len(digits):
            continue
        found = TIMEZONE_DATA.get(digits[:length])
        if found is not None:
            return tuple(z for z in found if z != _UNKNOWN_ZONE)
    return ()


def _zones_for(number: phonenumbers.PhoneNumber, e164: str, ntype: int) -> tuple[str, ...]:
    """Candidate zones, as phonenumbers.timezone.time_zones_for_number, without its second type lookup."""
    country_code = number.country_code or 0
    if is_number_type_geographical(ntype, country_code):
        return _longest_prefix_zones(e164[1:], str(country_code))
    zones = _country_zones.get(country_code)
    if zones is None:
        zones = _longest_prefix_zones(str(country_code), str(country_code))
        _country_zones[country_code] = zones
    return zones


# Spellings the shortcut below accepts: digits with an optional leading '+' and
# plain separators; anything else (letters, extensions, brackets) goes the long way.
_PLAIN = re.compile(r"\+?[0-9][0-9 .\-/]*")
_SEPARATORS = str.maketrans("", "", " .-/")
_simple_regions: dict[str, tuple[str, str] | None] = {}


def _simple_region(region: str) -> tuple[str, str] | None:
    """(country code, international prefix) of a region whose dialing rules are plain.

    Plain: national prefix "0", parsed as just "0", no transform rule, and an
    international prefix that is a fixed digit string (FR "00").  No country
    code starts with 0, so a national number there never looks like one with
    its country code in front, and "0" + NSN means "+" + CC + NSN.
    """
    if region not in _simple_regions:
        meta = PhoneMetadata.metadata_for_region(region)
        plain = (
            meta is not None
            and meta.national_prefix == "0"
            and meta.national_prefix_for_parsing in (None, "0")
            and not meta.national_prefix_transform_rule
            and meta.international_prefix is not None
            and meta.international_prefix.isdigit()
        )
        _simple_regions[region] = (
            (str(meta.country_code), str(meta.international_prefix)) if plain and meta else None
        )
    return _simple_regions[region]


def _international_form(raw: str, region: str) -> str | None:
    """The same number written "+CC..." when that is unambiguous, else None.

    Parsing the international form costs phonenumbers half as much.  The
    caller keeps the result only when it is a valid number; then it is the
    number phonenumbers finds in ``raw`` (a test checks this on random input).
    """
    text = raw.strip()
    if not _PLAIN.fullmatch(text):
        return None
    digits = text.translate(_SEPARATORS)
    if digits.startswith("+"):
        return digits
    simple = _simple_region(region)
    if simple is None:
        return None
    country_code, idd = simple
    if digits.startswith(idd):
        rest = digits[len(idd) :]
        return "+" + rest if rest[:1] not in ("", "0") else None
    if digits.startswith("0") and not digits.startswith("00"):
        return "+" + country_code + digits[1:]
    return None


def _valid(number: phonenumbers.PhoneNumber) -> Normalized | None:
    # A number is valid exactly when its type is known in its own region, so one
    # type lookup serves both the validity check and the time-zone lookup.
    ntype = phonenumbers.number_type(number)
    if ntype == PhoneNumberType.UNKNOWN:
        return None
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return e164, _zones_for(number, e164, ntype)


def normalize_number(raw: str, region: str) -> Normalized | None:
    """E.164 and candidate zones of a valid number, or None when it is not a valid number."""
    if not raw:
        return None
    shortcut = _international_form(raw, region)
    if shortcut is not None:
        try:
            found = _valid(phonenumbers.parse(shortcut, region))
        except phonenumbers.NumberParseException:
            found = None
        if found is not None:
            return found
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    return _valid(number)


def normalize_many(raws: list[str], region: str) -> list[Normalized | None]:
    """``normalize_number`` over a chunk (the unit of work of the import's process pool)."""
    return [normalize_number(raw, region) for raw in raws]
