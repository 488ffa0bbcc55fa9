"""FreeSwitchPbx against a scripted ESL server: what it writes and the events it reports."""

from __future__ import annotations

import asyncio

import pytest

from telephony.base import (
    AmdDetected,
    AmdResult,
    Answered,
    Connected,
    ConnectToAgent,
    Failed,
    HungUp,
    OriginateRequest,
    Outcome,
    Pbx,
    PbxError,
    PbxUnavailable,
    PlayMessageThenHangup,
)
from telephony.freeswitch.adapter import (
    FreeSwitchPbx,
    FreeSwitchSettings,
    originate_command,
    parse_show_channels,
)
from tests.telephony.freeswitch.conftest import Recorder, ScriptedRouter, next_event, settings_for
from tests.telephony.freeswitch.fake_esl import FakeEsl


def request(attempt: str, number: str = "+33100002001", **kw: object) -> OriginateRequest:
    values: dict[str, object] = {
        "attempt_id": attempt,
        "number": number,
        "dial_string": f"sofia/dialer/{number[-4:]}@127.0.0.1:5071",
        "caller_id_number": "0100000000",
        "caller_id_name": "Dialer",
        "ring_timeout_s": 15,
        "campaign_id": "c1",
    }
    values.update(kw)
    return OriginateRequest(**values)  # type: ignore[arg-type]


async def started(fake: FakeEsl, router: ScriptedRouter | None = None, **kw: object) -> FreeSwitchPbx:
    pbx = FreeSwitchPbx(settings_for(fake.port, **kw))
    if router is not None:
        pbx.set_answer_router(router)
    await pbx.start()
    assert pbx.connected
    return pbx


def test_adapter_implements_the_pbx_interface() -> None:
    assert isinstance(FreeSwitchPbx(FreeSwitchSettings(password="x")), Pbx)


def test_originate_command_has_the_capture_shape() -> None:
    cmd = originate_command(request("fs-person", amd=True), FreeSwitchSettings(password="x"))
    assert cmd == (
        "originate {origination_uuid=fs-person,originate_timeout=15,ignore_early_media=true,"
        "origination_caller_id_number=0100000000,origination_caller_id_name=Dialer,"
        "dialer_attempt=fs-person,dialer_campaign=c1,dialer_amd=true}"
        "sofia/dialer/2001@127.0.0.1:5071 dialer_answered XML dialer"
    )


@pytest.mark.parametrize(
    "bad",
    [
        {"caller_id_name": "Acme, Inc"},
        {"caller_id_name": "Acme Sales"},
        {"caller_id_name": "x}sofia/evil/1"},
        {"campaign_id": "c1\napi fsctl shutdown"},
        {"dial_string": "sofia/a/1 &bridge(x)"},
        {"dial_string": "sofia/a/1,sofia/b/2"},
        {"attempt_id": "a b"},
        {"variables": {"x": "1,origination_uuid=other"}},
        {"variables": {"dialer_attempt": "other"}},
    ],
)
def test_values_that_would_break_the_variable_block_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(PbxError):
        originate_command(request("a1", **bad), FreeSwitchSettings(password="x"))


def test_settings_refuse_an_empty_password_and_hide_it() -> None:
    with pytest.raises(ValueError, match="password"):
        FreeSwitchSettings()
    assert "secret" not in repr(FreeSwitchSettings(password="secret"))


def test_show_channels_json_is_read_by_uuid() -> None:
    text = '{"row_count":1,"rows":[{"uuid":"a1","callstate":"ACTIVE","application":"park"}]}'
    assert parse_show_channels(text) == {"a1": {"uuid": "a1", "callstate": "ACTIVE", "application": "park"}}
    assert parse_show_channels('{"row_count":0}') == {}
    with pytest.raises(PbxError):
        parse_show_channels("-ERR no reply\n")


