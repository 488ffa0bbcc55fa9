"""Each shipped jurisdiction profile decides as its law says, around DST changes and public holidays."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from dialer.compliance.profiles import ProfileSet, campaign_rules_from_mapping, load_profiles
from dialer.domain.compliance import (
    RULE_ALLOWED,
    RULE_CONSENT,
    RULE_LOCKOUT,
    RULE_NUMBER,
    RULE_PRESSURE,
    RULE_REGISTRY,
    RULE_WINDOW,
    CallRequest,
    ContactEvent,
    Decision,
    Facts,
    ProfileError,
    decide,
)

from .conftest import CONSENT, facts, local, request

PARIS, NEW_YORK, LONDON = "Europe/Paris", "America/New_York", "Europe/London"
FR_NUMBER, US_NUMBER, UK_NUMBER = "+33142123456", "+12125551234", "+442079460000"
CA_NUMBER, AU_LANDLINE, AU_MOBILE = "+15145551234", "+61291234567", "+61412345678"
DE_NUMBER, PL_NUMBER, CN_NUMBER = "+4930123456", "+48221234567", "+861012345678"


def run(profiles: ProfileSet, req: CallRequest, now: datetime, fx: Facts | None = None) -> Decision:
    rules = req.campaign_rules
    return decide(
        req, fx or facts(profiles, now), profiles.for_campaign(rules), now, profiles.registries.values()
    )


def test_every_shipped_profile_loads(profiles: ProfileSet) -> None:
    assert set(profiles.profiles) >= {"FR", "US", "UK", "CA", "AU", "DE", "PL", "CN"}


# ------------------------------------------------------------------ FR


def test_fr_window_follows_paris_time_across_the_spring_dst_change(profiles: ProfileSet) -> None:
    # Europe moved to summer time on Sunday 2026-03-29: 10:30 in Paris is 09:30 UTC before, 08:30 after.
    assert run(profiles, request(FR_NUMBER, "FR"), datetime(2026, 3, 27, 9, 30, tzinfo=UTC)).allowed
    assert not run(profiles, request(FR_NUMBER, "FR"), datetime(2026, 3, 27, 8, 30, tzinfo=UTC)).allowed
    assert run(profiles, request(FR_NUMBER, "FR"), datetime(2026, 3, 31, 8, 30, tzinfo=UTC)).allowed
    late = run(profiles, request(FR_NUMBER, "FR"), datetime(2026, 3, 31, 18, 0, tzinfo=UTC))  # 20:00 Paris
    assert late.rule == RULE_WINDOW
    assert late.retry_after == local(PARIS, 2026, 4, 1, 10, 0)


def test_fr_lunch_break_and_weekend_are_closed_with_the_next_opening(profiles: ProfileSet) -> None:
    lunch = run(profiles, request(FR_NUMBER, "FR"), local(PARIS, 2026, 6, 2, 13, 30))
    assert (lunch.rule, lunch.retry_after) == (RULE_WINDOW, local(PARIS, 2026, 6, 2, 14, 0))
    saturday = run(profiles, request(FR_NUMBER, "FR"), local(PARIS, 2026, 6, 6, 11, 0))
    assert (saturday.rule, saturday.retry_after) == (RULE_WINDOW, local(PARIS, 2026, 6, 8, 10, 0))


def test_fr_public_holiday_is_closed(profiles: ProfileSet) -> None:
    bastille = run(profiles, request(FR_NUMBER, "FR"), local(PARIS, 2026, 7, 14, 11, 0))  # a Tuesday
    assert (bastille.rule, bastille.retry_after) == (RULE_WINDOW, local(PARIS, 2026, 7, 15, 10, 0))
    assert run(profiles, request(FR_NUMBER, "FR"), local(PARIS, 2026, 7, 15, 11, 0)).allowed


def test_fr_four_attempts_in_thirty_days_count_unanswered_calls(profiles: ProfileSet) -> None:
    now = local(PARIS, 2026, 6, 10, 11, 0)
    history = [ContactEvent("attempt", now - timedelta(days=d)) for d in (2, 5, 9, 20)]
    blocked = run(profiles, request(FR_NUMBER, "FR"), now, facts(profiles, now, history=history))
    assert blocked.rule == RULE_PRESSURE
    assert blocked.retry_after == now - timedelta(days=20) + timedelta(days=30)
    three = run(profiles, request(FR_NUMBER, "FR"), now, facts(profiles, now, history=history[:3]))
    assert three.allowed


def test_fr_refusal_locks_the_person_out_for_sixty_days(profiles: ProfileSet) -> None:
    now = local(PARIS, 2026, 6, 10, 11, 0)
    refused = now - timedelta(days=59)
    history = [ContactEvent("refusal", refused, "other-campaign")]
    blocked = run(profiles, request(FR_NUMBER, "FR"), now, facts(profiles, now, history=history))
    assert (blocked.rule, blocked.retry_after) == (RULE_LOCKOUT, refused + timedelta(days=60))
    later = now + timedelta(days=1)
    assert run(profiles, request(FR_NUMBER, "FR"), later, facts(profiles, later, history=history)).allowed


def test_fr_requires_consent_from_2026_08_11(profiles: ProfileSet) -> None:
    before = local(PARIS, 2026, 8, 10, 11, 0)
    after = local(PARIS, 2026, 8, 11, 11, 0)
    assert run(profiles, request(FR_NUMBER, "FR"), before).allowed
    assert run(profiles, request(FR_NUMBER, "FR"), after).rule == RULE_CONSENT
    assert run(profiles, request(FR_NUMBER, "FR", consent=CONSENT), after).allowed


def test_stale_bloctel_import_fails_closed_for_french_numbers_only(profiles: ProfileSet) -> None:
    now = local(PARIS, 2026, 6, 10, 11, 0)
    old = {name: now.date() for name in profiles.registries} | {"bloctel": now.date() - timedelta(days=31)}
    decision = run(profiles, request(FR_NUMBER, "FR"), now, Facts(registry_screened_on=old))
    assert (decision.rule, decision.reason) == (RULE_REGISTRY, "registry stale, re-import (bloctel)")
    us_now = local(NEW_YORK, 2026, 6, 10, 11, 0)
    assert run(profiles, request(US_NUMBER, "US"), us_now, Facts(registry_screened_on=old)).allowed


def test_never_imported_registry_blocks(profiles: ProfileSet) -> None:
    now = local(NEW_YORK, 2026, 6, 10, 11, 0)
    assert run(profiles, request(US_NUMBER, "US"), now, Facts()).rule == RULE_REGISTRY


# ------------------------------------------------------------------ US


def test_us_window_is_eight_to_nine_local_across_the_us_dst_change(profiles: ProfileSet) -> None:
    # US summer time started Sunday 2026-03-08: 08:30 in New York is 13:30 UTC before, 12:30 after.
    assert run(profiles, request(US_NUMBER, "US"), datetime(2026, 3, 6, 13, 30, tzinfo=UTC)).allowed
    assert not run(profiles, request(US_NUMBER, "US"), datetime(2026, 3, 6, 12, 30, tzinfo=UTC)).allowed
    assert run(profiles, request(US_NUMBER, "US"), datetime(2026, 3, 9, 12, 30, tzinfo=UTC)).allowed
    assert run(profiles, request(US_NUMBER, "US"), local(NEW_YORK, 2026, 7, 4, 20, 59)).allowed  # holiday
    late = run(profiles, request(US_NUMBER, "US"), local(NEW_YORK, 2026, 7, 4, 21, 0))
    assert (late.rule, late.retry_after) == (RULE_WINDOW, local(NEW_YORK, 2026, 7, 5, 8, 0))


def test_us_abandonment_cap_is_three_percent_over_thirty_days(profiles: ProfileSet) -> None:
    us = profiles.get("US")
    assert us.abandon_rate_cap == 0.03
    assert us.abandon_window == timedelta(days=30)


# ------------------------------------------------------------------ UK


def test_uk_bank_holiday_and_sunday_are_closed(profiles: ProfileSet) -> None:
    assert run(profiles, request(UK_NUMBER, "UK"), local(LONDON, 2026, 5, 4, 12, 0)).rule == RULE_WINDOW
    assert run(profiles, request(UK_NUMBER, "UK"), local(LONDON, 2026, 5, 3, 12, 0)).rule == RULE_WINDOW
    assert run(profiles, request(UK_NUMBER, "UK"), local(LONDON, 2026, 5, 5, 12, 0)).allowed


def test_uk_dst_change_moves_the_window_in_utc(profiles: ProfileSet) -> None:
    # UK summer time started Sunday 2026-03-29: 08:30 London is 08:30 UTC before, 07:30 UTC after.
    assert run(profiles, request(UK_NUMBER, "UK"), datetime(2026, 3, 27, 8, 30, tzinfo=UTC)).allowed
    assert run(profiles, request(UK_NUMBER, "UK"), datetime(2026, 3, 30, 7, 30, tzinfo=UTC)).allowed
    assert not run(profiles, request(UK_NUMBER, "UK"), datetime(2026, 3, 27, 7, 30, tzinfo=UTC)).allowed


def test_uk_abandoned_call_locks_72_hours_and_machine_24_hours(profiles: ProfileSet) -> None:
    now = local(LONDON, 2026, 6, 10, 12, 0)
    abandoned = [ContactEvent("abandoned", now - timedelta(hours=71))]
    d = run(profiles, request(UK_NUMBER, "UK"), now, facts(profiles, now, history=abandoned))
    assert (d.rule, d.retry_after) == (RULE_LOCKOUT, now + timedelta(hours=1))
    machine = [ContactEvent("machine", now - timedelta(hours=23))]
    d = run(profiles, request(UK_NUMBER, "UK"), now, facts(profiles, now, history=machine))
    assert (d.rule, d.retry_after) == (RULE_LOCKOUT, now + timedelta(hours=1))
    gone = [ContactEvent("machine", now - timedelta(hours=25))]
    assert run(profiles, request(UK_NUMBER, "UK"), now, facts(profiles, now, history=gone)).allowed


# ------------------------------------------------------------------ CA


def test_ca_weekday_and_weekend_hours(profiles: ProfileSet) -> None:
    tz = "America/Toronto"
    assert run(profiles, request(CA_NUMBER, "CA"), local(tz, 2026, 6, 10, 21, 29)).allowed
    assert run(profiles, request(CA_NUMBER, "CA"), local(tz, 2026, 6, 10, 21, 30)).rule == RULE_WINDOW
    assert run(profiles, request(CA_NUMBER, "CA"), local(tz, 2026, 6, 13, 9, 59)).rule == RULE_WINDOW
    saturday = run(profiles, request(CA_NUMBER, "CA"), local(tz, 2026, 6, 13, 18, 0))
    assert (saturday.rule, saturday.retry_after) == (RULE_WINDOW, local(tz, 2026, 6, 14, 10, 0))
    # Canada changed to summer time on 2026-03-08 like the US.
    assert run(profiles, request(CA_NUMBER, "CA"), datetime(2026, 3, 9, 13, 0, tzinfo=UTC)).allowed
    assert not run(profiles, request(CA_NUMBER, "CA"), datetime(2026, 3, 6, 13, 0, tzinfo=UTC)).allowed


# ------------------------------------------------------------------ AU


def test_au_never_on_sunday_or_national_holiday(profiles: ProfileSet) -> None:
    tz = "Australia/Sydney"
    assert (
        run(profiles, request(AU_LANDLINE, "AU"), local(tz, 2026, 4, 3, 12, 0)).rule == RULE_WINDOW
    )  # Good Friday
    assert (
        run(profiles, request(AU_LANDLINE, "AU"), local(tz, 2026, 4, 5, 12, 0)).rule == RULE_WINDOW
    )  # Sunday
    assert run(profiles, request(AU_LANDLINE, "AU"), local(tz, 2026, 4, 4, 16, 59)).allowed  # Saturday
    assert run(profiles, request(AU_LANDLINE, "AU"), local(tz, 2026, 4, 4, 17, 0)).rule == RULE_WINDOW


def test_au_dst_end_shifts_the_window(profiles: ProfileSet) -> None:
    # Sydney left summer time on Sunday 2026-04-05: 09:30 is 22:30 UTC (prev day) before, 23:30 after.
    assert run(profiles, request(AU_LANDLINE, "AU"), datetime(2026, 4, 1, 22, 30, tzinfo=UTC)).allowed
    assert run(profiles, request(AU_LANDLINE, "AU"), datetime(2026, 4, 6, 23, 30, tzinfo=UTC)).allowed
    assert not run(profiles, request(AU_LANDLINE, "AU"), datetime(2026, 4, 6, 22, 30, tzinfo=UTC)).allowed


def test_au_mobile_must_be_inside_the_window_in_every_candidate_zone(profiles: ProfileSet) -> None:
    now = local("Australia/Sydney", 2026, 6, 10, 10, 0)  # 08:00 in Perth
    assert run(profiles, request(AU_MOBILE, "AU"), now).rule == RULE_WINDOW
    assert run(profiles, request(AU_MOBILE, "AU", lead_timezones=["Australia/Sydney"]), now).allowed
    # A stored zone the numbering plan does not allow is ignored.
    assert not run(profiles, request(AU_MOBILE, "AU", lead_timezones=["Europe/Paris"]), now).allowed


def test_unknown_zone_means_no_call(profiles: ProfileSet) -> None:
    # Toll-free numbers span every North American zone; at 20:00 New York it is 00:00 in Guam.
    now = local(NEW_YORK, 2026, 6, 10, 20, 0)
    assert run(profiles, request("+18005551234", "US"), now).rule == RULE_WINDOW
    assert run(profiles, request("+18005551234", "US", lead_timezones=[NEW_YORK]), now).allowed
    bogus = run(profiles, request("+18005551234", "US", lead_timezones=["Mars/Olympus"]), now)
    assert bogus.rule == RULE_WINDOW


# ------------------------------------------------------------------ DE, PL, CN


@pytest.mark.parametrize(
    ("number", "code", "zone"),
    [
        (DE_NUMBER, "DE", "Europe/Berlin"),
        (PL_NUMBER, "PL", "Europe/Warsaw"),
        (CN_NUMBER, "CN", "Asia/Shanghai"),
    ],
)
def test_consent_jurisdictions_block_leads_without_consent(
    profiles: ProfileSet, number: str, code: str, zone: str
) -> None:
    now = local(zone, 2026, 6, 10, 11, 0)
    assert run(profiles, request(number, code), now).rule == RULE_CONSENT
    revoked = CONSENT.__class__(CONSENT.given_at, "form", revoked_at=now - timedelta(days=1))
    assert run(profiles, request(number, code, consent=revoked), now).rule == RULE_CONSENT
    assert run(profiles, request(number, code, consent=CONSENT), now).allowed


def test_de_and_cn_public_holidays_are_closed(profiles: ProfileSet) -> None:
    unity = local("Europe/Berlin", 2026, 10, 3, 11, 0)  # Tag der Deutschen Einheit (Saturday)
    assert run(profiles, request(DE_NUMBER, "DE", consent=CONSENT), unity).rule == RULE_WINDOW
    whit_monday = local("Europe/Berlin", 2026, 5, 25, 11, 0)
    assert run(profiles, request(DE_NUMBER, "DE", consent=CONSENT), whit_monday).rule == RULE_WINDOW
    spring_festival = local("Asia/Shanghai", 2026, 2, 17, 10, 0)  # Tuesday
    assert run(profiles, request(CN_NUMBER, "CN", consent=CONSENT), spring_festival).rule == RULE_WINDOW


# ------------------------------------------------------------------ numbers and campaign tightening


@pytest.mark.parametrize("number", ["0142123456", "+33 1 42 12 34 56", "+3314", "+999123", ""])
def test_invalid_numbers_are_refused(profiles: ProfileSet, number: str) -> None:
    now = local(PARIS, 2026, 6, 10, 11, 0)
    assert run(profiles, request(number, "FR"), now).rule == RULE_NUMBER


def test_campaign_may_tighten_its_profile(profiles: ProfileSet) -> None:
    rules = campaign_rules_from_mapping(
        {
            "profile": "FR",
            "max_attempts": 2,
            "window": {"mon": ["10:00-12:00"]},
            "lockout": {"refusal": "90d"},
        },
        profiles,
    )
    monday = local(PARIS, 2026, 6, 8, 12, 30)
    assert run(profiles, request(FR_NUMBER, "FR", rules=rules), monday).rule == RULE_WINDOW
    assert run(profiles, request(FR_NUMBER, "FR"), monday).allowed
    now = local(PARIS, 2026, 6, 9, 12, 30)
    two = [ContactEvent("attempt", now - timedelta(days=d)) for d in (3, 6)]
    d = run(profiles, request(FR_NUMBER, "FR", rules=rules), now, facts(profiles, now, history=two))
    assert d.rule == RULE_PRESSURE


@pytest.mark.parametrize(
    ("override", "figure"),
    [
        ({"max_attempts": 5}, "max_attempts"),
        ({"window": {"sat": ["10:00-12:00"]}}, "window.sat"),
        ({"window": {"mon": ["09:00-13:00"]}}, "window.mon"),
        ({"lockout": {"refusal": "30d"}}, "lockout refusal"),
        ({"pressure_period": "7d"}, "pressure_period"),
        ({"consent_required": False}, "consent_required"),
        ({"min_gap": "1h"}, "min_gap"),
    ],
)
def test_campaign_override_that_loosens_the_profile_is_refused(
    profiles: ProfileSet, override: dict[str, object], figure: str
) -> None:
    with pytest.raises(ProfileError, match=figure):
        campaign_rules_from_mapping({"profile": "FR", **override}, profiles)


def test_operator_file_cannot_loosen_a_shipped_profile(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "p.toml"
    path.write_text("[profiles.FR]\nmax_attempts = 10\n", encoding="utf-8")
    with pytest.raises(ProfileError, match="max_attempts 10 exceeds profile FR"):
        load_profiles([path])
    path.write_text("[registries.tps]\nregions=['GB']\nmax_age_days = 60\n", encoding="utf-8")
    with pytest.raises(ProfileError, match="max_age_days 60"):
        load_profiles([path])


def test_shipped_operator_example_loads() -> None:
    from pathlib import Path

    example = Path(__file__).resolve().parents[2] / "config" / "compliance" / "profiles.toml"
    loaded = load_profiles([example])
    assert loaded.get("FR").window.holiday_subdivision == "57"
    assert loaded.get("CARE_FR").max_attempts == 2


def test_unknown_profile_names_the_known_ones(profiles: ProfileSet) -> None:
    with pytest.raises(ProfileError, match="no compliance profile 'XX'; known: AU, CA"):
        profiles.get("XX")


def test_allowed_decision_names_no_blocking_rule(profiles: ProfileSet) -> None:
    d = run(profiles, request(FR_NUMBER, "FR"), local(PARIS, 2026, 6, 10, 11, 0))
    assert (d.allowed, d.rule, d.retry_after) == (True, RULE_ALLOWED, None)
    assert date(2026, 6, 10).weekday() == 2


def test_pl_independence_day_and_dst_end(profiles: ProfileSet) -> None:
    warsaw = "Europe/Warsaw"
    assert run(
        profiles, request(PL_NUMBER, "PL", consent=CONSENT), local(warsaw, 2026, 11, 11, 12, 0)
    ).rule == (RULE_WINDOW)
    # Poland left summer time on Sunday 2026-10-25: 09:30 Warsaw is 07:30 UTC before, 08:30 after.
    assert run(
        profiles, request(PL_NUMBER, "PL", consent=CONSENT), datetime(2026, 10, 23, 7, 30, tzinfo=UTC)
    ).allowed
    assert run(
        profiles, request(PL_NUMBER, "PL", consent=CONSENT), datetime(2026, 10, 26, 8, 30, tzinfo=UTC)
    ).allowed
    early = run(
        profiles, request(PL_NUMBER, "PL", consent=CONSENT), datetime(2026, 10, 26, 7, 30, tzinfo=UTC)
    )
    assert (early.rule, early.retry_after) == (RULE_WINDOW, local(warsaw, 2026, 10, 26, 9, 0))


def test_window_opening_that_falls_in_a_dst_gap_is_still_found(profiles: ProfileSet) -> None:
    from dialer.domain.compliance import CallingWindow, TimeRange, next_window_opening

    # 02:30-03:00 does not exist in Paris on 2026-03-29 (clocks jump from 02:00 to 03:00): the window
    # next opens on the 30th, and the search neither stops nor returns an instant outside the window.
    window = CallingWindow(tuple((TimeRange(150, 180),) for _ in range(7)))
    opening = next_window_opening(window, ["Europe/Paris"], datetime(2026, 3, 28, 23, 0, tzinfo=UTC))
    assert opening == local(PARIS, 2026, 3, 30, 2, 30)


def test_operator_may_add_a_holiday_subdivision_that_keeps_national_holidays(profiles: ProfileSet) -> None:
    fr = profiles.get("FR")
    rules = campaign_rules_from_mapping({"profile": "FR", "holiday_subdivision": "57"}, profiles)
    tightened = profiles.for_campaign(rules)
    assert tightened.window.holiday_subdivision == "57"
    assert fr.window.holiday_subdivision is None
    boxing_day = local(PARIS, 2025, 12, 26, 11, 0)  # a public holiday in Alsace-Moselle only (Friday)
    assert run(profiles, request(FR_NUMBER, "FR", consent=CONSENT), boxing_day).allowed
    assert (
        run(profiles, request(FR_NUMBER, "FR", consent=CONSENT, rules=rules), boxing_day).rule == RULE_WINDOW
    )


def _operator_file(tmp_path: object, text: str) -> list[Path]:
    path = Path(str(tmp_path)) / "profiles.toml"
    path.write_text(text, encoding="utf-8")
    return [path]


def test_custom_profile_tightens_its_base_and_keeps_the_rest_of_it(tmp_path: object) -> None:
    loaded = load_profiles(_operator_file(tmp_path, '[profiles.FR_SALES]\nbase = "FR"\nmax_attempts = 3\n'))
    fr, custom = loaded.get("FR"), loaded.get("FR_SALES")
    assert (custom.code, custom.max_attempts) == ("FR_SALES", 3)
    assert custom.consent_required_from == fr.consent_required_from
    assert custom.lockouts == fr.lockouts and custom.window == fr.window


def test_custom_profile_cannot_loosen_its_base(tmp_path: object) -> None:
    files = _operator_file(tmp_path, '[profiles.FR_SALES]\nbase = "FR"\nmax_attempts = 9\n')
    with pytest.raises(ProfileError, match=r"profiles\.FR_SALES: max_attempts 9 exceeds profile FR"):
        load_profiles(files)


def test_custom_profile_without_a_base_is_refused_unless_named_custom(tmp_path: object) -> None:
    body = 'holiday_country = "FR"\n' + "".join(
        f'window.{d} = ["09:00-10:00"]\n' for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    )
    with pytest.raises(
        ProfileError, match=r'profiles\.CARE: a custom profile tightens a known one; name it with base = "FR"'
    ):
        load_profiles(_operator_file(tmp_path, "[profiles.CARE]\n" + body))
    assert load_profiles(_operator_file(tmp_path, "[profiles.CUSTOM-LAB]\n" + body)).get("CUSTOM-LAB")


def test_custom_profile_base_must_be_known(tmp_path: object) -> None:
    with pytest.raises(ProfileError, match=r"profiles\.CARE\.base: 'XX' is not a known profile"):
        load_profiles(_operator_file(tmp_path, '[profiles.CARE]\nbase = "XX"\n'))
