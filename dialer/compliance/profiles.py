"""Jurisdiction profiles from TOML: the shipped legal figures plus the operator's overrides.

The shipped file (``profiles.toml`` next to this module) holds every figure with its source.  An
operator file may add custom profiles or tighten shipped ones; a figure that loosens a shipped
profile stops the load with a message naming it, so a dialer never starts on weaker rules.

A custom profile is a tighten-only variant of a known one, named with ``base = "FR"``: it keeps
every figure of its base (consent, lock-outs, registries, caps) that it does not tighten, so a
new name can never be a way around the law.  Only ``CUSTOM-<name>`` profiles stand alone, with
every figure given, for what no shipped profile covers (the demo's simulated calls).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from importlib import resources
from pathlib import Path
from typing import Any, cast

from dialer.domain.compliance import (
    DAY_NAMES,
    OUTCOME_KINDS,
    CallingWindow,
    CampaignRules,
    Profile,
    ProfileError,
    ProfileOverrides,
    RegistryRule,
    TimeRange,
    tighten,
)

_DURATION = re.compile(r"^\s*(\d+)\s*([dhm])\s*$")


def parse_duration(value: object, where: str) -> timedelta:
    """``"30d"``, ``"72h"``, ``"90m"`` -> timedelta."""
    match = _DURATION.match(value) if isinstance(value, str) else None
    if match is None:
        raise ProfileError(f"{where}: {value!r} is not a duration; write e.g. '30d', '72h' or '90m'")
    amount, unit = int(match.group(1)), match.group(2)
    return {"d": timedelta(days=amount), "h": timedelta(hours=amount), "m": timedelta(minutes=amount)}[unit]


def _ranges(value: object, where: str) -> tuple[TimeRange, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ProfileError(f'{where}: expected a list like ["10:00-13:00"], got {value!r}')
    try:
        return tuple(sorted(TimeRange.parse(v) for v in value))
    except ProfileError as exc:
        raise ProfileError(f"{where}: {exc}") from exc


def _window(section: Mapping[str, Any], where: str, base: CallingWindow | None) -> CallingWindow | None:
    raw = section.get("window")
    country = section.get("holiday_country", base.holiday_country if base else None)
    subdivision = section.get("holiday_subdivision", base.holiday_subdivision if base else None)
    if (
        raw is None
        and base is not None
        and (country, subdivision) == (base.holiday_country, base.holiday_subdivision)
    ):
        return None
    raw = dict(raw or {})
    unknown = set(raw) - {*DAY_NAMES, "holidays"}
    if unknown:
        raise ProfileError(
            f"{where}.window: unknown key(s) {sorted(unknown)}; use {', '.join(DAY_NAMES)}, holidays"
        )
    if base is None:
        missing = [d for d in DAY_NAMES if d not in raw]
        if missing:
            raise ProfileError(f"{where}.window: give the ranges for {', '.join(missing)} ([] for no calls)")
    days = tuple(
        _ranges(raw[d], f"{where}.window.{d}") if d in raw else cast(CallingWindow, base).days[i]
        for i, d in enumerate(DAY_NAMES)
    )
    holiday_ranges = (
        _ranges(raw["holidays"], f"{where}.window.holidays")
        if "holidays" in raw
        else (base.holidays if base else ())
    )
    return CallingWindow(days, holiday_ranges, country, subdivision)


def _date(value: object, where: str) -> date:
    if isinstance(value, date):
        return value
    raise ProfileError(f"{where}: {value!r} is not a date; write it as 2026-08-11 (no quotes)")


_PROFILE_KEYS = {
    "window",
    "holiday_country",
    "holiday_subdivision",
    "consent_required_from",
    "consent_required",
    "max_attempts",
    "pressure_period",
    "pressure_counts",
    "min_gap",
    "lockout",
    "registry_screening",
    "abandon_rate_cap",
    "abandon_window",
    "recording_announcement",
}


def _lockouts(section: Mapping[str, Any], where: str) -> dict[str, timedelta]:
    raw = section.get("lockout", {})
    if not isinstance(raw, dict):
        raise ProfileError(f'{where}.lockout: expected a table like lockout.refusal = "60d"')
    out = {}
    for kind, value in raw.items():
        if kind not in OUTCOME_KINDS:
            raise ProfileError(
                f"{where}.lockout.{kind}: not an outcome; use one of {', '.join(OUTCOME_KINDS)}"
            )
        out[kind] = parse_duration(value, f"{where}.lockout.{kind}")
    return out


def build_profile(code: str, section: Mapping[str, Any]) -> Profile:
    """A complete profile from one TOML section."""
    where = f"profiles.{code}"
    unknown = set(section) - _PROFILE_KEYS
    if unknown:
        raise ProfileError(f"{where}: unknown key(s) {sorted(unknown)}")
    window = _window(section, where, None)
    assert window is not None
    counts = section.get("pressure_counts", "attempts")
    if counts not in ("attempts", "contacts"):
        raise ProfileError(f'{where}.pressure_counts: {counts!r}; use "attempts" or "contacts"')
    max_attempts = section.get("max_attempts")
    if max_attempts is not None and (not isinstance(max_attempts, int) or max_attempts < 1):
        raise ProfileError(f"{where}.max_attempts: {max_attempts!r} must be a positive whole number")
    consent_from = section.get("consent_required_from")
    abandon_window = section.get("abandon_window")
    cap = section.get("abandon_rate_cap")
    if cap is not None and not (isinstance(cap, int | float) and 0 <= cap <= 1):
        raise ProfileError(f"{where}.abandon_rate_cap: {cap!r} must be a fraction such as 0.03")
    return Profile(
        code=code,
        window=window,
        consent_required_from=_date(consent_from, f"{where}.consent_required_from") if consent_from else None,
        max_attempts=max_attempts,
        pressure_period=parse_duration(section.get("pressure_period", "30d"), f"{where}.pressure_period"),
        pressure_counts=counts,
        min_gap=parse_duration(section.get("min_gap", "0m"), f"{where}.min_gap"),
        lockouts=_lockouts(section, where),
        registry_screening=bool(section.get("registry_screening", True)),
        abandon_rate_cap=float(cap) if cap is not None else None,
        abandon_window=parse_duration(abandon_window, f"{where}.abandon_window") if abandon_window else None,
        recording_announcement=bool(section.get("recording_announcement", False)),
    )


def build_overrides(base: Profile, section: Mapping[str, Any], where: str) -> ProfileOverrides:
    """The tightenings a TOML section (operator file or campaign) asks of ``base``."""
    unknown = set(section) - _PROFILE_KEYS - {"profile"}
    if unknown:
        raise ProfileError(f"{where}: unknown key(s) {sorted(unknown)}")
    if "registry_screening" in section and not section["registry_screening"] and base.registry_screening:
        raise ProfileError(f"{where}.registry_screening=false loosens profile {base.code}")
    if (
        "recording_announcement" in section
        and not section["recording_announcement"]
        and base.recording_announcement
    ):
        raise ProfileError(f"{where}.recording_announcement=false loosens profile {base.code}")
    if "pressure_counts" in section and section["pressure_counts"] != base.pressure_counts:
        raise ProfileError(
            f"{where}.pressure_counts cannot change profile {base.code}'s {base.pressure_counts}"
        )
    consent_from: date | None = None
    if "consent_required_from" in section:
        consent_from = _date(section["consent_required_from"], f"{where}.consent_required_from")
    if "consent_required" in section:
        if section["consent_required"] is True:
            consent_from = date.min
        elif base.consent_required_from is not None:
            raise ProfileError(
                f"{where}.consent_required=false loosens profile {base.code}, which requires consent from "
                f"{base.consent_required_from.isoformat()}"
            )
    return ProfileOverrides(
        window=_window(section, where, base.window),
        consent_required_from=consent_from,
        max_attempts=section.get("max_attempts"),
        pressure_period=parse_duration(section["pressure_period"], f"{where}.pressure_period")
        if "pressure_period" in section
        else None,
        min_gap=parse_duration(section["min_gap"], f"{where}.min_gap") if "min_gap" in section else None,
        lockouts=_lockouts(section, where),
        abandon_rate_cap=section.get("abandon_rate_cap"),
        recording_announcement=section.get("recording_announcement") is True,
    )


@dataclass(frozen=True)
class ProfileSet:
    """All profiles and registries the gate knows, by code."""

    profiles: Mapping[str, Profile]
    registries: Mapping[str, RegistryRule] = field(default_factory=dict)

    def get(self, code: str) -> Profile:
        try:
            return self.profiles[code]
        except KeyError:
            raise ProfileError(
                f"no compliance profile {code!r}; known: {', '.join(sorted(self.profiles))}"
            ) from None

    def for_campaign(self, rules: CampaignRules) -> Profile:
        """The campaign's profile with its tightenings; ProfileError names a loosening figure."""
        return tighten(self.get(rules.profile), rules.overrides)


