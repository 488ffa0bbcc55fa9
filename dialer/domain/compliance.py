"""Compliance rules as pure functions: may this number be called now, and if not, why and until when.

Everything here works on facts gathered beforehand (DNC hits, registry screening dates, the
person's contact history, the lead's consent) so that every rule is testable without a store.
The rules run in the order of the design (section 5); the first rule that blocks decides:

    number valid -> do-not-call (lists, registry freshness) -> consent -> calling window
    -> contact pressure (lock-outs, minimum gap, attempts per rolling period) -> campaign rules

``decide`` never raises for bad facts it can recognise (unknown zone, unparsable number): it
blocks.  The gate around it turns any unexpected exception into a block too (fail closed).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
import phonenumbers
from phonenumbers import timezone as pn_timezone

# Rule names: also the ``rule`` label of dialer_compliance_decisions_total, so the set is closed.
RULE_ALLOWED = "allowed"
RULE_NUMBER = "number_valid"
RULE_DNC = "dnc"
RULE_REGISTRY = "registry_stale"
RULE_CONSENT = "consent"
RULE_WINDOW = "calling_window"
RULE_LOCKOUT = "lockout"
RULE_MIN_GAP = "min_gap"
RULE_PRESSURE = "contact_pressure"
RULE_CAMPAIGN_ATTEMPTS = "campaign_max_attempts"
RULE_CAMPAIGN_RETRY = "campaign_retry_delay"
RULE_PROFILE = "profile"
RULE_STORE = "store_unavailable"
RULE_ERROR = "rule_error"

ALL_RULES = (
    RULE_ALLOWED,
    RULE_NUMBER,
    RULE_DNC,
    RULE_REGISTRY,
    RULE_CONSENT,
    RULE_WINDOW,
    RULE_LOCKOUT,
    RULE_MIN_GAP,
    RULE_PRESSURE,
    RULE_CAMPAIGN_ATTEMPTS,
    RULE_CAMPAIGN_RETRY,
    RULE_PROFILE,
    RULE_STORE,
    RULE_ERROR,
)

OutcomeKind = Literal["refusal", "abandoned", "machine", "contact"]
EventKind = Literal["attempt", "refusal", "abandoned", "machine", "contact"]
OUTCOME_KINDS: tuple[OutcomeKind, ...] = ("refusal", "abandoned", "machine", "contact")
EVENT_KINDS: tuple[EventKind, ...] = ("attempt", "refusal", "abandoned", "machine", "contact")
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
UNKNOWN_ZONE = "Etc/Unknown"
# How far ahead retry_after searches for an opening of the calling window.
WINDOW_SEARCH_DAYS = 21


class ProfileError(ValueError):
    """A profile or a campaign override is malformed or loosens the law; the message names the figure."""


# --------------------------------------------------------------------------- profile model


@dataclass(frozen=True, order=True)
class TimeRange:
    """Minutes after local midnight, start inclusive, end exclusive (end may be 1440)."""

    start: int
    end: int

    def __post_init__(self) -> None:
        if not 0 <= self.start < self.end <= 24 * 60:
            raise ProfileError(f"time range {self.start}-{self.end} minutes is empty or outside one day")

    def contains(self, minute: int) -> bool:
        return self.start <= minute < self.end

    @classmethod
    def parse(cls, text: str) -> TimeRange:
        """``"10:00-13:00"`` -> TimeRange(600, 780); ``24:00`` is allowed as an end."""
        try:
            a, b = text.split("-")
            return cls(_minutes(a), _minutes(b))
        except (ValueError, TypeError) as exc:
            raise ProfileError(f"time range {text!r} must look like '10:00-13:00'") from exc

    def __str__(self) -> str:
        return f"{self.start // 60:02d}:{self.start % 60:02d}-{self.end // 60:02d}:{self.end % 60:02d}"


def _minutes(hhmm: str) -> int:
    h, m = hhmm.strip().split(":")
    value = int(h) * 60 + int(m)
    if not (0 <= int(m) < 60 and 0 <= value <= 24 * 60):
        raise ValueError(hhmm)
    return value


Ranges = tuple[TimeRange, ...]


def _covers(outer: Ranges, inner: Ranges) -> bool:
    """Every minute of ``inner`` lies in ``outer``."""
    for r in inner:
        minute = r.start
        while minute < r.end:
            host = next((o for o in outer if o.contains(minute)), None)
            if host is None:
                return False
            minute = host.end
    return True


@dataclass(frozen=True)
class CallingWindow:
    """When a person may be called, in their own local time."""

    days: tuple[Ranges, ...]  # seven entries, Monday first
    holidays: Ranges = ()  # ranges on a public holiday; empty means no call on a holiday
    holiday_country: str | None = None  # ``holidays`` country code; None: holidays are ordinary days
    holiday_subdivision: str | None = None

    def __post_init__(self) -> None:
        if len(self.days) != 7:
            raise ProfileError("a calling window needs ranges for the seven days, Monday first")

    def ranges_on(self, day: date) -> Ranges:
        if self.holiday_country is not None and is_public_holiday(
            self.holiday_country, self.holiday_subdivision, day
        ):
            return self.holidays
        return self.days[day.weekday()]

    def open_at(self, local: datetime) -> bool:
        minute = local.hour * 60 + local.minute
        return any(r.contains(minute) for r in self.ranges_on(local.date()))


@functools.lru_cache(maxsize=512)
def _holiday_dates(country: str, subdivision: str | None, year: int) -> frozenset[date]:
    calendar = holidays.country_holidays(country, subdiv=subdivision, years=year)
    return frozenset(calendar.keys())


def _holidays_superset(country: str, base_subdivision: str | None, subdivision: str | None) -> bool:
    """A subdivision's calendar keeps every holiday of the base calendar (checked over five years)."""
    this_year = date.today().year
    return all(
        _holiday_dates(country, base_subdivision, year) <= _holiday_dates(country, subdivision, year)
        for year in range(this_year - 1, this_year + 4)
    )


