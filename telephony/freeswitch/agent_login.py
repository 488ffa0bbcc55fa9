"""Phone login on FreeSWITCH: an agent dials the login extension and types a PIN.

The ESL counterpart of Asterisk's FastAGI ``agent-login``
(telephony/asterisk/agent_login.py).  The shipped dialplan
(``dialer_agent_login`` in config/freeswitch/dialplan/dialer.xml) answers
``9<agent id>``, asks for the PIN with ``play_and_get_digits`` into
``dialer_login_pin``, sets ``dialer_login_agent=<id>`` and parks.  The adapter
sees the CHANNEL_PARK with ``variable_dialer_login_agent`` and hands it here:

- the PIN variable is cleared on the channel at once (``uuid_setvar``), so
  later events and the CDR do not carry it; the PIN is never logged;
- the runtime's ``PhoneLogin`` gets (agent id, PIN, the channel's Unique-ID);
- signed in: the adapter seats the leg as the agent's current leg and moves it
  with ``uuid_transfer <uuid> agent_<id> XML dialer`` (as ``login_agent``'s legs
  go there); its hang-up or leaving the conference is ``AgentLegEnded``;
- refused: the refusal prompt plays and the leg goes back to the login
  extension for another PIN (``transfer 9<id> XML dialer``), at most
  ``MAX_TRIES`` PINs per call; after the last one the prompt plays and the
  leg hangs up.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# The channel variables the login extension sets (config/freeswitch/dialplan/dialer.xml).
AGENT_VARIABLE = "dialer_login_agent"
PIN_VARIABLE = "dialer_login_pin"
LOGIN_EXTENSION_PREFIX = "9"  # 9<agent id>, as on Asterisk
# FreeSWITCH's own sounds (callie): "Login incorrect."
PROMPT_REFUSED = "voicemail/vm-fail_auth.wav"
MAX_TRIES = 3  # PINs per call, as on Asterisk
_AGENT_ID = re.compile(r"^[0-9]{1,40}$")  # what a phone can dial after the 9
_PIN = re.compile(r"^[0-9]{1,40}$")


@dataclass(frozen=True, slots=True)
class LoginRequest:
    """A parked login channel: who it says it is and what was typed (never logged)."""

    leg_id: str
    agent_id: str
    pin: str

    def __repr__(self) -> str:  # the PIN stays out of logs and tracebacks
        return f"LoginRequest(leg_id={self.leg_id!r}, agent_id={self.agent_id!r})"


def login_request(uuid: str, agent: str | None, pin: str | None) -> LoginRequest | None:
    """The login a CHANNEL_PARK asks for, or None when it is no login (no/odd agent variable)."""
    if not agent or not _AGENT_ID.match(agent):
        return None
    typed = pin or ""
    return LoginRequest(uuid, agent, typed if _PIN.match(typed) else "")


def login_extension(agent_id: str) -> str:
    return f"{LOGIN_EXTENSION_PREFIX}{agent_id}"
