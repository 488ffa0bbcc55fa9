"""Phone numbers of imported rows: E.164 and candidate time zones, with phonenumbers.

Kept free of the database and the event loop so that a pool of worker
processes can normalize large files next to the import (parsing is the
costliest step of an import).
"""

from __future__ import annotations

import re

import phonenumbers
from phonenumbers import (
    COUNTRY_CODE_TO_REGION_CODE,
    PhoneMetadata,
    PhoneNumberDesc,
    PhoneNumberType,
    is_number_type_geographical,
)
from phonenumbers.tzdata import TIMEZONE_DATA, TIMEZONE_LONGEST_PREFIX

from telephony.base import mask_number

# phonenumbers says this when it does not know; the lead then has no zone at all,
# and the compliance gate refuses to dial it (fail closed).
_UNKNOWN_ZONE = "Etc/Unknown"
_country_zones: dict[int, tuple[str, ...]] = {}
# phonenumbers' bounds on a national significant number's length (parse raises outside them).
_MIN_NSN = 2
_MAX_NSN = 17

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
        key = digits[:length]
        zones = _known_zones.get(key)
        if zones is not None:
            return zones
        found = TIMEZONE_DATA.get(key)
        if found is not None:
            zones = _known_zones[key] = tuple(z for z in found if z != _UNKNOWN_ZONE)
            return zones
    return ()


# The zones of each table entry met so far, without "unknown" (at most the table's size).
_known_zones: dict[str, tuple[str, ...]] = {}


def _zones_for(country_code: int, e164: str, ntype: int) -> tuple[str, ...]:
    """Candidate zones, as phonenumbers.timezone.time_zones_for_number, without its second type lookup."""
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
    # The separators _PLAIN allows, removed (four replaces cost less than one translate).
    digits = text.replace(" ", "").replace(".", "").replace("-", "").replace("/", "")
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


# ---------------------------------------------------------------------------
# Fast path for "+CC NSN" spellings.
#
# For a number written "+" and digits, phonenumbers.parse only splits off the
# country code (the first 1-3 digits that are one: codes form a prefix-free
# set) and then tries to strip a national prefix from the rest; when the
# region's national-prefix pattern does not match at the start of the rest,
# nothing is stripped and the national significant number is the rest, digit
# for digit (leading zeros included).  Its type is then decided by the
# metadata's patterns, tried in phonenumbers' own order.  The code below does
# exactly that with the patterns compiled once, skipping the general parser's
# many steps; whatever it cannot decide (a national prefix present, a
# non-geographic code, a length out of bounds) goes through phonenumbers
# itself, and so does the spelling as given of a number it finds not valid.
# The patterns are phonenumbers' own, so its metadata updates apply here too;
# property tests compare both on numbers near real ones of every region.

# A description that never matches (absent, or without a pattern) is None;
# otherwise its possible lengths (None: any) and its compiled pattern.
_Desc = tuple[frozenset[int] | None, re.Pattern[str]] | None
_SPECIAL_TYPES = (
    ("premium_rate", PhoneNumberType.PREMIUM_RATE),
    ("toll_free", PhoneNumberType.TOLL_FREE),
    ("shared_cost", PhoneNumberType.SHARED_COST),
    ("voip", PhoneNumberType.VOIP),
    ("personal_number", PhoneNumberType.PERSONAL_NUMBER),
    ("pager", PhoneNumberType.PAGER),
    ("uan", PhoneNumberType.UAN),
    ("voicemail", PhoneNumberType.VOICEMAIL),
)
_CODES = frozenset(str(code) for code in COUNTRY_CODE_TO_REGION_CODE)


def _desc(desc: PhoneNumberDesc | None) -> _Desc:
    if desc is None or not desc.national_number_pattern:
        return None
    lengths = frozenset(desc.possible_length) if desc.possible_length else None
    return lengths, re.compile(desc.national_number_pattern)


def _matches(desc: _Desc, nsn: str) -> bool:
    if desc is None:
        return False
    lengths, pattern = desc
    if lengths is not None and len(nsn) not in lengths:
        return False
    return pattern.fullmatch(nsn) is not None


# What a branch of a region's combined pattern stands for, besides the special types.
_FIXED = -1
_MOBILE = -2
_LengthRules = tuple[re.Pattern[str] | None, re.Pattern[str] | None, dict[str, int]]