def _read(path: Path | None) -> dict[str, Any]:
    if path is None:
        text = resources.files("dialer.compliance").joinpath("profiles.toml").read_text(encoding="utf-8")
        return tomllib.loads(text)
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{path}: not valid TOML ({exc}); fix the file") from exc
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read it ({exc.strerror})") from exc


def _registries(data: Mapping[str, Any], source: str) -> dict[str, RegistryRule]:
    out = {}
    for name, section in data.get("registries", {}).items():
        regions = section.get("regions")
        age = section.get("max_age_days")
        if not isinstance(regions, list) or not isinstance(age, int) or age < 1:
            raise ProfileError(f"{source}: registries.{name} needs regions = [..] and max_age_days = N")
        out[name] = RegistryRule(name, tuple(regions), age)
    return out


def load_profiles(extra: Sequence[Path] = ()) -> ProfileSet:
    """The shipped profiles, then each operator file in order (custom profiles, tightenings)."""
    shipped = _read(None)
    profiles = {code: build_profile(code, section) for code, section in shipped.get("profiles", {}).items()}
    registries = _registries(shipped, "shipped profiles")
    for path in extra:
        data = _read(path)
        for name, rule in _registries(data, str(path)).items():
            if name in registries and rule.max_age_days > registries[name].max_age_days:
                raise ProfileError(
                    f"{path}: registries.{name}.max_age_days {rule.max_age_days} is longer than the "
                    f"law's {registries[name].max_age_days}"
                )
            registries[name] = rule
        for code, section in data.get("profiles", {}).items():
            if code in profiles:
                where = f"{path}: profiles.{code}"
                profiles[code] = tighten(profiles[code], build_overrides(profiles[code], section, where))
            else:
                profiles[code] = _custom_profile(code, section, profiles, path)
    return ProfileSet(profiles, registries)


