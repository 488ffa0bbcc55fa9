"""ConfBridge profiles of the simulated Asterisk and who may join a conference.

The project's ``confbridge_dialer.conf`` gives the agent bridge profile
``dialer_agent_bridge`` ``max_members = 2``: the conference takes that profile
from its first member (the agent leg), and a third member who is not an admin
is refused.  Asterisk then plays ``conf-locked`` (1.75 s in
``sip_connect_into_full_bridge``), sets ``CONFBRIDGE_RESULT=FAILED`` and
ConfBridge() returns -1 with no ``BridgeEnter``/``ConfbridgeJoin``; the channel
goes on in the dialplan.  Admin user profiles (a supervisor's) are not counted
and are never refused.
"""

from __future__ import annotations

from telephony.sim.ami_events import SimBridge

# Bridge profile -> max_members (0: no limit), as confbridge_dialer.conf sets them.
BRIDGE_MAX_MEMBERS = {"dialer_agent_bridge": 2}
# User profiles with admin = yes.
ADMIN_USER_PROFILES = {"dialer_supervisor_listen"}
# User profiles with startmuted = yes (the lab's supervisor profile: admin, startmuted, quiet).
STARTMUTED_USER_PROFILES = {"dialer_supervisor_listen"}
CONF_LOCKED_S = 1.75  # conf-locked, from ConfBridge() to its -1 (capture)


def confbridge_args(data: str) -> tuple[str, str, str]:
    """``agent_2003,dialer_agent_bridge,dialer_agent`` -> (conference, bridge profile, user profile)."""
    parts = [p.strip().strip('"') for p in data.split(",")]
    parts += ["", "", ""]
    return parts[0], parts[1], parts[2]


def max_members_of(bridge_profile: str) -> int:
    return BRIDGE_MAX_MEMBERS.get(bridge_profile, 0)


def refuses(bridge: SimBridge | None, user_profile: str) -> bool:
    """Whether joining ``bridge`` (None: not started yet) with ``user_profile`` is refused as full."""
    if bridge is None or bridge.max_members <= 0 or user_profile in ADMIN_USER_PROFILES:
        return False
    return len(bridge.members) >= bridge.max_members