class _RegionRules:
    """One region's type patterns, for phonenumbers' _number_type_helper logic."""

    __slots__ = ("by_length", "fixed", "general", "leading", "mobile", "same_fixed_mobile", "specials")

    def __init__(self, meta: PhoneMetadata) -> None:
        self.general = _desc(meta.general_desc)
        self.specials = tuple(
            (desc, ntype)
            for name, ntype in _SPECIAL_TYPES
            if (desc := _desc(getattr(meta, name))) is not None
        )
        self.fixed = _desc(meta.fixed_line)
        self.mobile = _desc(meta.mobile)
        self.same_fixed_mobile = bool(meta.same_mobile_and_fixed_line_pattern)
        self.leading = re.compile(meta.leading_digits) if meta.leading_digits is not None else None
        # Per length: (general pattern, or None when the length is not possible;
        # the combined pattern, or None when nothing else allows the length; its
        # branches' types), or None when the patterns cannot be combined.
        self.by_length: dict[int, _LengthRules | None] = {}

    def _combined(self, length: int) -> _LengthRules | None:
        """One pattern whose first fully matching branch is the first type phonenumbers would find.

        phonenumbers tries the special types in order, then fixed line, then
        mobile, each with its own pattern and lengths.  For one length, the
        alternation of the patterns that allow it, in that order, fully
        matches through its first branch that can: the same first match, in
        one call.  None when a pattern cannot be embedded (capturing groups,
        inline flags): the types are then tried one by one.
        """
        branches: list[tuple[_Desc, int]] = list(self.specials)
        branches.append((self.fixed, _FIXED))
        if not self.same_fixed_mobile:
            branches.append((self.mobile, _MOBILE))
        parts: list[str] = []
        kinds: dict[str, int] = {}
        for desc, kind in branches:
            if desc is None or (desc[0] is not None and length not in desc[0]):
                continue
            if desc[1].groups or desc[1].flags & ~re.UNICODE:
                return None
            name = f"b{len(parts)}"
            parts.append(f"(?P<{name}>{desc[1].pattern})")
            kinds[name] = kind
        general = self.general
        general_pattern = (
            general[1] if general is not None and (general[0] is None or length in general[0]) else None
        )
        if not parts:
            return general_pattern, None, kinds
        try:
            return general_pattern, re.compile("|".join(parts)), kinds
        except re.error:
            return None

    def type_of(self, nsn: str) -> int:
        length = len(nsn)
        try:
            combined = self.by_length[length]
        except KeyError:
            combined = self.by_length[length] = self._combined(length)
        if combined is not None:
            general, pattern, kinds = combined
            if general is None or general.fullmatch(nsn) is None:
                return PhoneNumberType.UNKNOWN
            found = pattern.fullmatch(nsn) if pattern is not None else None
            if found is None:
                return PhoneNumberType.UNKNOWN
            kind = kinds[found.lastgroup or ""]
            if kind == _FIXED:
                if self.same_fixed_mobile or _matches(self.mobile, nsn):
                    return PhoneNumberType.FIXED_LINE_OR_MOBILE
                return PhoneNumberType.FIXED_LINE
            return PhoneNumberType.MOBILE if kind == _MOBILE else kind
        return self.one_by_one(nsn)

    def one_by_one(self, nsn: str) -> int:
        """The type as phonenumbers finds it, one pattern after another (general pattern included)."""
        if not _matches(self.general, nsn):
            return PhoneNumberType.UNKNOWN
        for desc, ntype in self.specials:
            if _matches(desc, nsn):
                return ntype
        if _matches(self.fixed, nsn):
            if self.same_fixed_mobile or _matches(self.mobile, nsn):
                return PhoneNumberType.FIXED_LINE_OR_MOBILE
            return PhoneNumberType.FIXED_LINE
        if not self.same_fixed_mobile and _matches(self.mobile, nsn):
            return PhoneNumberType.MOBILE
        return PhoneNumberType.UNKNOWN


