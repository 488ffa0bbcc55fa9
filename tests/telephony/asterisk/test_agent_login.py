"""FastAGI ``agent-login``: an agent dials the login extension and types a PIN."""

from __future__ import annotations

import asyncio

from telephony.asterisk.agent_login import LOGIN_OK, AgentLoginHandler
from telephony.asterisk.fastagi import FastAgiServer
from tests.telephony.asterisk.test_fastagi import fake_asterisk, until

ENV = [
    "agi_network: yes",
    "agi_network_script: agent-login",
    "agi_request: agi://127.0.0.1:4573/agent-login",
    "agi_channel: PJSIP/agentphone-00000007",
    "agi_uniqueid: 1796399371.27",  # the phone's leg: Asterisk's id, not ours
    "agi_arg_1: 2101",
]


class Logins:
    def __init__(self, pin: str) -> None:
        self.pin = pin
        self.seen: list[tuple[str, str, str]] = []

    async def on_phone_login(self, agent_id: str, pin: str, leg_id: str) -> str | None:
        self.seen.append((agent_id, pin, leg_id))
        return None if pin == self.pin else "wrong PIN"


def keypad(*pins: str):  # type: ignore[no-untyped-def]
    typed = list(pins)

    def respond(command: str) -> list[str] | None:
        if command.startswith("GET DATA"):
            return [f"200 result={typed.pop(0)}" if typed else "200 result= (timeout)"]
        if command.startswith("SET VARIABLE"):
            return ["200 result=1"]
        return ["200 result=0"]

    return respond


async def run(logins: Logins | None, *pins: str, env: list[str] = ENV) -> tuple[list[str], AgentLoginHandler]:
    handler = AgentLoginHandler(lambda: logins)
    server = FastAgiServer({"agent-login": handler}, "127.0.0.1", 0, command_timeout_s=2.0)
    await server.start()
    try:
        commands = await fake_asterisk(server.port, env, keypad(*pins))
        await until(lambda: server.stats.completed + server.stats.errors + server.stats.hangups == 1)
    finally:
        await server.stop()
    return commands, handler


async def test_right_pin_signs_the_agent_in_with_the_phone_leg_and_lets_the_dialplan_bridge_it() -> None:
    logins = Logins("4321")
    commands, handler = await run(logins, "4321")
    assert logins.seen == [("2101", "4321", "1796399371.27")]
    assert commands == [
        "GET DATA agent-pass 8000 12",
        f'SET VARIABLE DIALER_LOGIN "{LOGIN_OK}"',
        "EXEC Playback agent-loginok",
    ]
    assert (handler.accepted, handler.refused) == (1, 0)


async def test_wrong_pins_are_refused_three_times_and_the_call_ends_without_login() -> None:
    logins = Logins("4321")
    commands, handler = await run(logins, "1111", "2222", "3333", "4321")
    assert [pin for _, pin, _ in logins.seen] == ["1111", "2222", "3333"]
    assert not any(c.startswith("SET VARIABLE DIALER_LOGIN") for c in commands)
    assert commands.count("EXEC Playback agent-incorrect") == 3
    assert handler.refused == 3


async def test_no_pin_typed_is_not_sent_to_the_users_check() -> None:
    logins = Logins("4321")
    commands, handler = await run(logins)
    assert logins.seen == []
    assert handler.refused == 3


async def test_a_login_extension_without_agent_id_or_runtime_is_refused_out_loud() -> None:
    no_arg = [line for line in ENV if not line.startswith("agi_arg_1")]
    commands, handler = await run(Logins("1"), env=no_arg)
    assert commands == ["EXEC Playback agent-incorrect"]
    commands, handler = await run(None, "1")
    assert commands == ["EXEC Playback agent-incorrect"]
    await asyncio.sleep(0)