def is_public_holiday(country: str, subdivision: str | None, day: date) -> bool:
    return day in _holiday_dates(country, subdivision, day.year)


@dataclass(frozen=True)
class RegistryRule:
    """A national do-not-call registry: which numbers it covers and how long a screening lasts."""

    name: str
    regions: tuple[str, ...]  # phonenumbers region codes the registry covers
    max_age_days: int


@dataclass(frozen=True)
class Profile:
    """A jurisdiction's figures.  ``None`` means the jurisdiction sets no limit for that figure."""

    code: str
    window: CallingWindow
    consent_required_from: date | None = None  # consent needed for calls on or after this day
    max_attempts: int | None = None  # per person, all campaigns, in ``pressure_period``
    pressure_period: timedelta = timedelta(days=30)
    pressure_counts: Literal["attempts", "contacts"] = "attempts"
    min_gap: timedelta = timedelta(0)  # between two attempts to the same person
    lockouts: Mapping[str, timedelta] = field(default_factory=dict)  # outcome kind -> lock-out
    registry_screening: bool = True  # check registry freshness for the number's region
    abandon_rate_cap: float | None = None  # for the pacer, per campaign
    abandon_window: timedelta | None = None
    recording_announcement: bool = False  # a recorded call must be announced to the person first

    def history_horizon(self) -> timedelta:
        """How far back the contact history must reach for this profile's rules."""
        spans = [self.pressure_period, self.min_gap, *self.lockouts.values()]
        return max(spans, default=timedelta(0))


@dataclass(frozen=True)
class ProfileOverrides:
    """What a campaign changes in its profile.  Every figure may only tighten it."""

    window: CallingWindow | None = None
    consent_required_from: date | None = None  # date.min: consent always required
    max_attempts: int | None = None
    pressure_period: timedelta | None = None
    min_gap: timedelta | None = None
    lockouts: Mapping[str, timedelta] = field(default_factory=dict)
    abandon_rate_cap: float | None = None
    recording_announcement: bool = False  # True: announce recordings (never loosens a profile that does)


@dataclass(frozen=True)
class CampaignRules:
    """A campaign's compliance settings: its profile, tightenings, and its own retry rules."""

    profile: str
    overrides: ProfileOverrides = ProfileOverrides()
    max_attempts_per_lead: int | None = None
    retry_delays: Mapping[str, timedelta] = field(default_factory=dict)  # last outcome -> delay


