"""Faults on the ESL link: drops mid-call, malformed frames, commands that get no reply.

The promises pinned here: an originate is never written twice, every attempt
ends with an outcome, a bad frame costs that frame only, and a silent PBX
turns into a timeout and a fresh connection, not a hang.
"""

from __future__ import annotations

import asyncio

import pytest

from telephony.base import (
    ActionTimeout,
    AgentLegEnded,
    AnswerDecision,
    Answered,
    AnsweredCall,
    CallEvent,
    Connected,
    ConnectToAgent,
    Failed,
    HungUp,
    Outcome,
    Ringing,
)
from telephony.freeswitch.client import ConnectionUp, EslClient, EslClientSettings, EslItem, events_for
from telephony.freeswitch.protocol import EslFrame
from telephony.sim.freeswitch import FreeSwitchSimulator
from tests.telephony.freeswitch.conftest import ScriptedRouter, collect_until_ended, lab_pbx, next_event
from tests.telephony.freeswitch.fake_esl import FakeEsl
from tests.telephony.freeswitch.test_adapter import request, started


class HoldingRouter:
    """Keeps the answered call parked: the test drives it by hand."""

    async def on_answered(self, call: AnsweredCall) -> AnswerDecision:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


async def _wait_for(predicate, wait_s: float = 3.0) -> None:  # type: ignore[no-untyped-def]
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), wait_s)


async def test_link_drop_mid_call_never_resends_and_every_attempt_ends(fake_esl: FakeEsl) -> None:
    router = ScriptedRouter(ConnectToAgent("1001"))
    pbx = await started(fake_esl, router)
    seen: list[CallEvent] = []

    async def collect() -> None:
        async for event in pbx.events():
            seen.append(event)

    collector = asyncio.create_task(collect())
    try:
        await pbx.originate(request("ringing", number="+33100004001"))
        await pbx.originate(request("talking", number="+33100002001"))
        await pbx.originate(request("busy", number="+33100003001"))
        await _wait_for(lambda: any(isinstance(e, Ringing) and e.attempt_id == "ringing" for e in seen))
        await _wait_for(lambda: any(isinstance(e, Answered) and e.attempt_id == "talking" for e in seen))
        await _wait_for(lambda: any(isinstance(e, Failed) and e.attempt_id == "busy" for e in seen))

        # The link dies; while it is down the ringing call ends and nobody tells us.
        fake_esl.channels.pop("ringing")
        await fake_esl.drop_all()
        await _wait_for(lambda: fake_esl.connections == 2 and pbx.connected)
        await _wait_for(lambda: any(isinstance(e, Failed) and e.attempt_id == "ringing" for e in seen))

        lost = next(e for e in seen if isinstance(e, Failed) and e.attempt_id == "ringing")
        assert isinstance(lost, Failed) and lost.outcome is Outcome.LOST
        # the answered call is still up on the switch: it stays ours and ends normally
        assert "talking" in pbx.tracker.live_ids()
        await pbx.hangup("talking")
        await _wait_for(lambda: any(isinstance(e, HungUp) and e.attempt_id == "talking" for e in seen))

        assert fake_esl.originates == ["ringing", "talking", "busy"]
        originates_written = [r for r in fake_esl.received if r.startswith("bgapi originate")]
        assert len(originates_written) == 3
        ended = {e.attempt_id for e in seen if isinstance(e, Failed | HungUp)}
        assert ended == {"ringing", "talking", "busy"}
        assert pbx.tracker.live_ids() == []
    finally:
        collector.cancel()
        await pbx.stop()


async def test_originate_whose_reply_is_lost_is_reconciled_not_resent(fake_esl: FakeEsl) -> None:
    fake_esl.silent_prefixes = ["bgapi originate"]
    pbx = await started(fake_esl, action_timeout_s=0.3)
    try:
        await pbx.originate(request("unconfirmed"))  # written, no reply: no exception, no retry
        failed = await next_event(pbx, Failed, "unconfirmed")
        assert isinstance(failed, Failed) and failed.outcome is Outcome.LOST
        assert [r for r in fake_esl.received if r.startswith("bgapi originate")].__len__() == 1
        assert pbx.client.command_timeouts == 1
    finally:
        await pbx.stop()


