"""The FastAGI server against the recorded sessions and a caller who leaves mid-session."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from telephony.asterisk.fastagi import (
    AgiCommandError,
    AgiHangup,
    AgiReplyReader,
    AnsweredHandler,
    FastAgiServer,
    format_command,
    parse_reply_line,
    quote,
)
from telephony.asterisk.protocol import split_capture_block
from telephony.base import (
    AmdResult,
    AnswerDecision,
    AnsweredCall,
    CallEvent,
    ConnectFailed,
    ConnectToAgent,
    HangupCall,
    PlayMessageThenHangup,
)
from tests.captures import asterisk_capture_paths, asterisk_fastagi_paths, load

Responder = Callable[[str], list[str] | None]


class Router:
    def __init__(self, decision: AnswerDecision, delay: float = 0.0) -> None:
        self.decision = decision
        self.delay = delay
        self.calls: list[AnsweredCall] = []
        self.failures: list[tuple[str, str]] = []
        self.after_failure: AnswerDecision = HangupCall()

    async def on_answered(self, call: AnsweredCall) -> AnswerDecision:
        self.calls.append(call)
        if self.delay:
            await asyncio.sleep(self.delay)
        return self.decision

    async def on_connect_failed(self, call: AnsweredCall, agent_id: str, reason: str) -> AnswerDecision:
        self.failures.append((call.attempt_id, agent_id))
        return self.after_failure


async def fake_asterisk(port: int, env: list[str], respond: Responder) -> list[str]:
    """Connect like Asterisk's AGI(): send the environment, answer each command; return the commands."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write("".join(line + "\n" for line in env).encode() + b"\n")
    await writer.drain()
    commands: list[str] = []
    try:
        while True:
            raw = await asyncio.wait_for(reader.readline(), 5.0)
            if not raw:
                break
            command = raw.decode().rstrip("\n")
            commands.append(command)
            reply = respond(command)
            if reply is None:
                break
            writer.write("".join(line + "\n" for line in reply).encode())
            await writer.drain()
    finally:
        writer.close()
    return commands


async def started(handler: AnsweredHandler, command_timeout_s: float = 2.0) -> FastAgiServer:
    server = FastAgiServer({"answered": handler}, "127.0.0.1", 0, command_timeout_s=command_timeout_s)
    await server.start()
    return server


async def until(predicate: Callable[[], bool]) -> None:
    for _ in range(200):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


def _channel_variables(uniqueid: str) -> dict[str, str]:
    """The variables the recorded Originate set on the channel that ran the AGI."""
    for path in asterisk_capture_paths():
        capture = load(path)
        for _, raw in capture.received:
            msg = split_capture_block(raw)
            if msg is not None and msg.event == "OriginateResponse" and msg.get("Uniqueid") == uniqueid:
                for _, sent in capture.sent:
                    if f"ActionID: {msg['ActionID']}\r\n" in sent:
                        pairs = [line[len("Variable: ") :] for line in sent.split("\r\n")]
                        return dict(p.split("=", 1) for p in pairs if "=" in p and ": " not in p)
    raise AssertionError(f"no capture originated uniqueid {uniqueid}")


def _sessions() -> list[tuple[str, dict[str, object]]]:
    out = []
    for path in asterisk_fastagi_paths():
        for n, session in enumerate(json.loads(Path(path).read_text())["agi"]):
            out.append((f"{path.stem}-{n}", session))
    return out


def _unasked(session: dict[str, object]) -> list[str]:
    """Lines Asterisk sent by itself (``HANGUP`` on a hang-up or Redirect), from the session's timeline."""
    timeline: list[list[object]] = session.get("timeline", [])  # type: ignore[assignment]
    return [str(line) for _, kind, line in timeline if kind == "received unasked" and line == "HANGUP"]


