"""AMI event bodies of the Asterisk simulator, shaped like Asterisk 22 writes them.

Every channel event carries the same snapshot block (``Channel``,
``ChannelState`` ... ``Linkedid``) in the order of the recorded captures;
dial events carry it with a ``Dest`` prefix, ``LocalBridge`` twice with
``LocalOne``/``LocalTwo``, bridge events a bridge block first.  Pure code: the
simulator keeps ``SimChannel``/``SimBridge`` up to date and asks this module
for the header pairs, then the AMI codec encodes them.
"""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass, field

Headers = list[tuple[str, str]]

STATE_DESC = {
    0: "Down",
    1: "Rsrvd",
    2: "OffHook",
    3: "Dialing",
    4: "Ring",
    5: "Ringing",
    6: "Up",
    7: "Busy",
}

# Cause-txt of the Hangup event (Asterisk's ast_cause2str).
CAUSE_TEXT = {
    0: "Unknown",
    1: "Unallocated (unassigned) number",
    3: "No route to destination",
    16: "Normal Clearing",
    17: "User busy",
    18: "No user responding",
    19: "User alerting, no answer",
    21: "Call Rejected",
    27: "Destination out of order",
    28: "Invalid number format (addr incomplete)",
    31: "Normal, unspecified",
    34: "Circuit/channel congestion",
    38: "Network out of order",
    41: "Temporary failure",
    42: "Switching equipment congestion",
    44: "Requested channel not available",
    127: "Interworking, unspecified",
}

PRIV_CALL = "call,all"
PRIV_DIALPLAN = "dialplan,all"
PRIV_USER = "user,all"
PRIV_SYSTEM = "system,all"


@dataclass(eq=False)
class SimChannel:
    """What Asterisk knows of one channel, as far as AMI shows it."""

    name: str
    uniqueid: str
    linkedid: str
    state: int
    context: str
    exten: str
    priority: int = 1
    cid_num: str = "<unknown>"
    cid_name: str = "<unknown>"
    conn_num: str = "<unknown>"
    conn_name: str = "<unknown>"
    language: str = "en"
    accountcode: str = ""
    variables: dict[str, str] = field(default_factory=dict)
    application: str = ""
    app_data: str = ""
    bridge: SimBridge | None = None
    created: float = field(default_factory=time.monotonic)
    alive: bool = True

    def snapshot(self, prefix: str = "") -> Headers:
        return [
            (f"{prefix}Channel", self.name),
            (f"{prefix}ChannelState", str(self.state)),
            (f"{prefix}ChannelStateDesc", STATE_DESC.get(self.state, "Unknown")),
            (f"{prefix}CallerIDNum", self.cid_num),
            (f"{prefix}CallerIDName", self.cid_name),
            (f"{prefix}ConnectedLineNum", self.conn_num),
            (f"{prefix}ConnectedLineName", self.conn_name),
            (f"{prefix}Language", self.language),
            (f"{prefix}AccountCode", self.accountcode),
            (f"{prefix}Context", self.context),
            (f"{prefix}Exten", self.exten),
            (f"{prefix}Priority", str(self.priority)),
            (f"{prefix}Uniqueid", self.uniqueid),
            (f"{prefix}Linkedid", self.linkedid),
        ]

    @property
    def device(self) -> str:
        """Device name of DeviceStateChange: the channel name without its instance suffix."""
        base = self.name.split(";")[0]
        head, sep, tail = base.rpartition("-")
        return head if sep and len(tail) == 8 else base


@dataclass(eq=False)
class SimBridge:
    """A ConfBridge conference: its bridge snapshot and who is in it."""

    uniqueid: str
    name: str
    announcer: str  # the CBAnn channel ConfBridge puts in every conference
    members: list[SimChannel] = field(default_factory=list)
    num_channels: int = 0  # as Asterisk counts it: the announcer included
    max_members: int = 0  # its bridge profile's max_members (0: no limit)
    admins: set[str] = field(default_factory=set)  # channel names of members with an admin profile
    muted: set[str] = field(default_factory=set)  # channel names of muted members

    def snapshot(self) -> Headers:
        return [
            ("BridgeUniqueid", self.uniqueid),
            ("BridgeType", "base"),
            ("BridgeTechnology", "softmix"),
            ("BridgeCreator", "ConfBridge"),
            ("BridgeName", self.name),
            ("BridgeNumChannels", str(self.num_channels)),
            ("BridgeVideoSourceMode", "none"),
        ]

    def peers_of(self, channel: SimChannel) -> str:
        """BRIDGEPEER value for a member: the announcer first, then the others."""
        return ",".join([self.announcer] + [m.name for m in self.members if m is not channel])


def event(name: str, privilege: str, *blocks: Headers) -> Headers:
    out: Headers = [("Event", name), ("Privilege", privilege)]
    for block in blocks:
        out.extend(block)
    return out


def channel_event(
    name: str, channel: SimChannel, *extra: tuple[str, str], privilege: str = PRIV_CALL
) -> Headers:
    return event(name, privilege, channel.snapshot(), list(extra))


def newexten(channel: SimChannel, application: str, data: str) -> Headers:
    return event(
        "Newexten",
        PRIV_DIALPLAN,
        channel.snapshot(),
        [("Extension", channel.exten), ("Application", application), ("AppData", data)],
    )


def varset(channel: SimChannel, variable: str, value: str) -> Headers:
    return event("VarSet", PRIV_DIALPLAN, channel.snapshot(), [("Variable", variable), ("Value", value)])