async def test_malformed_frame_is_counted_and_the_connection_survives(fake_esl: FakeEsl) -> None:
    pbx = await started(fake_esl)
    try:
        await fake_esl.send_raw(b"this is not ESL\n\n")
        await fake_esl.send_raw(b"Content-Type: api/response\nContent-Length: many\n\n")
        await pbx.originate(request("after-garbage", number="+33100003001"))
        failed = await next_event(pbx, Failed, "after-garbage")
        assert isinstance(failed, Failed) and failed.outcome is Outcome.BUSY
        assert pbx.client.protocol_errors == 2
        assert fake_esl.connections == 1
    finally:
        await pbx.stop()


async def test_command_with_no_reply_times_out_and_the_link_is_rebuilt(fake_esl: FakeEsl) -> None:
    pbx = await started(fake_esl, HoldingRouter(), action_timeout_s=0.3)
    try:
        await pbx.originate(request("parked"))
        await next_event(pbx, Answered, "parked")
        fake_esl.silent_prefixes = ["api uuid_transfer"]
        with pytest.raises(ActionTimeout):
            await pbx.connect_to_agent("parked", "1001")
        assert fake_esl.unanswered == ["api uuid_transfer parked agent_1001 XML dialer"]
        # replies are ordered: the link is rebuilt rather than reused out of step
        await _wait_for(lambda: fake_esl.connections == 2 and pbx.connected)
        fake_esl.silent_prefixes = []
        await pbx.connect_to_agent("parked", "1001")
        await pbx.hangup("parked")
        await next_event(pbx, HungUp, "parked")
    finally:
        await pbx.stop()


async def test_slow_or_failing_handler_does_not_block_replies(fake_esl: FakeEsl) -> None:
    seen: list[str] = []
    gate = asyncio.Event()

    async def handler(item: EslItem, at: float) -> None:
        if isinstance(item, ConnectionUp):
            return
        assert isinstance(item, EslFrame)
        seen.append(item.event.name)
        if len(seen) == 1:
            await gate.wait()  # a stuck handler
        if len(seen) == 2:
            raise RuntimeError("handler bug")

    client = EslClient(
        EslClientSettings("127.0.0.1", fake_esl.port, "ClueCon", events_for(), command_timeout_s=1.0),
        handler,
    )
    await client.start()
    try:
        assert await client.wait_connected(2.0)
        fake_esl.emit({"Event-Name": "HEARTBEAT"})
        fake_esl.emit({"Event-Name": "HEARTBEAT"})
        fake_esl.emit({"Event-Name": "HEARTBEAT"})
        # the handler is stuck, yet commands are still answered
        assert (await client.api("uptime")).startswith("42")
        assert client.queue_depth >= 1
        gate.set()
        await _wait_for(lambda: len(seen) == 3)
        assert client.handler_errors == 1
    finally:
        await client.stop()


async def test_liveness_probe_drops_a_silent_link(fake_esl: FakeEsl) -> None:
    pbx = await started(fake_esl, action_timeout_s=0.2, liveness_interval_s=0.2)
    try:
        fake_esl.silent_prefixes = ["api uptime"]
        await _wait_for(lambda: fake_esl.connections >= 2)
        assert pbx.client.command_timeouts >= 1
    finally:
        fake_esl.silent_prefixes = []
        await pbx.stop()


