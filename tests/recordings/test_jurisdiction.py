"""A jurisdiction that wants recorded calls announced: a recording campaign without one is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from dialer.compliance.profiles import load_profiles
from dialer.domain.campaign import CampaignSettings, RecordingPolicy
from dialer.domain.compliance import ProfileError
from dialer.runtime.bootstrap import campaign_problem


def _profiles(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "profiles.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _campaign(**changes: object) -> CampaignSettings:
    base = CampaignSettings(
        dial_string="PJSIP/{digits}@trunk", caller_id="+33123456789", jurisdiction="FR-REC"
    )
    return base.with_changes(**changes)


def test_a_recording_campaign_must_announce_where_the_profile_says_so(tmp_path: Path) -> None:
    profiles = load_profiles(
        [_profiles(tmp_path, '[profiles.FR-REC]\nbase = "FR"\nrecording_announcement = true\n')]
    )
    assert profiles.get("FR-REC").recording_announcement and not profiles.get("FR").recording_announcement
    problem = campaign_problem(profiles, _campaign(recording=RecordingPolicy.ALL), None)
    assert problem is not None and "a recorded call must be announced" in problem
    assert campaign_problem(profiles, _campaign(recording=RecordingPolicy.ON_DEMAND), None) is not None
    announced = _campaign(recording=RecordingPolicy.ALL, recording_announcement="dialer-recorded")
    assert campaign_problem(profiles, announced, None) is None
    assert campaign_problem(profiles, _campaign(recording=RecordingPolicy.NONE), None) is None
    assert (
        campaign_problem(profiles, _campaign(jurisdiction="FR", recording=RecordingPolicy.ALL), None) is None
    )


def test_a_profile_cannot_drop_the_announcement_of_its_base(tmp_path: Path) -> None:
    first = _profiles(tmp_path, '[profiles.FR-REC]\nbase = "FR"\nrecording_announcement = true\n')
    second = tmp_path / "more.toml"
    second.write_text(
        '[profiles.FR-LOOSE]\nbase = "FR-REC"\nrecording_announcement = false\n', encoding="utf-8"
    )
    with pytest.raises(ProfileError, match="recording_announcement=false loosens profile FR-REC"):
        load_profiles([first, second])