def newcallerid(channel: SimChannel) -> Headers:
    return channel_event(
        "NewCallerid", channel, ("CID-CallingPres", "0 (Presentation Allowed, Not Screened)")
    )


def dial_event(name: str, dest: SimChannel, *extra: tuple[str, str]) -> Headers:
    return event(name, PRIV_CALL, dest.snapshot("Dest"), list(extra))


def local_bridge(one: SimChannel, two: SimChannel) -> Headers:
    return event(
        "LocalBridge",
        PRIV_CALL,
        one.snapshot("LocalOne"),
        two.snapshot("LocalTwo"),
        [("Context", two.context), ("Exten", two.exten), ("LocalOptimization", "Yes")],
    )


def hangup_request(name: str, channel: SimChannel, cause: int, tech_cause: int | None = None) -> Headers:
    extra = [("Cause", str(cause))]
    if tech_cause is not None:
        extra.append(("TechCause", str(tech_cause)))
    return event(name, PRIV_CALL, channel.snapshot(), extra)


def hangup(channel: SimChannel, cause: int, tech_cause: int | None = None) -> Headers:
    extra = [("Cause", str(cause)), ("Cause-txt", CAUSE_TEXT.get(cause, "Unknown"))]
    if tech_cause is not None:
        extra.append(("TechCause", str(tech_cause)))
    return event("Hangup", PRIV_CALL, channel.snapshot(), extra)


def device_state(device: str, state: str) -> Headers:
    return event("DeviceStateChange", PRIV_CALL, [("Device", device), ("State", state)])


def bridge_event(name: str, bridge: SimBridge) -> Headers:
    if name.startswith("Confbridge"):
        return event(name, PRIV_CALL, [("Conference", bridge.name)], bridge.snapshot())
    return event(name, PRIV_CALL, bridge.snapshot())


def _yes_no(flag: bool) -> str:
    return "Yes" if flag else "No"


def bridge_channel_event(name: str, bridge: SimBridge, channel: SimChannel) -> Headers:
    admin = ("Admin", _yes_no(channel.name in bridge.admins))
    if name == "ConfbridgeJoin":
        return event(
            name,
            PRIV_CALL,
            [("Conference", bridge.name)],
            bridge.snapshot(),
            channel.snapshot(),
            [admin, ("Muted", _yes_no(channel.name in bridge.muted))],
        )
    if name in ("ConfbridgeLeave", "ConfbridgeMute", "ConfbridgeUnmute"):
        conference = [("Conference", bridge.name)]
        return event(name, PRIV_CALL, conference, bridge.snapshot(), channel.snapshot(), [admin])
    return event(name, PRIV_CALL, bridge.snapshot(), channel.snapshot())


def user_event(channel: SimChannel, name: str, fields: list[tuple[str, str]]) -> Headers:
    return event("UserEvent", PRIV_USER, channel.snapshot(), [("UserEvent", name)], fields)


def originate_response(
    action_id: str,
    success: bool,
    channel: str,
    target: list[tuple[str, str]],
    reason: int,
    uniqueid: str,
    cid_num: str,
    cid_name: str,
) -> Headers:
    return event(
        "OriginateResponse",
        PRIV_CALL,
        [("ActionID", action_id), ("Response", "Success" if success else "Failure"), ("Channel", channel)],
        target,
        [
            ("Reason", str(reason)),
            ("Uniqueid", uniqueid),
            ("CallerIDNum", cid_num),
            ("CallerIDName", cid_name),
        ],
    )


def rtp_quality(channel: SimChannel, rx_count: int, tx_count: int) -> list[Headers]:
    """The RTPAUDIOQOS* VarSets PJSIP writes when a channel with media ends (synthetic figures)."""
    stats = (
        f"ssrc={zlib.crc32(channel.uniqueid.encode())};themssrc=4660;lp=0;rxjitter=0.000000;"
        f"rxcount={rx_count};txjitter=0.000000;txcount={tx_count};rlp=0;rtt=0.000000;rxmes=0.000000;"
        "txmes=88.087887"
    )
    jitter = (
        "minrxjitter=000.000000;maxrxjitter=000.000000;avgrxjitter=000.000000;stdevrxjitter=000.000000;"
        "mintxjitter=000.000000;maxtxjitter=000.000000;avgtxjitter=000.000000;stdevtxjitter=000.000000;"
    )
    loss = (
        "  minrxlost=000.000000;  maxrxlost=000.000000;  avgrxlost=000.000000;  stdevrxlost=000.000000;"
        "  mintxlost=000.000000;  maxtxlost=000.000000;  avgtxlost=000.000000;  stdevtxlost=000.000000;"
    )
    rtt = "     minrtt=000.000000;     maxrtt=000.000000;     avgrtt=000.000000;     stdevrtt=000.000000;"
    mes = (
        "   minrxmes=088.087887;   maxrxmes=088.087887;   avgrxmes=088.087887;   stdevrxmes=000.000000;"
        "   mintxmes=000.000000;   maxtxmes=000.000000;   avgtxmes=000.000000;   stdevtxmes=000.000000;"
    )
    return [
        varset(channel, "RTPAUDIOQOS", stats),
        varset(channel, "RTPAUDIOQOSJITTER", jitter),
        varset(channel, "RTPAUDIOQOSLOSS", loss),
        varset(channel, "RTPAUDIOQOSRTT", rtt),
        varset(channel, "RTPAUDIOQOSMES", mes),
    ]