@pytest.mark.parametrize(("name", "session"), _sessions(), ids=[n for n, _ in _sessions()])
async def test_answered_handler_replays_the_recorded_session(name: str, session: dict[str, object]) -> None:
    env: list[str] = session["env"]  # type: ignore[assignment]
    dialog: list[list[str]] = session["dialog"]  # type: ignore[assignment]
    uniqueid = next(line.split(": ", 1)[1] for line in env if line.startswith("agi_uniqueid:"))
    variables = _channel_variables(uniqueid)
    for command, reply in dialog:
        if command.startswith("GET VARIABLE "):
            # what Asterisk answered must be what the Originate set (unset: result=0): the model is faithful
            value = variables.get(command.split()[2])
            assert reply == ("200 result=0" if value is None else f"200 result=1 ({value})")
    recorded = [(c, r) for c, r in dialog if not c.startswith("GET VARIABLE ")]
    expected_attempt = next(
        r.split("(")[1].rstrip(")")
        for c, r in dialog
        if c in ("GET VARIABLE DIALER_ATTEMPT", "GET VARIABLE ATTEMPT") and "(" in r
    )
    agents = [c.split('"')[1] for c, _ in recorded if c.startswith("SET VARIABLE DIALER_AGENT")]
    unasked = _unasked(session)
    refused = any(c.startswith("EXEC ConfBridge") and r == "200 result=-1" for c, r in recorded)
    mismatches: list[str] = []
    after_refusal: list[str] = []
    gets_left = [sum(1 for c, _ in dialog if c.startswith("GET VARIABLE "))]

    def respond(command: str) -> list[str] | None:
        if command.startswith("GET VARIABLE "):
            value = variables.get(command.split()[2])  # unset variables: Asterisk says result=0
            reply = ["200 result=0"] if value is None else [f"200 result=1 ({value})"]
            gets_left[0] -= 1
            if gets_left[0] == 0 and not recorded and unasked:
                reply.append(unasked.pop())  # the channel was taken away while the dialer decided
            return reply
        if not recorded and refused:
            after_refusal.append(command)  # what the handler does once the bridge refused the customer
            return ["200 result=0"]
        want, reply = recorded.pop(0) if recorded else ("<nothing>", "")
        if command != want:
            mismatches.append(f"sent {command!r}, recorded {want!r}")
            return None
        return [reply]

    # Where the dialer sent nothing after the variables, the channel left first: the decision is slow.
    router = Router(ConnectToAgent(agents[0] if agents else "2999"), delay=0.0 if agents else 0.5)
    router.after_failure = PlayMessageThenHangup("dialer-identification")
    events: list[CallEvent] = []
    server = await started(AnsweredHandler(lambda: router, on_event=events.append))
    try:
        await fake_asterisk(server.port, env, respond)
        await until(lambda: server.stats.completed + server.stats.errors + server.stats.hangups == 1)
        if not agents:
            await until(lambda: bool(events))
    finally:
        await server.stop()
    assert mismatches == []
    assert recorded == []
    assert [(c.attempt_id, c.amd) for c in router.calls] == [(expected_attempt, None)]
    if not agents:
        # Asterisk's HANGUP while the router decided: the session closes at once (Asterisk holds the
        # channel until then) and the agent the router reserved is reported as a failed connect.
        assert server.stats.hangups == 1
        assert [(type(e), e.attempt_id, e.customer_gone) for e in events] == [  # type: ignore[attr-defined]
            (ConnectFailed, expected_attempt, True)
        ]
        return
    # The connect is confirmed on AMI (ConfbridgeJoin), never by the handler itself.
    assert events == []
    assert server.stats.completed == 1
    if refused:
        assert router.failures == [(expected_attempt, agents[0])]
        assert after_refusal == ["EXEC Playback dialer-identification", "HANGUP"]
    else:
        assert router.failures == [] and after_refusal == []


ENV = [
    "agi_network: yes",
    "agi_network_script: answered",
    "agi_request: agi://127.0.0.1:4573/answered",
    "agi_channel: PJSIP/trunk-00000001",
    "agi_uniqueid: att-42",
]


def _lab(variables: dict[str, str], on_exec: list[str] | None = None) -> Responder:
    def respond(command: str) -> list[str] | None:
        if command.startswith("GET VARIABLE "):
            value = variables.get(command.split()[2])
            return ["200 result=0"] if value is None else [f"200 result=1 ({value})"]
        if command.startswith("EXEC") and on_exec is not None:
            return on_exec
        return ["200 result=1"] if command.startswith("SET") else ["200 result=0"]

    return respond


async def test_amd_verdict_and_attempt_variable_reach_the_router() -> None:
    router = Router(PlayMessageThenHangup("dialer/identification"))
    server = await started(AnsweredHandler(lambda: router))
    try:
        variables = {"DIALER_ATTEMPT": "att-7", "AMDSTATUS": "MACHINE", "AMDCAUSE": "LONGGREETING-1500-1500"}
        commands = await fake_asterisk(server.port, ENV, _lab(variables))
    finally:
        await server.stop()
    assert router.calls[0].attempt_id == "att-7"
    assert (router.calls[0].amd, router.calls[0].amd_detail) == (AmdResult.MACHINE, "LONGGREETING-1500-1500")
    assert commands[-2:] == ["EXEC Playback dialer/identification", "HANGUP"]


async def test_attempt_falls_back_to_the_uniqueid_and_hangup_decision_hangs_up() -> None:
    router = Router(HangupCall())
    server = await started(AnsweredHandler(lambda: router))
    try:
        commands = await fake_asterisk(server.port, ENV, _lab({}))
    finally:
        await server.stop()
    assert router.calls[0].attempt_id == "att-42"
    assert router.calls[0].amd is None
    assert commands == [
        "GET VARIABLE DIALER_ATTEMPT",
        "GET VARIABLE ATTEMPT",
        "GET VARIABLE AMDSTATUS",
        "HANGUP",
    ]