async def test_answered_person_is_routed_to_the_agent_conference(fake_esl: FakeEsl) -> None:
    router = ScriptedRouter(ConnectToAgent("1001"))
    pbx = await started(fake_esl, router)
    try:
        await pbx.originate(request("att-1"))
        answered = await next_event(pbx, Answered, "att-1")
        assert answered.attempt_id == "att-1"
        connected = await next_event(pbx, Connected, "att-1")
        assert isinstance(connected, Connected) and connected.agent_id == "1001"
        assert [c.attempt_id for c in router.calls] == ["att-1"]
        assert router.calls[0].amd is None
        assert "api uuid_transfer att-1 agent_1001 XML dialer" in fake_esl.received
        assert any(r.startswith("bgapi originate {origination_uuid=att-1,") for r in fake_esl.received)
    finally:
        await pbx.stop()


async def test_busy_callee_gives_failed_busy_with_cause_17(fake_esl: FakeEsl) -> None:
    pbx = await started(fake_esl)
    try:
        await pbx.originate(request("att-busy", number="+33100003001"))
        failed = await next_event(pbx, Failed, "att-busy")
        assert isinstance(failed, Failed)
        assert (failed.outcome, failed.cause) == (Outcome.BUSY, 17)
    finally:
        await pbx.stop()


async def test_our_hangup_of_a_ringing_call_is_cancelled(fake_esl: FakeEsl) -> None:
    pbx = await started(fake_esl)
    try:
        await pbx.originate(request("att-ring", number="+33100004001"))
        await asyncio.sleep(0.05)
        await pbx.hangup("att-ring")
        failed = await next_event(pbx, Failed, "att-ring")
        assert isinstance(failed, Failed) and failed.outcome is Outcome.CANCELLED
        assert "api uuid_kill att-ring NORMAL_CLEARING" in fake_esl.received
        await pbx.hangup("att-ring")  # already gone: not an error
    finally:
        await pbx.stop()


async def test_abandon_plays_the_message_then_hangs_up(fake_esl: FakeEsl) -> None:
    router = ScriptedRouter(PlayMessageThenHangup("dialer/abandon"))
    pbx = await started(fake_esl, router)
    try:
        await pbx.originate(request("att-ab"))
        hung = await next_event(pbx, HungUp, "att-ab")
        assert hung.attempt_id == "att-ab"
        msgs = [r for r in fake_esl.received if r.startswith("sendmsg att-ab")]
        assert msgs == [
            "sendmsg att-ab\ncall-command: execute\nexecute-app-name: playback\n"
            "execute-app-arg: dialer/abandon.wav\nevent-lock: true",
            "sendmsg att-ab\ncall-command: execute\nexecute-app-name: hangup\n"
            "execute-app-arg: NORMAL_CLEARING\nevent-lock: true",
        ]
        assert pbx.tracker.outcome_label("att-ab") == "answered"
    finally:
        await pbx.stop()


async def test_a_person_is_routed_at_once_and_a_later_beep_makes_it_a_machine(fake_esl: FakeEsl) -> None:
    router = ScriptedRouter(ConnectToAgent("1001"))
    pbx = await started(fake_esl, router, amd_window_s=30.0)
    rec = Recorder(pbx)
    try:
        await pbx.originate(request("att-beep", number="+33100009001", amd=True))
        await rec.wait(Connected, "att-beep")  # well before the 30 s window
        # asked at once: avmd had not decided, and nobody waits for it
        assert router.calls[0].amd is AmdResult.UNKNOWN
        assert router.calls[0].amd_detail == "avmd listening 30 s after answer"
        beep = await rec.wait(AmdDetected, "att-beep")
        assert isinstance(beep, AmdDetected)
        assert (beep.result, beep.detail) == (AmdResult.MACHINE, "beep 1000 Hz")
        await pbx.hangup("att-beep")
        await rec.wait(HungUp, "att-beep")
        assert pbx.tracker.outcome_label("att-beep") == "answered:machine"
        assert not [r for r in fake_esl.received if r.startswith("api avmd")]
    finally:
        await rec.close()
        await pbx.stop()


