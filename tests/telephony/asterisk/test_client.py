"""The AMI client's transport rules against a small fake AMI server."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

import pytest

from telephony.asterisk.client import AmiClient
from telephony.asterisk.protocol import AmiMessage
from telephony.asterisk.settings import AsteriskSettings
from telephony.base import ActionTimeout, PbxError, PbxUnavailable
from tests.telephony.asterisk.fake_ami import FakeAmi


def settings_for(ami: FakeAmi, **overrides: float | str) -> AsteriskSettings:
    values: dict[str, object] = {
        "port": ami.port,
        "secret": ami.secret,
        "action_timeout_s": 1.0,
        "ping_interval_s": 0.1,
        "ping_timeout_s": 0.2,
        "reconnect_initial_s": 0.05,
        "reconnect_max_s": 0.2,
    }
    values.update(overrides)
    return AsteriskSettings(**values)  # type: ignore[arg-type]


async def until(predicate: Callable[[], bool], steps: int = 300) -> None:
    for _ in range(steps):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


@pytest.fixture
async def ami() -> AsyncIterator[FakeAmi]:
    server = FakeAmi()
    await server.start()
    yield server
    await server.stop()


async def test_login_ping_and_event_list(ami: FakeAmi) -> None:
    client = AmiClient(settings_for(ami, ping_interval_s=60.0))
    await client.connect()
    try:
        assert client.connected
        assert client.banner == "Asterisk Call Manager/11.0.0"
        pong = await client.send_action({"Action": "Ping"})
        assert pong["Ping"] == "Pong"
        ami.live_channels = {"att-1": "6", "att-2": "5"}
        listing = await client.send_action({"Action": "CoreShowChannels"})
        assert [(e["Uniqueid"], e["ChannelState"]) for e in listing.events] == [
            ("att-1", "6"),
            ("att-2", "5"),
        ]
    finally:
        await client.close()
    login = next(a for a in ami.actions if a.action == "Login")
    assert login["Username"] == "dialer"


async def test_wrong_secret_is_refused_with_a_message_that_says_what_to_check(
    ami: FakeAmi, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = AmiClient(settings_for(ami, secret="wrong-secret-value"))
    with pytest.raises(PbxError, match="refused: Authentication failed; check the user and secret") as info:
        await client.connect()
    assert not client.connected
    await client.close()
    assert "wrong-secret-value" not in caplog.text + str(info.value)


async def test_unreachable_pbx_raises_unavailable() -> None:
    ami = FakeAmi()
    await ami.start()
    port = ami.port
    await ami.stop()
    client = AmiClient(AsteriskSettings(port=port, secret="x", connect_timeout_s=1.0))
    with pytest.raises(PbxUnavailable, match="cannot reach Asterisk AMI"):
        await client.connect()
    await client.close()


async def test_an_action_with_no_answer_times_out_and_is_forgotten(ami: FakeAmi) -> None:
    client = AmiClient(settings_for(ami, ping_interval_s=60.0))
    await client.connect()
    ami.unanswered_actions.add("Redirect")
    try:
        with pytest.raises(ActionTimeout, match="did not answer Redirect"):
            await client.send_action({"Action": "Redirect", "Channel": "x"}, 0.1)
        assert client.stats.action_timeouts == 1
        assert client._pending == {}
        assert client.connected
    finally:
        await client.close()


async def test_malformed_message_is_counted_and_the_connection_survives(
    ami: FakeAmi, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[AmiMessage] = []
    client = AmiClient(settings_for(ami, ping_interval_s=60.0), on_event=lambda m, at: seen.append(m))
    await client.connect()
    try:
        await ami.send_raw(b"this line has no colon\r\n\r\nEvent: Newchannel\r\nUniqueid: u1\r\n\r\n")
        await until(lambda: any(m.get("Uniqueid") == "u1" for m in seen))
        assert client.stats.malformed == 1
        assert "malformed" in caplog.text
        assert (await client.send_action({"Action": "Ping"}))["Ping"] == "Pong"
    finally:
        await client.close()


async def test_slow_handler_does_not_stall_actions_and_handler_errors_are_counted(ami: FakeAmi) -> None:
    release = asyncio.Event()
    handled: list[str] = []

    async def handler(msg: AmiMessage, at: float) -> None:
        if msg.event != "Newchannel":
            return
        if msg.get("Uniqueid") == "boom":
            raise RuntimeError("handler bug")
        if msg.get("Uniqueid") == "slow":
            await release.wait()
        handled.append(msg.get("Uniqueid", ""))

    client = AmiClient(settings_for(ami, ping_interval_s=60.0), on_event=handler)
    await client.connect()
    try:
        await ami.send_event({"Event": "Newchannel", "Uniqueid": "slow"})
        await ami.send_event({"Event": "Newchannel", "Uniqueid": "boom"})
        await ami.send_event({"Event": "Newchannel", "Uniqueid": "after"})
        # the handler is blocked, yet the reader still answers actions
        assert (await client.send_action({"Action": "Ping"}))["Ping"] == "Pong"
        assert handled == []
        release.set()
        await client.drain_events()
        assert handled == ["slow", "after"]
        assert client.stats.handler_errors == 1
    finally:
        await client.close()


async def test_silent_pbx_fails_ping_and_the_client_reconnects(ami: FakeAmi) -> None:
    client = AmiClient(settings_for(ami))
    await client.connect()
    try:
        ami.unanswered_actions.add("Ping")
        await until(lambda: client.stats.ping_failures >= 1)
        ami.unanswered_actions.clear()
        await until(lambda: client.stats.connects >= 2 and client.connected)
        assert ami.logins >= 2
    finally:
        await client.close()


async def test_action_pending_when_the_link_drops_fails_and_is_never_resent(ami: FakeAmi) -> None:
    connected = 0

    def on_connected() -> None:
        nonlocal connected
        connected += 1

    client = AmiClient(settings_for(ami, ping_interval_s=60.0), on_connected=on_connected)
    await client.connect()
    ami.unanswered_actions.add("Originate")
    try:
        pending = asyncio.create_task(
            client.send_action({"Action": "Originate", "ActionID": "att-9", "Channel": "PJSIP/1@t"}, 5.0)
        )
        await until(lambda: ami.originates_received == ["att-9"])
        await ami.crash()
        with pytest.raises(PbxUnavailable, match="not re-sent"):
            await pending
        with pytest.raises(PbxUnavailable):
            await client.send_action({"Action": "Ping"})
        await ami.start(ami.port)
        await until(lambda: client.connected and connected == 2)
        assert (await client.send_action({"Action": "Ping"}))["Ping"] == "Pong"
        assert ami.originates_received == ["att-9"]
        assert client.stats.disconnects == 1
    finally:
        await client.close()


async def test_header_injection_is_refused_before_anything_is_written(ami: FakeAmi) -> None:
    client = AmiClient(settings_for(ami, ping_interval_s=60.0))
    await client.connect()
    try:
        with pytest.raises(ValueError, match="line break"):
            await client.send_action({"Action": "Originate", "Channel": "PJSIP/1\r\nAction: Command"})
        assert not [a for a in ami.actions if a.action == "Originate"]
    finally:
        await client.close()


def test_settings_refuse_bad_values_naming_the_key() -> None:
    with pytest.raises(ValueError, match="secret is empty"):
        AsteriskSettings()
    with pytest.raises(ValueError, match="action_timeout_s=0"):
        AsteriskSettings(secret="x", action_timeout_s=0)
    assert "s3cret" not in repr(AsteriskSettings(secret="s3cret"))


def test_settings_from_a_config_table_name_the_bad_key() -> None:
    built = AsteriskSettings.from_mapping({"secret": "x", "port": 5039, "action_timeout_s": 3})
    assert (built.port, built.action_timeout_s) == (5039, 3.0)
    with pytest.raises(ValueError, match=r"\[asterisk\]: unknown key\(s\) prot; known keys: host, port"):
        AsteriskSettings.from_mapping({"secret": "x", "prot": 1})
    with pytest.raises(ValueError, match="port must be a whole number"):
        AsteriskSettings.from_mapping({"secret": "x", "port": "5038"})
    with pytest.raises(ValueError, match=r"^\[asterisk\]: secret is empty"):
        AsteriskSettings.from_mapping({"port": 5038})


@pytest.fixture(autouse=True)
def _quiet(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="telephony.asterisk.client")
