"""Campaign settings validation, status transitions and the retry/disposition tables (pure domain)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dialer.domain.campaign import (
    DEFAULT_RETRY_RULES,
    CallResult,
    CampaignSettings,
    CampaignStatus,
    DailyWindow,
    LeadStatus,
    RetryRule,
    SettingsError,
    StatusChangeError,
    attempt_result,
    check_transition,
    next_after_attempt,
    render_dial_string,
    validate_dial_string,
)
from dialer.domain.dispositions import CATALOGUE, DispositionError, lead_next_for_disposition, lookup

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def base(**changes: object) -> CampaignSettings:
    return CampaignSettings(dial_string="PJSIP/{number}@trunk", caller_id="+33123456789").with_changes(
        **changes
    )


def test_ring_timeout_under_15_seconds_is_refused() -> None:
    with pytest.raises(SettingsError, match=r"ring timeout 14 s is too short.*set it to 15 or more"):
        base(ring_timeout_s=14)
    assert base(ring_timeout_s=15).ring_timeout_s == 15


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("PJSIP/{numbr}@trunk", "unknown placeholder '{numbr}'"),
        ("PJSIP/trunk", "does not contain the number"),
        ("PJSIP/{}@trunk", "positional placeholder"),
        ("PJSIP/{number@trunk", "not a valid template"),
        ("PJSIP/{number!r}@trunk", "takes no format"),
        ("", "dial string is empty"),
    ],
)
def test_bad_dial_strings_name_the_problem(template: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message.replace("{", r"\{").replace("}", r"\}")):
        validate_dial_string(template)


def test_dial_string_renders_number_forms() -> None:
    assert render_dial_string("PJSIP/{number}@trunk", number="+33123456789") == "PJSIP/+33123456789@trunk"
    assert render_dial_string("SIP/{digits}", number="+33123456789") == "SIP/33123456789"
    assert (
        render_dial_string("SIP/{national}", number="+33123456789", national="0123456789") == "SIP/0123456789"
    )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"caller_id": "anonymous"}, "caller id 'anonymous' is not a phone number"),
        ({"abandon_cap": 0.2}, "abandonment cap"),
        ({"dial_ratio": 5.0}, "dial ratio 5"),
        ({"jurisdiction": "France"}, "jurisdiction 'France' is not a profile code"),
        ({"connect_limit_s": 3.0}, "at most 2 s"),
        ({"max_attempts": 0}, "at least 1"),
        ({"retry_rules": {CallResult.BUSY: RetryRule(-1, 3)}}, "delay must be >= 0"),
        ({"retry_rules": {CallResult.CONNECTED: RetryRule(60, 3)}}, "is not allowed"),
        ({"dispositions": ("sale",), "default_disposition": "not_qualified"}, "default disposition"),
        ({"dispositions": ("sale", "hung_up")}, "unknown disposition code"),
        ({"default_disposition": "callback_requested"}, "needs a date"),
    ],
)
def test_invalid_settings_are_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        base(**changes)


def test_leave_message_policy_needs_a_message() -> None:
    from dialer.domain.campaign import AmdPolicy

    with pytest.raises(SettingsError, match="needs a machine message"):
        base(amd_policy=AmdPolicy.LEAVE_MESSAGE)
    assert base(amd_policy=AmdPolicy.LEAVE_MESSAGE, machine_message="dialer-promo").machine_message


def test_settings_round_trip_through_plain_values() -> None:
    settings = base(
        retry_rules={CallResult.BUSY: RetryRule(60, 2)},
        window=DailyWindow.parse("08:30-19:00"),
        dispositions=("sale", "not_interested"),
        default_disposition="not_interested",
    )
    assert CampaignSettings.from_dict(settings.to_dict()) == settings


def test_unknown_setting_and_bad_values_are_named() -> None:
    with pytest.raises(SettingsError, match="unknown campaign setting"):
        CampaignSettings.from_dict({"dial_string": "{number}", "caller_id": "+331", "colour": "red"})
    with pytest.raises(SettingsError, match="retry rule for unknown result 'bussy'"):
        CampaignSettings.from_dict(
            {"dial_string": "{number}", "caller_id": "+33123", "retry_rules": {"bussy": "1:1"}}
        )
    with pytest.raises(SettingsError, match="HH:MM-HH:MM"):
        DailyWindow.parse("9h-20h")
    with pytest.raises(SettingsError, match="start must be before stop"):
        DailyWindow.parse("20:00-09:00")


def test_status_table() -> None:
    check_transition(CampaignStatus.DRAFT, CampaignStatus.RUNNING)
    check_transition(CampaignStatus.PAUSED, CampaignStatus.RUNNING)
    check_transition(CampaignStatus.STOPPED, CampaignStatus.RUNNING)
    with pytest.raises(StatusChangeError, match="a stopped campaign cannot become paused"):
        check_transition(CampaignStatus.STOPPED, CampaignStatus.PAUSED)


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        ("busy", CallResult.BUSY),
        ("machine", CallResult.MACHINE),
        ("abandoned", CallResult.ABANDONED),
        ("connected", CallResult.CONNECTED),
        ("dropped", CallResult.DROPPED),
        ("lost", CallResult.LOST),
        ("answered", CallResult.FAILED),  # never guessed from flags: the runtime names the result
        ("something_new", CallResult.FAILED),
    ],
)
def test_attempt_results(outcome: str, expected: CallResult) -> None:
    assert attempt_result(outcome) is expected


def test_retry_rules_decide_next_state() -> None:
    rules = DEFAULT_RETRY_RULES
    busy = next_after_attempt(
        CallResult.BUSY, attempts_total=1, attempts_with_result=1, rules=rules, max_attempts=10, now=NOW
    )
    assert busy.status is LeadStatus.RETRY and busy.due_at == NOW + timedelta(
        seconds=rules[CallResult.BUSY].delay_s
    )
    over = next_after_attempt(
        CallResult.BUSY, attempts_total=10, attempts_with_result=1, rules=rules, max_attempts=10, now=NOW
    )
    assert over.status is LeadStatus.EXHAUSTED
    no_rule = next_after_attempt(
        CallResult.MACHINE, attempts_total=1, attempts_with_result=1, rules={}, max_attempts=10, now=NOW
    )
    assert no_rule.status is LeadStatus.EXHAUSTED
    invalid = next_after_attempt(
        CallResult.INVALID_NUMBER,
        attempts_total=1,
        attempts_with_result=1,
        rules=rules,
        max_attempts=10,
        now=NOW,
    )
    assert invalid.status is LeadStatus.INVALID


def test_disposition_table_covers_the_quick_qualifications() -> None:
    assert set(CATALOGUE) == {
        "not_qualified",
        "busy",
        "wrong_number",
        "not_interested",
        "appointment_set",
        "callback_requested",
        "sale",
        "do_not_call",
    }
    fates = {
        code: lead_next_for_disposition(
            d,
            callback_at=NOW + timedelta(days=1),
            attempts_total=1,
            times_given=1,
            rules=DEFAULT_RETRY_RULES,
            max_attempts=10,
            now=NOW,
        ).status
        for code, d in CATALOGUE.items()
    }
    assert fates == {
        "not_qualified": LeadStatus.DONE,
        "busy": LeadStatus.RETRY,
        "wrong_number": LeadStatus.INVALID,
        "not_interested": LeadStatus.DONE,
        "appointment_set": LeadStatus.DONE,
        "callback_requested": LeadStatus.CALLBACK,
        "sale": LeadStatus.DONE,
        "do_not_call": LeadStatus.DO_NOT_CALL,
    }
    with pytest.raises(DispositionError, match="not enabled for this campaign"):
        lookup("sale", ["not_interested"])