class _CountryRules:
    """A country code's national-prefix pattern and its regions' rules, in phonenumbers' order."""

    __slots__ = (
        "code",
        "country_zones",
        "geographic",
        "national_prefix",
        "plain_national_prefix",
        "regions",
        "size",
        "zone_lengths",
    )

    def __init__(self, code: int, main: PhoneMetadata, regions: tuple[_RegionRules, ...]) -> None:
        self.code = code
        self.size = len(str(code))
        prefix = main.national_prefix_for_parsing
        # A pattern of digits only matches at the start exactly when the number starts with it.
        self.plain_national_prefix = prefix if prefix and prefix.isascii() and prefix.isdigit() else None
        self.national_prefix = re.compile(prefix) if prefix and self.plain_national_prefix is None else None
        self.regions = regions
        self.zone_lengths = tuple(n for n in _lengths_under(str(code)) if n <= TIMEZONE_LONGEST_PREFIX)
        # Types whose zones come from the number's own prefix; the others get the country's.
        self.geographic = frozenset(
            t
            for t in vars(PhoneNumberType).values()
            if isinstance(t, int) and is_number_type_geographical(t, code)
        )
        self.country_zones = _zones_for(code, "+" + str(code), PhoneNumberType.UNKNOWN)

    def zones_of(self, digits: str) -> tuple[str, ...]:
        """_longest_prefix_zones(digits, code) with the lengths filtered once."""
        for length in self.zone_lengths:
            if length > len(digits):
                continue
            key = digits[:length]
            zones = _known_zones.get(key)
            if zones is not None:
                return zones
            found = TIMEZONE_DATA.get(key)
            if found is not None:
                zones = _known_zones[key] = tuple(z for z in found if z != _UNKNOWN_ZONE)
                return zones
        return ()

    def type_of(self, nsn: str) -> int:
        if len(self.regions) == 1:
            return self.regions[0].type_of(nsn)
        # As region_code_for_number: the first region whose leading digits
        # match, or (without leading digits) whose patterns know the number.
        for rules in self.regions:
            if rules.leading is not None:
                if rules.leading.match(nsn):
                    return rules.type_of(nsn)
            else:
                ntype = rules.type_of(nsn)
                if ntype != PhoneNumberType.UNKNOWN:
                    return ntype
        return PhoneNumberType.UNKNOWN


_country_rules: dict[str, _CountryRules | None] = {}
# Rules by the first three digits after "+" (they decide the country code): at most 1000 entries.
_rules_by_start: dict[str, _CountryRules | None] = {}


def _rules_for(code: str) -> _CountryRules | None:
    if code not in _country_rules:
        names = COUNTRY_CODE_TO_REGION_CODE[int(code)]
        metas = [PhoneMetadata.metadata_for_region(name) for name in names]
        found: _CountryRules | None = None
        # Non-geographic codes (region "001") keep their metadata elsewhere: the long way.
        if names and all(meta is not None for meta in metas):
            main = PhoneMetadata.metadata_for_region(phonenumbers.region_code_for_country_code(int(code)))
            if main is not None:
                found = _CountryRules(int(code), main, tuple(_RegionRules(m) for m in metas if m is not None))
        _country_rules[code] = found
    return _country_rules[code]


# What _international_fast says of a number phonenumbers parses exactly as it
# does but finds of no known type: not valid (compared by identity).
NOT_VALID: Normalized = ("", ())


def _international_fast(digits: str) -> Normalized | None:
    """E.164 and zones of "+" ``digits`` (ASCII digits) when valid, NOT_VALID, or None: ask phonenumbers."""
    if len(digits) <= 2:
        return None  # too short after "+": phonenumbers raises
    start = digits[:3]
    try:
        rules = _rules_by_start[start]
    except KeyError:
        rules = _rules_by_start[start] = _rules_starting(start)
    if rules is None:
        return None
    nsn = digits[rules.size :]
    if not _MIN_NSN <= len(nsn) <= _MAX_NSN:
        return None
    # Where phonenumbers might strip a national prefix, it decides.
    if rules.plain_national_prefix is not None:
        if nsn.startswith(rules.plain_national_prefix):
            return None
    elif rules.national_prefix is not None and rules.national_prefix.match(nsn):
        return None
    ntype = rules.type_of(nsn)
    if ntype == PhoneNumberType.UNKNOWN:
        return NOT_VALID
    if ntype in rules.geographic:
        return "+" + digits, rules.zones_of(digits)
    return "+" + digits, rules.country_zones


def _rules_starting(start: str) -> _CountryRules | None:
    """Rules of the country code at the start of ``start`` (digits after "+"), as phonenumbers finds it."""
    if start[:1] == "0":
        return None  # no country code starts with 0
    for size in (1, 2, 3):
        if start[:size] in _CODES:
            return _rules_for(start[:size])
    return None


def _valid(number: phonenumbers.PhoneNumber) -> Normalized | None:
    # A number is valid exactly when its type is known in its own region, so one
    # type lookup serves both the validity check and the time-zone lookup.
    ntype = phonenumbers.number_type(number)
    if ntype == PhoneNumberType.UNKNOWN:
        return None
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return e164, _zones_for(number.country_code or 0, e164, ntype)


def normalize_number(raw: str, region: str) -> Normalized | None:
    """E.164 and candidate zones of a valid number, or None when it is not a valid number."""
    if not raw:
        return None
    shortcut = _international_form(raw, region)
    if shortcut is not None:
        fast = _international_fast(shortcut[1:])
        if fast is None:
            try:
                fast = _valid(phonenumbers.parse(shortcut, region))
            except phonenumbers.NumberParseException:
                fast = None
        if fast is not None and fast is not NOT_VALID:
            return fast
        # Not valid written "+CC...": the spelling as given may still be (a national prefix kept).
    elif not _ends_as_a_number(raw):
        return None  # a letter, an extension, a suffix after the digits: see number_problem
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    return _valid(number)