async def test_acl_rejection_is_reported_and_retried_with_backoff() -> None:
    attempts = 0

    async def reject(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal attempts
        attempts += 1
        body = b"Access Denied, go away.\n"
        writer.write(b"Content-Type: text/rude-rejection\nContent-Length: %d\n\n" % len(body) + body)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(reject, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = EslClient(
        EslClientSettings(
            "127.0.0.1", port, "ClueCon", events_for(), reconnect_initial_s=0.02, reconnect_max_s=0.05
        ),
        lambda item, at: asyncio.sleep(0),
    )
    await client.start()
    try:
        await _wait_for(lambda: attempts >= 3)
        assert not client.connected
    finally:
        await client.stop()
        server.close()
        await server.wait_closed()


# -- against the ESL simulator (real framing and event sequences) ---------------------------


async def test_simulator_crash_mid_call_ends_every_attempt_without_redialing(
    sim: FreeSwitchSimulator,
) -> None:
    pbx = lab_pbx(sim)
    await pbx.start()
    seen: list[CallEvent] = []

    async def collect() -> None:
        async for event in pbx.events():
            seen.append(event)

    collector = asyncio.create_task(collect())
    try:
        await pbx.originate(request("crash-ring", number="+33100004001", ring_timeout_s=60))
        await pbx.originate(request("crash-talk", number="+33100002001"))
        await asyncio.wait_for(_until(lambda: "crash-talk" in _answered(seen)), 5)
        await sim.crash()
        await sim.start(port=sim.port)  # a restarted FreeSWITCH: no calls
        await asyncio.wait_for(_until(lambda: {"crash-ring", "crash-talk"} <= _ended(seen)), 5)
        ring = next(e for e in seen if isinstance(e, Failed) and e.attempt_id == "crash-ring")
        assert isinstance(ring, Failed) and ring.outcome == "lost"
        assert any(isinstance(e, HungUp) and e.attempt_id == "crash-talk" for e in seen)
        assert sorted(sim.originates_received) == ["crash-ring", "crash-talk"]
        assert pbx.connected
    finally:
        collector.cancel()
        await pbx.stop()


async def test_simulator_silent_api_times_out_and_the_link_recovers(sim: FreeSwitchSimulator) -> None:
    pbx = lab_pbx(sim, action_timeout_s=0.3)
    await pbx.start()
    try:
        await pbx.originate(request("silent", number="+33100004001", ring_timeout_s=60))
        sim.unanswered_commands.add("api")
        with pytest.raises(ActionTimeout):
            await pbx.hangup("silent")
        sim.unanswered_commands.clear()
        await asyncio.wait_for(_until(lambda: pbx.client.connections >= 2 and pbx.connected), 5)
        await pbx.hangup("silent")
        events = await collect_until_ended(pbx, {"silent"})
        failed = next(e for e in events if isinstance(e, Failed))
        assert isinstance(failed, Failed) and failed.outcome == "cancelled"
        assert sim.originates_received == ["silent"]
    finally:
        await pbx.stop()


async def test_simulator_malformed_bytes_are_counted_and_calls_go_on(sim: FreeSwitchSimulator) -> None:
    pbx = lab_pbx(sim)
    await pbx.start()
    try:
        await sim.send_raw(b"garbage without a colon\n\nContent-Type: x\nContent-Length: -3\n\n")
        await pbx.originate(request("after", number="+33100003001"))
        await collect_until_ended(pbx, {"after"})
        assert pbx.tracker.outcome_label("after") == "busy"
        assert pbx.client.protocol_errors == 2
        assert pbx.client.connections == 1
    finally:
        await pbx.stop()


def _answered(events: list[CallEvent]) -> set[str]:
    return {e.attempt_id for e in events if isinstance(e, Answered)}


def _ended(events: list[CallEvent]) -> set[str]:
    return {e.attempt_id for e in events if isinstance(e, Failed | HungUp)}


async def _until(predicate) -> None:  # type: ignore[no-untyped-def]
    while not predicate():
        await asyncio.sleep(0.01)


async def test_simulator_restart_cuts_calls_with_system_shutdown_and_they_are_reconciled(
    sim: FreeSwitchSimulator,
) -> None:
    """fsctl shutdown restart with an agent and a customer in conference, one parked and one ringing."""
    router = HoldingRouter()
    pbx = lab_pbx(sim)
    pbx.set_answer_router(router)  # type: ignore[arg-type]
    await pbx.start()
    seen: list[CallEvent] = []

    async def collect() -> None:
        async for event in pbx.events():
            seen.append(event)

    collector = asyncio.create_task(collect())
    try:
        leg = await pbx.login_agent("1001", "sofia/dialer/1001@127.0.0.1:5081")
        await _wait_for(lambda: pbx.agent_legs("1001") == {leg})
        await pbx.originate(request("rs-conf", number="+33100002001"))
        await pbx.originate(request("rs-parked", number="+33100002002"))
        await pbx.originate(request("rs-ring", number="+33100004001", ring_timeout_s=60))
        await _wait_for(lambda: any(isinstance(e, Answered) and e.attempt_id == "rs-parked" for e in seen))
        await _wait_for(lambda: any(isinstance(e, Answered) and e.attempt_id == "rs-conf" for e in seen))
        await pbx.connect_to_agent("rs-conf", "1001")
        await _wait_for(lambda: any(isinstance(e, Connected) and e.attempt_id == "rs-conf" for e in seen))
        assert any(isinstance(e, Ringing) and e.attempt_id == "rs-ring" for e in seen)
        originated = list(sim.originates_received)

        operator_reader, operator = await asyncio.open_connection("127.0.0.1", sim.port)
        operator.write(b"auth ClueCon\n\napi fsctl shutdown restart\n\n")
        await operator.drain()
        ends = {leg, "rs-conf", "rs-parked", "rs-ring"}
        await _wait_for(lambda: ends <= {e.attempt_id for e in seen if isinstance(e, Failed | HungUp)})
        operator.close()

        failed = [e for e in seen if isinstance(e, Failed)]
        assert [(e.attempt_id, e.outcome, e.detail) for e in failed] == [
            ("rs-ring", Outcome.LOST, "-ERR SYSTEM_SHUTDOWN")
        ]
        hung = {e.attempt_id: (e.cause_text, e.lost) for e in seen if isinstance(e, HungUp)}
        assert hung == {a: ("SYSTEM_SHUTDOWN", True) for a in (leg, "rs-conf", "rs-parked")}
        ended = [e for e in seen if isinstance(e, AgentLegEnded)]
        assert [(e.attempt_id, e.agent_id, e.detail) for e in ended] == [
            (leg, "1001", "hung up (SYSTEM_SHUTDOWN)")
        ]
        # the shutdown notice closes the session; the switch comes back and the link with it
        await _wait_for(lambda: pbx.client.connections == 2 and pbx.connected, wait_s=5.0)
        assert pbx.tracker.live_ids() == []
        assert sim.originates_received == originated  # nothing re-sent
        assert sim.live_channels() == []
        terminal = [e.attempt_id for e in seen if isinstance(e, Failed | HungUp)]
        assert sorted(terminal) == sorted(ends)  # exactly one end each
    finally:
        collector.cancel()
        await pbx.stop()


async def test_a_dead_link_is_found_within_the_ping_interval_and_a_quarter(fake_esl: FakeEsl) -> None:
    """[pbx.*] ping_interval_s = 5 must mean a dead link is known after about 5 s, not 10 to 15."""
    interval = 0.4
    pbx = await started(fake_esl, action_timeout_s=1.0, liveness_interval_s=interval)
    loop = asyncio.get_running_loop()
    try:
        fake_esl.silent_prefixes = ["api uptime"]  # the switch hangs: nothing comes any more
        silent_from = loop.time()
        await _wait_for(lambda: fake_esl.connections >= 2, wait_s=5.0)
        found_after = loop.time() - silent_from
        # the last frame came at or before silent_from; the reconnect itself adds ~0.05 s
        assert found_after <= interval * 1.25 + 0.25, found_after
        assert pbx.client.command_timeouts >= 1
    finally:
        fake_esl.silent_prefixes = []
        await pbx.stop()
