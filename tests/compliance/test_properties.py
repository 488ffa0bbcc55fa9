"""Property tests: over random profiles, leads, clocks, zones, holidays and histories, the gate never
allows a call that the profile forbids, and agrees with a deliberately naive re-implementation of the
rules written here from the design (section 5), not from the production code.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import holidays
import phonenumbers
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from phonenumbers import timezone as pn_timezone

from dialer.compliance.audit import AuditEntry
from dialer.compliance.gate import ComplianceGate
from dialer.compliance.history import NumberKeyer
from dialer.compliance.profiles import ProfileSet, load_profiles
from dialer.domain.compliance import (
    CallingWindow,
    CallRequest,
    CampaignRules,
    ConsentRecord,
    ContactEvent,
    DncHit,
    Profile,
    RegistryRule,
    TimeRange,
)

SHIPPED = load_profiles()
NUMBERS = [
    "+33142123456",
    "+33612345678",
    "+12125551234",
    "+18005551234",
    "+442079460000",
    "+447911123456",
    "+61291234567",
    "+61412345678",
    "+15145551234",
    "+16045551234",
    "+4930123456",
    "+48221234567",
    "+861012345678",
    "+3314",
    "+999123",
    "0612345678",
]
ZONES = [
    "Europe/Paris",
    "America/New_York",
    "America/Los_Angeles",
    "Pacific/Honolulu",
    "Europe/London",
    "Australia/Sydney",
    "Australia/Perth",
    "America/Toronto",
    "America/Vancouver",
    "Asia/Shanghai",
    "Europe/Berlin",
    "Mars/Olympus",
    "Etc/Unknown",
]
OUTCOMES = ["refusal", "abandoned", "machine", "contact"]


# ------------------------------------------------------------------ the naive oracle


def _zone_ok(name: str) -> bool:
    try:
        ZoneInfo(name)
    except Exception:
        return False
    return name != "Etc/Unknown"


def _open(window: CallingWindow, zone: str, at: datetime) -> bool:
    local = at.astimezone(ZoneInfo(zone))
    day = local.date()
    on_holiday = window.holiday_country is not None and day in holidays.country_holidays(
        window.holiday_country, subdiv=window.holiday_subdivision, years=day.year
    )
    ranges = window.holidays if on_holiday else window.days[local.weekday()]
    minute = local.hour * 60 + local.minute
    return any(r.start <= minute < r.end for r in ranges)


def oracle_window_ok(
    number: str, lead_zones: Sequence[str] | None, window: CallingWindow, at: datetime
) -> bool:
    parsed = phonenumbers.parse(number)
    cands = [z for z in pn_timezone.time_zones_for_number(parsed) if _zone_ok(z)]
    stored = [z for z in (lead_zones or []) if _zone_ok(z)]
    if cands and all(_open(window, z, at) for z in cands):
        return True
    if not cands:
        return bool(stored) and all(_open(window, z, at) for z in stored)
    refined = [z for z in stored if z in cands]
    return bool(refined) and all(_open(window, z, at) for z in refined)


def oracle(
    req: CallRequest,
    dnc: Sequence[DncHit],
    screened: dict[str, date | None],
    history: Sequence[ContactEvent],
    p: Profile,
    registries: Sequence[RegistryRule],
    now: datetime,
) -> str | None:
    """The first rule (design order) that forbids the call, or None."""
    try:
        parsed = phonenumbers.parse(req.number_e164)
        valid = phonenumbers.is_valid_number(parsed) and req.number_e164 == phonenumbers.format_number(
            parsed, phonenumbers.PhoneNumberFormat.E164
        )
    except phonenumbers.NumberParseException:
        valid = False
    if not valid:
        return "number_valid"
    if any(h.expires_at is None or h.expires_at > now for h in dnc):
        return "dnc"
    region = phonenumbers.region_code_for_number(parsed)
    if p.registry_screening:
        for reg in registries:
            if region in reg.regions:
                day = screened.get(reg.name)
                if day is None or (now.date() - day).days > reg.max_age_days:
                    return "registry_stale"
    if p.consent_required_from is not None and now.date() >= p.consent_required_from:
        c = req.consent
        if c is None or not (
            c.given_at <= now
            and (c.revoked_at is None or c.revoked_at > now)
            and (c.expires_at is None or c.expires_at > now)
        ):
            return "consent"
    if not oracle_window_ok(req.number_e164, req.lead_timezones, p.window, now):
        return "calling_window"
    for e in history:
        lock = p.lockouts.get(e.kind)
        if lock is not None and e.at <= now < e.at + lock:
            return "lockout"
    if p.min_gap and any(e.kind == "attempt" and e.at <= now < e.at + p.min_gap for e in history):
        return "min_gap"
    if p.max_attempts is not None:
        kind = "attempt" if p.pressure_counts == "attempts" else "contact"
        if (
            sum(1 for e in history if e.kind == kind and now - p.pressure_period < e.at <= now)
            >= p.max_attempts
        ):
            return "contact_pressure"
    rules = req.campaign_rules
    if rules.max_attempts_per_lead is not None and req.lead_attempts >= rules.max_attempts_per_lead:
        return "campaign_max_attempts"
    if req.last_outcome is not None and req.last_attempt_at is not None:
        delay = rules.retry_delays.get(req.last_outcome)
        if delay is not None and now < req.last_attempt_at + delay:
            return "campaign_retry_delay"
    return None


# ------------------------------------------------------------------ in-memory stores for the gate


@dataclass
class MemoryDnc:
    hits: Sequence[DncHit]
    screened: dict[str, date | None]

    async def lookup(self, digits: int, campaign_id: str) -> list[DncHit]:
        return list(self.hits)

    async def registry_status(self) -> dict[str, date | None]:
        return self.screened


@dataclass
class MemoryHistory:
    events_: Sequence[ContactEvent]

    async def record(self, *args: object) -> None:
        raise AssertionError("not used")

    async def events(self, number_key: str, lead_id: str, since: datetime) -> Sequence[ContactEvent]:
        return [e for e in self.events_ if e.at > since]


@dataclass
class MemoryAudit:
    entries: list[AuditEntry] = field(default_factory=list)
    healthy: bool = True

    def record(self, entry: AuditEntry) -> None:
        self.entries.append(entry)

    async def close(self) -> None:
        return None


# ------------------------------------------------------------------ strategies

minutes = st.integers(0, 24 * 60)


@st.composite
def ranges(draw: st.DrawFn) -> tuple[TimeRange, ...]:
    out = []
    for _ in range(draw(st.integers(0, 3))):
        a, b = sorted(draw(st.lists(minutes, min_size=2, max_size=2, unique=True)))
        out.append(TimeRange(a, b))
    return tuple(sorted(out))


@st.composite
def random_profile(draw: st.DrawFn) -> Profile:
    window = CallingWindow(
        tuple(draw(ranges()) for _ in range(7)),
        draw(ranges()),
        draw(st.sampled_from([None, "FR", "GB", "AU", "US", "DE", "CN"])),
    )
    lockouts = {
        k: timedelta(hours=draw(st.integers(1, 24 * 90))) for k in draw(st.sets(st.sampled_from(OUTCOMES)))
    }
    return Profile(
        code="RANDOM",
        window=window,
        consent_required_from=draw(st.none() | st.dates(date(2024, 1, 1), date(2028, 12, 31))),
        max_attempts=draw(st.none() | st.integers(1, 6)),
        pressure_period=timedelta(days=draw(st.integers(1, 45))),
        pressure_counts=draw(st.sampled_from(["attempts", "contacts"])),
        min_gap=timedelta(hours=draw(st.integers(0, 72))),
        lockouts=lockouts,
        registry_screening=draw(st.booleans()),
    )


profiles_st = st.sampled_from(sorted(SHIPPED.profiles.values(), key=lambda p: p.code)) | random_profile()
instants = st.datetimes(datetime(2024, 1, 1), datetime(2028, 12, 31), timezones=st.just(UTC))


@st.composite
def scenario(
    draw: st.DrawFn,
) -> tuple[CallRequest, list[DncHit], dict[str, date | None], list[ContactEvent], Profile, datetime]:
    now = draw(instants)
    profile = draw(profiles_st)
    offsets = st.integers(-90 * 24 * 60, 60).map(lambda m: now + timedelta(minutes=m))
    history = draw(
        st.lists(st.builds(ContactEvent, st.sampled_from(["attempt", *OUTCOMES]), offsets), max_size=8)
    )
    # Weighted so that every rule, and "allowed", is reached often.
    dnc = []
    if draw(st.integers(0, 5)) == 0:
        dnc.append(draw(st.builds(DncHit, st.just("global"), st.just("agent"), st.none() | offsets)))
    screened: dict[str, date | None] = {
        name: None if draw(st.integers(0, 30)) == 0 else now.date() - timedelta(days=draw(st.integers(0, 33)))
        for name in SHIPPED.registries
    }
    consent = draw(
        st.none()
        | st.builds(ConsentRecord, offsets, st.just("form"), st.none() | offsets, st.none() | offsets)
    )
    retry = {
        k: timedelta(hours=draw(st.integers(0, 48)))
        for k in draw(st.sets(st.sampled_from(["busy", "no_answer"])))
    }
    rules = CampaignRules(
        "RANDOM", max_attempts_per_lead=draw(st.none() | st.integers(1, 10)), retry_delays=retry
    )
    req = CallRequest(
        number_e164=draw(st.sampled_from(NUMBERS[:-3] * 4 + NUMBERS[-3:])),
        lead_id="lead",
        campaign_id="camp",
        campaign_rules=rules,
        lead_timezones=draw(st.none() | st.lists(st.sampled_from(ZONES), max_size=2)),
        consent=consent,
        lead_attempts=draw(st.integers(0, 12)),
        last_outcome=draw(st.none() | st.sampled_from(["busy", "no_answer", "sale"])),
        last_attempt_at=draw(st.none() | offsets),
    )
    return req, dnc, screened, history, profile, now


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario())
def test_gate_never_allows_a_call_the_profile_forbids(
    case: tuple[CallRequest, list[DncHit], dict[str, date | None], list[ContactEvent], Profile, datetime],
) -> None:
    req, dnc, screened, history, profile, now = case
    audit = MemoryAudit()
    gate = ComplianceGate(
        ProfileSet({"RANDOM": profile}, SHIPPED.registries),
        MemoryDnc(dnc, screened),  # type: ignore[arg-type]
        MemoryHistory(history),
        audit,
        NumberKeyer(b"k" * 32),
    )
    decision = asyncio.run(gate.check(req, now))
    event(decision.rule)
    expected = oracle(req, dnc, screened, history, profile, list(SHIPPED.registries.values()), now)
    if expected is not None:
        assert not decision.allowed, f"allowed a call the profile forbids by {expected}"
    assert decision.rule == (expected or "allowed"), decision.reason
    assert [(e.decision, e.rule) for e in audit.entries] == [
        ("allow" if decision.allowed else "block", decision.rule)
    ]
    if decision.retry_after is not None:
        assert decision.retry_after > now
        if decision.rule == "calling_window":
            assert oracle_window_ok(req.number_e164, req.lead_timezones, profile.window, decision.retry_after)
        elif decision.rule in ("lockout", "min_gap", "contact_pressure", "campaign_retry_delay") and all(
            e.at <= now for e in history
        ):
            # The rule that blocked no longer blocks at retry_after (another one may), unless events
            # stamped in the future (clock skew between nodes) come into play by then.
            later = oracle(
                req,
                [],
                {k: decision.retry_after.date() for k in screened},
                history,
                _always_open(profile),
                list(SHIPPED.registries.values()),
                decision.retry_after,
            )
            assert later != decision.rule


def _always_open(profile: Profile) -> Profile:
    from dataclasses import replace

    full = (TimeRange(0, 24 * 60),)
    return replace(profile, window=CallingWindow((full,) * 7, full, None), consent_required_from=None)