def tighten(profile: Profile, overrides: ProfileOverrides) -> Profile:
    """The profile with a campaign's overrides applied; ProfileError names any figure that loosens it."""
    changes: dict[str, object] = {}
    if overrides.window is not None:
        _check_window_tighter(profile.window, overrides.window)
        changes["window"] = overrides.window
    if overrides.consent_required_from is not None:
        base_from = profile.consent_required_from
        if base_from is not None and overrides.consent_required_from > base_from:
            raise ProfileError(
                f"consent_required_from {overrides.consent_required_from.isoformat()} is later than profile "
                f"{profile.code}'s {base_from.isoformat()}"
            )
        changes["consent_required_from"] = overrides.consent_required_from
    period = overrides.pressure_period if overrides.pressure_period is not None else profile.pressure_period
    if period < profile.pressure_period:
        raise ProfileError(
            f"pressure_period {period} is shorter than profile {profile.code}'s {profile.pressure_period}"
        )
    changes["pressure_period"] = period
    if overrides.max_attempts is not None:
        if profile.max_attempts is not None and overrides.max_attempts > profile.max_attempts:
            raise ProfileError(
                f"max_attempts {overrides.max_attempts} exceeds profile {profile.code}'s "
                f"{profile.max_attempts}"
            )
        changes["max_attempts"] = overrides.max_attempts
    if overrides.min_gap is not None:
        if overrides.min_gap < profile.min_gap:
            raise ProfileError(
                f"min_gap {overrides.min_gap} is shorter than profile {profile.code}'s {profile.min_gap}"
            )
        changes["min_gap"] = overrides.min_gap
    if overrides.lockouts:
        merged = dict(profile.lockouts)
        for kind, span in overrides.lockouts.items():
            if kind not in OUTCOME_KINDS:
                raise ProfileError(
                    f"lockout {kind!r} is not an outcome; use one of {', '.join(OUTCOME_KINDS)}"
                )
            if span < profile.lockouts.get(kind, timedelta(0)):
                raise ProfileError(
                    f"lockout {kind} {span} is shorter than profile {profile.code}'s {profile.lockouts[kind]}"
                )
            merged[kind] = span
        changes["lockouts"] = merged
    if overrides.abandon_rate_cap is not None:
        if profile.abandon_rate_cap is not None and overrides.abandon_rate_cap > profile.abandon_rate_cap:
            raise ProfileError(
                f"abandon_rate_cap {overrides.abandon_rate_cap} exceeds profile {profile.code}'s "
                f"{profile.abandon_rate_cap}"
            )
        changes["abandon_rate_cap"] = overrides.abandon_rate_cap
    if overrides.recording_announcement:
        changes["recording_announcement"] = True
    return replace(profile, **changes)  # type: ignore[arg-type]


def _check_window_tighter(base: CallingWindow, new: CallingWindow) -> None:
    for i, (outer, inner) in enumerate(zip(base.days, new.days, strict=True)):
        if not _covers(outer, inner):
            shown = ", ".join(str(r) for r in inner) or "closed"
            allowed = ", ".join(str(r) for r in outer) or "closed"
            raise ProfileError(f"window.{DAY_NAMES[i]} {shown} goes beyond the profile's {allowed}")
    if base.holiday_country is not None:
        if new.holiday_country != base.holiday_country:
            raise ProfileError(
                f"window.holiday_country {new.holiday_country} drops the profile's holiday calendar "
                f"{base.holiday_country}"
            )
        if new.holiday_subdivision != base.holiday_subdivision and not _holidays_superset(
            base.holiday_country, base.holiday_subdivision, new.holiday_subdivision
        ):
            raise ProfileError(
                f"holiday_subdivision {new.holiday_subdivision} drops public holidays of the "
                "profile's calendar"
            )
        if not _covers(base.holidays, new.holidays):
            raise ProfileError("window.holidays goes beyond the profile's holiday hours")
    elif new.holiday_country is not None:
        # Adding a holiday calendar tightens only if holiday hours fit inside every weekday's hours.
        for outer in base.days:
            if not _covers(outer, new.holidays):
                raise ProfileError("window.holidays goes beyond the profile's hours on some day")


# --------------------------------------------------------------------------- request and facts


@dataclass(frozen=True)
class ConsentRecord:
    given_at: datetime
    source: str
    revoked_at: datetime | None = None
    expires_at: datetime | None = None

    def valid_at(self, now: datetime) -> bool:
        if self.given_at > now:
            return False
        if self.revoked_at is not None and self.revoked_at <= now:
            return False
        return not (self.expires_at is not None and self.expires_at <= now)


@dataclass(frozen=True)
class CallRequest:
    """One candidate call, as the campaign loop sees it."""

    number_e164: str
    lead_id: str
    campaign_id: str
    campaign_rules: CampaignRules
    lead_timezones: Sequence[str] | None = None
    consent: ConsentRecord | None = None
    lead_attempts: int = 0
    last_outcome: str | None = None
    last_attempt_at: datetime | None = None