def normalize_many(raws: list[str], region: str) -> list[Normalized | None]:
    """``normalize_number`` over a chunk (the unit of work of the import's process pool)."""
    return [normalize_number(raw, region) for raw in raws]


# ---------------------------------------------------------------------------
# Numbers as people write them: what a number may hold, and why one is refused.

# Besides digits, a number may hold a leading '+', spaces and the usual separators.  Anything
# else (a letter, '#', '*', ';ext=') after its first digit is refused: phonenumbers would drop a
# trailing suffix ("0612000007x") or keep an extension ("... ext 5") that a dialer cannot dial,
# silently.  Text before the number ("Tel. 06...", a spreadsheet's leading apostrophe) loses no digit
# and is left to phonenumbers, as before.
_ALLOWED = re.compile(r"[\d\s+().\-/]*")
_NUMBER_START = re.compile(r"[\d+]")


def _number_start(raw: str) -> int:
    found = _NUMBER_START.search(raw)
    return found.start() if found is not None else len(raw)


def _ends_as_a_number(raw: str) -> bool:
    """True unless something that is not part of a number follows the number's first digit."""
    return _ALLOWED.fullmatch(raw, _number_start(raw)) is not None


_SUFFIX = re.compile(r"(?i)[\s,;]*(?:e?xt\.?|extension|poste|p|x|#|;ext=)?[\s.:=#]*\d*\s*$")


def has_only_number_characters(raw: str) -> bool:
    return _ALLOWED.fullmatch(raw) is not None


def number_problem(raw: str, region: str) -> str:
    """Why ``normalize_number`` refused ``raw``, in the operator's words, the number masked."""
    text = raw.strip()
    # Too few digits to call anyone: shown as written, the operator recognises it.
    shown = mask_number(text) if sum(c.isdigit() for c in text) >= 6 else text
    if not _ends_as_a_number(text):
        first = _number_start(text)
        start = next(i for i in range(first, len(text)) if not _ALLOWED.fullmatch(text[i]))
        head, tail = text[first:start].strip(), text[start:]
        if _SUFFIX.fullmatch(tail) and sum(c.isdigit() for c in head) >= 6:
            return (
                f"{mask_number(head)!r} is followed by {tail.strip()!r}, an extension or suffix that "
                "cannot be dialed; remove it (an extension in a column of its own is kept in the "
                "lead's extra fields)"
            )
        return f"{shown!r} holds {text[start]!r}, which is not part of a phone number"
    return f"{shown!r} is not a valid number for {region}"


class NumberInputError(ValueError):
    """A number typed by the operator cannot be read; the message says how to write it."""


def parse_user_number(text: str, country: str | None = None) -> str:
    """E.164 of a number the operator typed (CLI argument): "+CC..." or, with ``country``, national.

    The messages echo the input: it is the operator's own.
    """
    raw = text.strip()
    if not raw:
        raise NumberInputError("the number is empty; write it as +33612345678, or give --country FR")
    if not has_only_number_characters(raw):
        bad = next(c for c in raw if not _ALLOWED.fullmatch(c))
        raise NumberInputError(
            f"{text!r} is not a phone number: {bad!r} is not a digit or separator; "
            "write it as +33612345678 (extensions cannot be dialed)"
        )
    region = "ZZ"
    if country:
        try:
            region = normalize_region(country)
        except RegionError as exc:
            raise NumberInputError(str(exc).replace("default country", "--country")) from None
    found = normalize_number(raw, region)
    if found is None:
        if region == "ZZ" and not raw.startswith("+"):
            raise NumberInputError(
                f"{text!r} is a national number: give its country with --country (e.g. --country FR), "
                "or write it in international form such as +33612345678"
            )
        where = f"for {region}" if region != "ZZ" else "(checked with its country code)"
        raise NumberInputError(f"{text!r} is not a valid phone number {where}; check the digits")
    return found[0]


# A run of digits long enough to be a phone number, with the separators people write.
_NUMBER_LIKE = re.compile(r"\+?\d[\d .\-/]{4,}\d")


_DATE = re.compile(r"\d{4}-\d\d-\d\d")


def _mask_match(match: re.Match[str]) -> str:
    found = match.group(0)
    return found if _DATE.match(found) else mask_number(found)


def mask_numbers_in(text: str) -> str:
    """``text`` with everything that looks like a phone number masked (for database errors)."""
    return _NUMBER_LIKE.sub(_mask_match, text)