async def test_a_router_too_slow_gets_the_call_hung_up_and_the_agent_it_took_handed_back() -> None:
    router = Router(ConnectToAgent("1001"), delay=0.3)
    events: list[CallEvent] = []
    handler = AnsweredHandler(lambda: router, decision_timeout_s=0.05, on_event=events.append)
    server = await started(handler)
    try:
        commands = await fake_asterisk(server.port, ENV, _lab({"DIALER_ATTEMPT": "a"}))
        await until(lambda: bool(events))  # the late decision is not cancelled half-way
    finally:
        await server.stop()
    assert commands[-1] == "HANGUP"
    assert handler.router_failures == 1
    assert [(type(e), e.agent_id, e.customer_gone) for e in events] == [  # type: ignore[attr-defined]
        (ConnectFailed, "1001", True)
    ]


HANGUP_FORMS = {
    "hangup_line": ["HANGUP"],
    "dead_channel": ["511 Command Not Permitted on a dead channel or intercepted channel"],
    "eof": None,
}


@pytest.mark.parametrize("form", sorted(HANGUP_FORMS))
@pytest.mark.parametrize("moment", ["first_command", "in_the_bridge"])
async def test_caller_hanging_up_mid_session_ends_it_quietly(
    form: str, moment: str, caplog: pytest.LogCaptureFixture
) -> None:
    reply = HANGUP_FORMS[form]

    def respond(command: str) -> list[str] | None:
        if moment == "first_command" or command.startswith("EXEC"):
            return reply
        return _lab({"DIALER_ATTEMPT": "a"})(command)

    server = await started(AnsweredHandler(lambda: Router(ConnectToAgent("1001"))))
    caplog.set_level(logging.INFO, logger="telephony.asterisk.fastagi")
    try:
        await fake_asterisk(server.port, ENV, respond)
        await until(lambda: server.stats.hangups == 1)
    finally:
        await server.stop()
    assert (server.stats.errors, server.stats.timeouts, server.stats.completed) == (0, 0, 0)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]


async def test_a_command_with_no_reply_times_out_and_the_session_is_dropped() -> None:
    server = await started(AnsweredHandler(lambda: Router(HangupCall())), command_timeout_s=0.2)
    silent_commands: list[str] = []

    async def silent_asterisk() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write("".join(line + "\n" for line in ENV).encode() + b"\n")
        await writer.drain()
        silent_commands.append((await reader.readline()).decode().strip())
        assert await asyncio.wait_for(reader.read(), 5.0) == b""  # we closed it
        writer.close()

    try:
        await silent_asterisk()
        await until(lambda: server.stats.timeouts == 1)
    finally:
        await server.stop()
    assert silent_commands == ["GET VARIABLE DIALER_ATTEMPT"]


async def test_unknown_script_is_counted_and_closed() -> None:
    server = await started(AnsweredHandler(lambda: None))
    try:
        env = [line.replace("answered", "nosuch") for line in ENV]
        assert await fake_asterisk(server.port, env, _lab({})) == []
        await until(lambda: server.stats.unknown_scripts == 1)
    finally:
        await server.stop()


def test_reply_lines_parse_into_code_result_and_data() -> None:
    r = parse_reply_line("200 result=1 (att-agi)")
    assert (r.code, r.result, r.data) == (200, "1", "att-agi")
    r = parse_reply_line("200 result=0 endpos=12345")
    assert (r.result, r.data, dict(r.extra)) == ("0", None, {"endpos": "12345"})
    assert parse_reply_line("200 result=1 (value with spaces)").data == "value with spaces"


def test_reply_reader_turns_dead_channel_and_usage_into_named_errors() -> None:
    reader = AgiReplyReader()
    with pytest.raises(AgiHangup):
        reader.feed_line("HANGUP\n")
    with pytest.raises(AgiHangup):
        reader.feed_line("511 Command Not Permitted on a dead channel or intercepted channel\n")
    assert reader.feed_line("520-Invalid command syntax.  Proper usage follows:\n") is None
    assert reader.feed_line("Usage: GET VARIABLE <variablename>\n") is None
    with pytest.raises(AgiCommandError, match="syntax"):
        reader.feed_line("520 End of proper usage.\n")
    with pytest.raises(AgiCommandError):
        reader.feed_line("510 Invalid or unknown command\n")


def test_commands_and_arguments_cannot_smuggle_a_second_command() -> None:
    with pytest.raises(ValueError, match="line break"):
        format_command("HANGUP\nEXEC System rm")
    with pytest.raises(ValueError, match="quote"):
        quote('1001" EXEC System')


async def test_agent_id_that_would_inject_arguments_is_refused() -> None:
    router = Router(ConnectToAgent("1001,x(evil)"))
    server = await started(AnsweredHandler(lambda: router))
    try:
        commands = await fake_asterisk(server.port, ENV, _lab({"DIALER_ATTEMPT": "a"}))
        await until(lambda: server.stats.errors == 1)
    finally:
        await server.stop()
    assert not any(c.startswith("EXEC") for c in commands)
