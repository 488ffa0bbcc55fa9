"""The ``agent-login`` FastAGI handler: an agent logs in by dialing the login extension.

The shipped dialplan (``[dialer-agent]`` in config/asterisk/extensions_dialer.conf)
answers ``9<agent id>``, runs ``AGI(agi://<dialer>/agent-login,<agent id>)``
and, when this handler sets ``DIALER_LOGIN=OK``, puts the phone in the agent's
personal bridge ``agent_<id>``.  The handler asks for the PIN (``GET DATA``),
hands agent id, PIN and the phone leg's Uniqueid to the runtime's
``PhoneLogin`` (which checks the PIN against the users table and signs the
agent in to dialing), and says the result with Asterisk's own agent prompts.

The leg is then known by its Uniqueid: when it hangs up, the call tracker
reports ``AgentLegEnded`` and the agent leaves dialing at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from telephony.asterisk.fastagi import AgiSession
from telephony.base import PhoneLogin

log = logging.getLogger(__name__)

LOGIN_OK = "OK"
# Prompts of Asterisk's core sounds (the agent pool's own).
PROMPT_PIN = "agent-pass"  # "Please enter your password followed by the pound key."
PROMPT_WRONG = "agent-incorrect"  # "Login incorrect. Please try again."
PROMPT_OK = "agent-loginok"  # "Agent logged in."


class AgentLoginHandler:
    """Checks an agent's PIN over AGI; at most ``max_tries`` PINs per call."""

    PIN_TIMEOUT_MS = 8000
    PIN_MAX_DIGITS = 12

    def __init__(self, login: Callable[[], PhoneLogin | None], max_tries: int = 3) -> None:
        self._login = login
        self.max_tries = max_tries
        self.refused = 0  # wrong PINs, unknown agents: for the metrics and the log
        self.accepted = 0

    @staticmethod
    def agent_id(session: AgiSession) -> str:
        """The agent id the dialplan passed (``AGI(...,<id>)``), digits and letters only."""
        value = session.env.get("agi_arg_1", "").strip()
        return value if value.isalnum() and len(value) <= 40 else ""

    async def __call__(self, session: AgiSession) -> None:
        agent_id = self.agent_id(session)
        leg_id = session.env.get("agi_uniqueid", "")
        login = self._login()
        if not agent_id or not leg_id or login is None:
            self.refused += 1
            why = "no agent id in the AGI() call" if not agent_id else "the dialer is not taking logins"
            log.warning("phone login refused (leg %s): %s", leg_id or "?", why)
            await session.command(f"EXEC Playback {PROMPT_WRONG}", 30.0)
            return
        for attempt in range(1, self.max_tries + 1):
            reply = await session.command(
                f"GET DATA {PROMPT_PIN} {self.PIN_TIMEOUT_MS} {self.PIN_MAX_DIGITS}",
                self.PIN_TIMEOUT_MS / 1000 + 30.0,
            )
            pin = reply.result if reply.result.isdigit() else ""
            problem = await login.on_phone_login(agent_id, pin, leg_id) if pin else "no PIN was typed"
            if problem is None:
                self.accepted += 1
                await session.set_variable("DIALER_LOGIN", LOGIN_OK)
                await session.command(f"EXEC Playback {PROMPT_OK}", 30.0)
                log.info("agent %s logged in from the phone (leg %s)", agent_id, leg_id)
                return
            self.refused += 1
            log.warning("agent %s: phone login %d/%d refused: %s", agent_id, attempt, self.max_tries, problem)
            await session.command(f"EXEC Playback {PROMPT_WRONG}", 30.0)
