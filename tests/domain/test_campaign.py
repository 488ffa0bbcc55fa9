"""Campaign settings: dial-string rendering, message names and profile codes."""

from __future__ import annotations

import pytest

from dialer.domain.campaign import (
    DEFAULT_IDENTIFICATION_MESSAGE,
    AmdPolicy,
    CampaignSettings,
    SettingsError,
    national_digits,
    render_dial_string,
)


@pytest.mark.parametrize(
    ("number", "national"),
    [
        ("+33612345678", "0612345678"),  # FR: trunk prefix 0
        ("+447911123456", "07911123456"),  # UK mobile
        ("+4930123456", "030123456"),  # DE Berlin
        ("+12015550123", "2015550123"),  # US: ten digits, no trunk prefix
        ("+390612345678", "0612345678"),  # IT: the 0 is part of the number itself
        ("+34612345678", "612345678"),  # ES: no trunk prefix at all
        ("+61412345678", "0412345678"),  # AU mobile
    ],
)
def test_national_placeholder_renders_the_national_digits(number: str, national: str) -> None:
    assert national_digits(number) == national
    assert render_dial_string("SIP/{national}@t", number=number) == f"SIP/{national}@t"


def test_other_placeholders_are_unchanged_by_the_national_form() -> None:
    rendered = render_dial_string(
        "PJSIP/{number}/{digits}/{national}@t", number="+33612345678", campaign="7", attempt="a1"
    )
    assert rendered == "PJSIP/+33612345678/33612345678/0612345678@t"


def test_national_of_a_number_that_is_not_e164_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"E\.164"):
        render_dial_string("SIP/{national}@t", number="0612345678")


def _settings(**changes: object) -> CampaignSettings:
    values: dict[str, object] = {"dial_string": "PJSIP/{number}@trunk", "caller_id": "+33123456789"}
    values.update(changes)
    return CampaignSettings.from_dict(values)


def test_identification_message_defaults_to_the_shipped_prompt() -> None:
    assert _settings().identification_message == DEFAULT_IDENTIFICATION_MESSAGE == "dialer-identification"
    # campaigns stored before the prompt was shipped kept "" for the default
    assert _settings(identification_message="").identification_message == DEFAULT_IDENTIFICATION_MESSAGE


@pytest.mark.parametrize("name", ["acme-id", "custom/acme_id", "/var/lib/asterisk/sounds/custom/acme-id"])
def test_message_names_the_pbx_can_play_are_accepted(name: str) -> None:
    assert _settings(identification_message=name).identification_message == name
    leave = _settings(amd_policy="leave_message", machine_message=name)
    assert (leave.amd_policy, leave.machine_message) == (AmdPolicy.LEAVE_MESSAGE, name)


@pytest.mark.parametrize(
    "name",
    ["dialer-identification.wav", "../../etc/passwd", "custom/../x", "two words", "id;Hangup", "a//b", "x/"],
)
def test_message_names_with_extension_spaces_or_traversal_are_refused(name: str) -> None:
    with pytest.raises(SettingsError, match=r"identification message .* is not a sound name"):
        _settings(identification_message=name)
    with pytest.raises(SettingsError, match=r"machine message .* is not a sound name"):
        _settings(amd_policy="leave_message", machine_message=name)


def test_an_identification_message_cannot_be_removed() -> None:
    base = _settings()
    with pytest.raises(SettingsError, match="is not a sound name"):
        base.with_changes(identification_message="")


@pytest.mark.parametrize("code", ["FR", "UK", "CARE_FR", "CUSTOM-DEMO", "FR-ALSACE", "US2"])
def test_custom_profile_codes_are_accepted(code: str) -> None:
    assert _settings(jurisdiction=code).jurisdiction == code


@pytest.mark.parametrize("code", ["France", "fr", "F", "_FR", "FR CARE", "A" * 25])
def test_profile_codes_of_another_shape_are_refused(code: str) -> None:
    with pytest.raises(SettingsError, match="is not a profile code"):
        _settings(jurisdiction=code)
