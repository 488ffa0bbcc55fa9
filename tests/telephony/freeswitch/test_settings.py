"""Every key the FreeSWITCH adapter takes is settable in [pbx.*] and reaches the adapter."""

from __future__ import annotations

import dataclasses

import pytest

from dialer.runtime.bootstrap import pbx_of
from dialer.settings import _FREESWITCH_KEYS, _PBX_KEYS, SettingsError, parse
from telephony.freeswitch.adapter import FreeSwitchPbx, FreeSwitchSettings

# adapter field -> the common [pbx.*] key that sets it under another name
RENAMED = {"password": "secret", "liveness_interval_s": "ping_interval_s"}


def test_every_adapter_key_is_a_pbx_key_of_the_right_type() -> None:
    for f in dataclasses.fields(FreeSwitchSettings):
        key = RENAMED.get(f.name, f.name)
        assert key in _PBX_KEYS or key in _FREESWITCH_KEYS, f.name
        if key in _FREESWITCH_KEYS:
            default = f.default
            kind = _FREESWITCH_KEYS[key]
            assert default is None or isinstance(default, kind), (f.name, default, kind)


def _fs_table(**extra: object) -> dict[str, object]:
    return {"pbx": {"fs": {"type": "freeswitch", "secret": "ClueCon", **extra}}}


def test_amd_window_and_ping_interval_reach_the_adapter() -> None:
    settings = parse(_fs_table(amd_window_s=7.5, ping_interval_s=5, agent_ring_timeout_s=20), env={})
    pbx = pbx_of(settings.pbxs[0])
    assert isinstance(pbx, FreeSwitchPbx)
    assert pbx.settings.amd_window_s == 7.5
    assert pbx.settings.liveness_interval_s == 5.0  # the link is found dead after 5 s, not 10
    assert pbx.client.settings.liveness_interval_s == 5.0
    assert pbx.settings.agent_ring_timeout_s == 20
    assert pbx.settings.password == "ClueCon"


def test_unset_keys_keep_the_adapter_defaults() -> None:
    pbx = pbx_of(parse(_fs_table(), env={}).pbxs[0])
    assert isinstance(pbx, FreeSwitchPbx)
    assert pbx.settings.amd_window_s == FreeSwitchSettings(password="x").amd_window_s
    assert pbx.settings.context == "dialer"


def test_a_key_of_the_wrong_type_is_named() -> None:
    with pytest.raises(SettingsError, match=r"pbx\.fs\.amd_window_s: expected float"):
        parse(_fs_table(amd_window_s="8 s"), env={})


def test_freeswitch_keys_are_refused_on_an_asterisk_table() -> None:
    data = {"pbx": {"ast": {"type": "asterisk", "secret": "x", "amd_window_s": 8.0}}}
    with pytest.raises(SettingsError, match="unknown key"):
        parse(data, env={})