def _custom_profile(
    code: str, section: Mapping[str, Any], known: Mapping[str, Profile], path: Path
) -> Profile:
    """A new profile of an operator file: its base tightened, or (``CUSTOM-<name>``) all its own."""
    where = f"{path}: profiles.{code}"
    base_code = section.get("base")
    if base_code is None:
        if code == "CUSTOM" or code.startswith("CUSTOM-"):
            return build_profile(code, section)
        raise ProfileError(
            f'{where}: a custom profile tightens a known one; name it with base = "FR" (one of '
            f"{', '.join(sorted(known))}), or call it CUSTOM-<name> and give every figure yourself"
        )
    if not isinstance(base_code, str) or base_code not in known:
        raise ProfileError(
            f"{where}.base: {base_code!r} is not a known profile; one of {', '.join(sorted(known))}"
        )
    base = known[base_code]
    figures = {k: v for k, v in section.items() if k != "base"}
    overrides = build_overrides(base, figures, where)
    try:
        tightened = tighten(base, overrides)
    except ProfileError as exc:
        raise ProfileError(f"{where}: {exc}") from exc
    return replace(tightened, code=code)


def campaign_rules_from_mapping(
    data: Mapping[str, Any], profiles: ProfileSet, where: str = "campaign"
) -> CampaignRules:
    """Campaign compliance settings from config (``profile = "FR"``, tightenings, retry delays), validated."""
    code = data.get("profile")
    if not isinstance(code, str):
        raise ProfileError(f'{where}.profile: name the jurisdiction profile, e.g. profile = "FR"')
    base = profiles.get(code)
    figures = {k: v for k, v in data.items() if k not in ("profile", "max_attempts_per_lead", "retry_delay")}
    overrides = build_overrides(base, figures, where)
    tighten(base, overrides)  # refuse a loosening now, not at the first call
    per_lead = data.get("max_attempts_per_lead")
    delays = {
        k: parse_duration(v, f"{where}.retry_delay.{k}") for k, v in data.get("retry_delay", {}).items()
    }
    return CampaignRules(code, overrides, per_lead, delays)