@dataclass(frozen=True)
class Decision:
    allowed: bool
    rule: str
    reason: str
    retry_after: datetime | None = None

    @classmethod
    def allow(cls) -> Decision:
        return cls(True, RULE_ALLOWED, "all rules passed")

    @classmethod
    def block(cls, rule: str, reason: str, retry_after: datetime | None = None) -> Decision:
        return cls(False, rule, reason, retry_after)


@dataclass(frozen=True)
class ParsedNumber:
    e164: str
    digits: int  # the E.164 digits as an integer (DNC key)
    region: str
    zones: tuple[str, ...]  # candidate zones from the numbering plan, unknown removed


@dataclass(frozen=True)
class DncHit:
    scope: str  # "global", "campaign" or the registry name
    source: str
    expires_at: datetime | None = None


@dataclass(frozen=True)
class ContactEvent:
    """Something that happened to a person: an attempt or an outcome, from any campaign."""

    kind: EventKind
    at: datetime
    campaign_id: str = ""
    lead_id: str = ""


@dataclass(frozen=True)
class Facts:
    """What the gate looked up before deciding."""

    dnc_hits: Sequence[DncHit] = ()
    registry_screened_on: Mapping[str, date | None] = field(default_factory=dict)
    history: Sequence[ContactEvent] = ()


@functools.lru_cache(maxsize=16384)
def parse_number(text: str) -> ParsedNumber | None:
    """A valid E.164 number with its region and candidate zones, or None.

    Cached: the gate and the rules both need it, and the campaign loop checks the same leads
    again on later ticks; parsing is the costliest step of a decision.
    """
    if not text.startswith("+"):
        return None
    try:
        parsed = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    if e164 != text:
        return None
    zones = tuple(z for z in pn_timezone.time_zones_for_number(parsed) if z != UNKNOWN_ZONE)
    region = phonenumbers.region_code_for_number(parsed) or ""
    return ParsedNumber(e164, int(e164[1:]), region, zones)


@functools.lru_cache(maxsize=1024)
def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def window_zones(
    number_zones: Sequence[str], lead_zones: Sequence[str] | None, window: CallingWindow, now: datetime
) -> tuple[str, ...]:
    """The zones whose local time decides the window (empty: no usable zone, so no call).

    The window must hold in every zone the numbering plan allows; when it does not, the lead's
    stored zone(s) refine the guess, but only among the plan's candidates (a stored zone that
    contradicts the number is bad data, not a licence).
    """
    candidates = tuple(z for z in number_zones if _zone(z) is not None)
    stored = tuple(z for z in (lead_zones or ()) if z != UNKNOWN_ZONE and _zone(z) is not None)
    if candidates and all(window.open_at(now.astimezone(_zone(z))) for z in candidates):
        return candidates
    if not candidates:
        return stored
    refined = tuple(z for z in stored if z in candidates)
    return refined or candidates


def _window_open(window: CallingWindow, zones: Sequence[str], at: datetime) -> bool:
    return bool(zones) and all(window.open_at(at.astimezone(_zone(z))) for z in zones)