async def test_no_beep_in_the_window_counts_as_a_person_and_stops_avmd(fake_esl: FakeEsl) -> None:
    router = ScriptedRouter(ConnectToAgent("1001"))
    pbx = await started(fake_esl, router, amd_window_s=0.2)
    rec = Recorder(pbx)
    try:
        await pbx.originate(request("att-p", amd=True))
        await rec.wait(Connected, "att-p")
        assert not rec.of(AmdDetected)  # connected before the window ran out
        verdict = await rec.wait(AmdDetected, "att-p")
        assert isinstance(verdict, AmdDetected)
        assert (verdict.result, verdict.detail) == (AmdResult.PERSON, "no beep within 0.2 s")
        assert router.calls[0].amd is AmdResult.UNKNOWN
        await _until(lambda: "api avmd att-p stop" in fake_esl.received)
        await pbx.hangup("att-p")
        await rec.wait(HungUp, "att-p")
    finally:
        await rec.close()
        await pbx.stop()


async def _until(predicate, wait_s: float = 3.0) -> None:  # type: ignore[no-untyped-def]
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), wait_s)


async def test_login_agent_calls_the_softphone_into_its_conference(fake_esl: FakeEsl) -> None:
    pbx = await started(fake_esl)
    try:
        leg = await pbx.login_agent("1001", "sofia/dialer/1001@127.0.0.1:5081")
        assert leg.startswith("agent-1001-")
        await next_event(pbx, Answered, leg)
        sent = next(
            r for r in fake_esl.received if r.startswith(f"bgapi originate {{origination_uuid={leg},")
        )
        assert " agent_1001 XML dialer\nJob-UUID: " in sent
        assert leg in await pbx.live_attempts()
        assert router_free(pbx)
    finally:
        await pbx.stop()


def router_free(pbx: FreeSwitchPbx) -> bool:
    return pbx.router_errors == 0 and pbx.action_errors == 0


async def test_originate_without_a_connection_is_refused_and_not_tracked() -> None:
    pbx = FreeSwitchPbx(settings_for(1))  # nothing listens on port 1
    await pbx.client.start()
    try:
        with pytest.raises(PbxUnavailable):
            await pbx.originate(request("att-x"))
        assert pbx.tracker.live_ids() == []
    finally:
        await pbx.stop()


async def test_the_same_attempt_is_never_dialed_twice(fake_esl: FakeEsl) -> None:
    pbx = await started(fake_esl)
    try:
        await pbx.originate(request("att-once", number="+33100004001"))
        with pytest.raises(PbxError, match="dialed once"):
            await pbx.originate(request("att-once", number="+33100004001"))
        await asyncio.sleep(0.05)
        assert fake_esl.originates == ["att-once"]
    finally:
        await pbx.stop()


async def test_wrong_password_never_connects(fake_esl: FakeEsl) -> None:
    pbx = FreeSwitchPbx(settings_for(fake_esl.port, password="wrong"))
    await pbx.start()
    try:
        assert not pbx.connected
        assert fake_esl.connections >= 1
    finally:
        await pbx.stop()


def test_lab_dialplan_extensions_can_be_configured() -> None:
    lab = FreeSwitchSettings(password="x", answer_extension="park", amd_extension="amd")
    assert originate_command(request("a1", amd=True), lab).endswith(
        "}sofia/dialer/2001@127.0.0.1:5071 amd XML dialer"
    )
    assert originate_command(request("a1"), lab).endswith(" park XML dialer")


async def test_answered_call_that_never_parks_is_routed_after_the_park_timeout(fake_esl: FakeEsl) -> None:
    fake_esl.park = False
    router = ScriptedRouter(ConnectToAgent("1001"))
    pbx = await started(fake_esl, router, park_timeout_s=0.1)
    try:
        await pbx.originate(request("no-park"))
        await next_event(pbx, Connected, "no-park")
        assert [c.attempt_id for c in router.calls] == ["no-park"]
    finally:
        await pbx.stop()


async def test_parked_call_is_routed_once_although_the_park_timeout_also_runs(fake_esl: FakeEsl) -> None:
    router = ScriptedRouter(ConnectToAgent("1001"))
    pbx = await started(fake_esl, router, park_timeout_s=0.05)
    try:
        await pbx.originate(request("parks"))
        await next_event(pbx, Connected, "parks")
        await asyncio.sleep(0.1)
        assert [c.attempt_id for c in router.calls] == ["parks"]
        assert fake_esl.received.count("api uuid_transfer parks agent_1001 XML dialer") == 1
    finally:
        await pbx.stop()
