"""Agents who sign in from the phone: the PBX asks, this use case answers.

The Asterisk adapter's FastAGI ``agent-login`` (and any PBX path that asks a
``telephony.base.PhoneLogin``) hands over the agent id typed in the login
extension, the PIN and the phone leg's id.  The PIN is checked against the
users table (an active user with the agent role and a PIN set with
``dialer user pin``); the agent is then signed in to dialing through the
desk, paused until ready, with that leg as theirs: when it hangs up the agent
leaves dialing at once.
"""

from __future__ import annotations

import logging

from dialer.service import ServiceError
from dialer.service.accounts import Accounts
from dialer.service.desk import Desk

log = logging.getLogger(__name__)


class PhoneLogins:
    """``telephony.base.PhoneLogin`` over the accounts and the desk."""

    def __init__(self, accounts: Accounts, desk: Desk) -> None:
        self._accounts = accounts
        self._desk = desk

    async def on_phone_login(self, agent_id: str, pin: str, leg_id: str) -> str | None:
        user = await self._accounts.check_pin(agent_id, pin)
        if user is None:
            return "unknown agent, not an agent, disabled, or wrong PIN"
        try:
            await self._desk.login(agent_id, leg_id=leg_id)
        except ServiceError as exc:
            return str(exc)
        log.info("agent %s signed in from the phone (leg %s); paused until ready", agent_id, leg_id)
        return None