def next_window_opening(window: CallingWindow, zones: Sequence[str], now: datetime) -> datetime | None:
    """The first minute after ``now`` at which the window holds in every zone, or None within 3 weeks."""
    if not zones:
        return None
    candidates: set[datetime] = set()
    for name in zones:
        tz = _zone(name)
        assert tz is not None
        local_today = now.astimezone(tz).date()
        for offset in range(WINDOW_SEARCH_DAYS + 1):
            day = local_today + timedelta(days=offset)
            for r in window.ranges_on(day):
                local = datetime.combine(day, time(r.start // 60, r.start % 60), tzinfo=tz)
                # A range start in a DST gap does not exist; round-tripping through UTC fixes it.
                candidates.add(local.astimezone(ZoneInfo("UTC")))
    for at in sorted(c for c in candidates if c > now):
        if _window_open(window, zones, at):
            return at
    return None


# --------------------------------------------------------------------------- the decision


def decide(
    request: CallRequest,
    facts: Facts,
    profile: Profile,
    now: datetime,
    registries: Iterable[RegistryRule] = (),
) -> Decision:
    """Apply the rules in order to one candidate call.

    ``profile`` already carries the campaign's tightenings (``ProfileSet.for_campaign``).
    """
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    number = parse_number(request.number_e164)
    if number is None:
        return Decision.block(RULE_NUMBER, "not a valid E.164 number")

    # Do-not-call: lists first, then whether the registry screening is still fresh enough to trust.
    live = [h for h in facts.dnc_hits if h.expires_at is None or h.expires_at > now]
    if live:
        hit = live[0]
        # Rescheduling makes sense only when every entry that blocks will lapse.
        lapses = (
            None
            if any(h.expires_at is None for h in live)
            else max(h.expires_at for h in live if h.expires_at)
        )
        return Decision.block(RULE_DNC, f"on do-not-call list ({hit.scope}, source {hit.source})", lapses)
    if profile.registry_screening:
        for registry in registries:
            if number.region not in registry.regions:
                continue
            screened = facts.registry_screened_on.get(registry.name)
            if screened is None:
                return Decision.block(
                    RULE_REGISTRY,
                    f"registry {registry.name} never imported; import it with 'dialer dnc import'",
                )
            if (now.date() - screened).days > registry.max_age_days:
                return Decision.block(RULE_REGISTRY, f"registry stale, re-import ({registry.name})")

    if profile.consent_required_from is not None and now.date() >= profile.consent_required_from:
        if request.consent is None:
            return Decision.block(
                RULE_CONSENT, f"profile {profile.code} requires prior consent; none recorded"
            )
        if not request.consent.valid_at(now):
            return Decision.block(RULE_CONSENT, "recorded consent is revoked, expired or not yet given")

    zones = window_zones(number.zones, request.lead_timezones, profile.window, now)
    if not zones:
        return Decision.block(RULE_WINDOW, "unknown time zone for the number and the lead")
    if not _window_open(profile.window, zones, now):
        opening = next_window_opening(profile.window, zones, now)
        return Decision.block(RULE_WINDOW, f"outside the calling window in {', '.join(zones)}", opening)

    pressure = _contact_pressure(facts.history, profile, now)
    if pressure is not None:
        return pressure

    rules = request.campaign_rules
    if rules.max_attempts_per_lead is not None and request.lead_attempts >= rules.max_attempts_per_lead:
        return Decision.block(
            RULE_CAMPAIGN_ATTEMPTS, f"lead reached the campaign's {rules.max_attempts_per_lead} attempts"
        )
    if request.last_outcome is not None and request.last_attempt_at is not None:
        delay = rules.retry_delays.get(request.last_outcome)
        if delay is not None and request.last_attempt_at + delay > now:
            return Decision.block(
                RULE_CAMPAIGN_RETRY,
                f"campaign retry delay after {request.last_outcome} is {delay}",
                request.last_attempt_at + delay,
            )
    return Decision.allow()


def _contact_pressure(history: Sequence[ContactEvent], profile: Profile, now: datetime) -> Decision | None:
    # Lock-outs first: they are the longest and the most specific to what the person said or suffered.
    latest_end: datetime | None = None
    latest_kind = ""
    for event in history:
        span = profile.lockouts.get(event.kind)
        if span is None or event.at > now:
            continue
        end = event.at + span
        if end > now and (latest_end is None or end > latest_end):
            latest_end, latest_kind = end, event.kind
    if latest_end is not None:
        return Decision.block(
            RULE_LOCKOUT, f"locked out after {latest_kind} until {latest_end.isoformat()}", latest_end
        )

    attempts = sorted(e.at for e in history if e.kind == "attempt" and e.at <= now)
    if attempts and profile.min_gap > timedelta(0) and attempts[-1] + profile.min_gap > now:
        return Decision.block(
            RULE_MIN_GAP, f"last attempt less than {profile.min_gap} ago", attempts[-1] + profile.min_gap
        )

    if profile.max_attempts is not None:
        counted_kind = "attempt" if profile.pressure_counts == "attempts" else "contact"
        since = now - profile.pressure_period
        counted = sorted(e.at for e in history if e.kind == counted_kind and since < e.at <= now)
        if len(counted) >= profile.max_attempts:
            # Free again when enough of the counted events have left the rolling period.
            frees_at = counted[len(counted) - profile.max_attempts] + profile.pressure_period
            return Decision.block(
                RULE_PRESSURE,
                f"{len(counted)} {profile.pressure_counts} in {profile.pressure_period.days} days "
                f"(limit {profile.max_attempts})",
                frees_at,
            )
    return None
