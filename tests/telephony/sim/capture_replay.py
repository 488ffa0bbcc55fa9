"""Replaying a recorded AMI session against the Asterisk simulator and comparing what comes back.

Comparison rules (shared by the conformance tests):

* Ids are normalized: every Uniqueid/Linkedid that the client did not preset
  (ChannelId/OtherChannelId) becomes ``uid#n`` by first appearance, every
  channel-name suffix (``-0000002e``) ``-#n``, every BridgeUniqueid
  ``bridge#n``; the FastAGI port in ``agi://host:port/`` is set to 4573.
* Left out as timing noise: ``RTCPSent`` (RTCP every 5 s of media), the values
  of the ``RTPAUDIOQOS*`` variables (media statistics; the events themselves
  are compared), non-empty ``BRIDGEPVTCALLID`` values (the peer's SIP Call-ID),
  ``Uptime``/``LastReload``/``Timestamp``, ``ConfbridgeList``'s ``AnsweredTime``
  (whole seconds since the answer: which side of a second the list falls on is
  timing; the tests compare it within one second), and
  ``DeviceStateChange`` (compared separately: the same devices change state
  and each ends in the same state).
* Events of channels created before the session began are dropped from the
  capture (``originate_with_channelid_answered`` shows the tail of the
  previous session's 7001 call).
* Order: the capture is cut into *instants* (events less than 5 ms apart).
  The simulator must send the same instants in the same order, each with
  exactly the same events (every header compared); inside one instant the
  order is free, because there Asterisk's threads (the originate thread, each
  channel's PBX thread, the bridge, the SIP stack) race: the captures
  themselves show one call kind with different orders inside an instant
  (``burst_of_twenty`` calls 1 and 8, 2 and 9, 5 and 15).
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from telephony.asterisk.protocol import AmiMessage, AmiParser, parse_block
from telephony.sim.asterisk import AsteriskSimulator
from tests.captures import Capture

INSTANT_GAP_S = 0.005
_SUFFIX = re.compile(r"-([0-9a-f]{8})(?=;[12]\b|,|$)")
_NUMERIC_UID = re.compile(r"^\d+\.\d+$")
_AGI_PORT = re.compile(r"agi://([^:/]+):\d+/")
UID_KEYS = {
    "Uniqueid",
    "Linkedid",
    "DestUniqueid",
    "DestLinkedid",
    "LocalOneUniqueid",
    "LocalOneLinkedid",
    "LocalTwoUniqueid",
    "LocalTwoLinkedid",
    "SpyerUniqueid",
    "SpyerLinkedid",
    "SpyeeUniqueid",
    "SpyeeLinkedid",
}
CHANNEL_KEYS = {
    "Channel",
    "DestChannel",
    "LocalOneChannel",
    "LocalTwoChannel",
    "SpyerChannel",
    "SpyeeChannel",
}
DROPPED_KEYS = {"Uptime", "LastReload", "Timestamp", "AnsweredTime"}
# A capture's note that a SIP phone dialled in (sip_agent_dials_login_extension): nothing the
# AMI client sent; replayed by making the simulator's phone dial when its Newchannel appears.
_PHONE_DIALS = re.compile(
    r"^\(agent phone dials (?P<exten>\d+): .*?From user (?P<endpoint>[\w-]+)"
    r"(?:, hangs up (?P<bye>[\d.]+) s after answer|, stays (?P<stays>[\d.]+) s)?"
)
NOISE_EVENTS = {"RTCPSent", "DeviceStateChange"}

Normalized = tuple[tuple[str, str], ...]


@dataclass
class Normalizer:
    """First-appearance renaming of the ids one session made up."""

    preset: set[str]
    uids: dict[str, str] = field(default_factory=dict)
    suffixes: dict[str, str] = field(default_factory=dict)
    bridges: dict[str, str] = field(default_factory=dict)

    def uid(self, value: str) -> str:
        if value in self.preset or value == "<unknown>" or not _NUMERIC_UID.match(value):
            return value
        return self.uids.setdefault(value, f"uid#{len(self.uids)}")

    def channel(self, value: str) -> str:
        # Each channel technology numbers its channels on its own counter.
        tech = value.split("/", 1)[0]

        def one(m: re.Match[str]) -> str:
            key = f"{tech}/{m.group(1)}"
            return "-#" + self.suffixes.setdefault(key, str(len(self.suffixes)))

        return _SUFFIX.sub(one, value)

    def message(self, msg: AmiMessage) -> Normalized:
        out: list[tuple[str, str]] = []
        variable = msg.get("Variable", "")
        for key, value in msg.items():
            if key in DROPPED_KEYS:
                continue
            if key in UID_KEYS:
                value = self.uid(value)
            elif key in CHANNEL_KEYS:
                value = self.channel(value)
            elif key == "BridgeUniqueid":
                value = self.bridges.setdefault(value, f"bridge#{len(self.bridges)}")
            elif key == "Value" and variable.startswith("RTPAUDIOQOS"):
                value = "<media statistics>"
            elif key == "Value" and variable == "BRIDGEPVTCALLID" and value:
                value = "<SIP Call-ID>"
            elif key == "Value" and variable == "BRIDGEPEER":
                value = ",".join(self.channel(v) for v in value.split(",")) if value else value
            elif key in ("AppData", "Data"):
                value = _AGI_PORT.sub(r"agi://\1:4573/", value)
            out.append((key, value))
        return tuple(out)


def preset_ids(capture: Capture) -> set[str]:
    ids: set[str] = set()
    for _, raw in capture.sent:
        if raw.startswith("Action:"):
            action = parse_block(raw.rstrip("\r\n"))
            for key in ("ChannelId", "OtherChannelId"):
                if key in action:
                    ids.add(action[key])
    return ids


def capture_messages(capture: Capture) -> list[tuple[float, AmiMessage]]:
    """The capture's received messages, minus the banner and channels born before the session."""
    messages = [(t, parse_block(raw)) for t, raw in capture.received if not raw.startswith("Asterisk Call")]
    born = {m["Channel"] for _, m in messages if m.get("Event") == "Newchannel"}
    born_devices = {_SUFFIX.sub("", name).split(";")[0] for name in born}
    kept = []
    for t, m in messages:
        channel = m.get("Channel") or m.get("DestChannel")
        if channel is not None and _SUFFIX.search(channel) and channel not in born:
            continue
        device = m.get("Device", "")
        if device.startswith(("Local/", "PJSIP/")) and device not in born_devices:
            continue
        kept.append((t, m))
    return kept


def split_noise(
    messages: list[tuple[float, AmiMessage]],
) -> tuple[list[tuple[float, AmiMessage]], list[AmiMessage]]:
    main = [(t, m) for t, m in messages if m.get("Event") not in NOISE_EVENTS]
    devices = [m for _, m in messages if m.get("Event") == "DeviceStateChange"]
    return main, devices


def instants(timed: list[tuple[float, Normalized]]) -> list[Counter[Normalized]]:
    groups: list[Counter[Normalized]] = []
    last = None
    for t, item in timed:
        if last is None or t - last > INSTANT_GAP_S:
            groups.append(Counter())
        groups[-1][item] += 1
        last = t
    return groups


def describe(item: Normalized) -> str:
    d = dict(item)
    head = d.get("Event") or f"Response: {d.get('Response')}"
    keys = (
        "Channel",
        "DestChannel",
        "Application",
        "AppData",
        "Variable",
        "Value",
        "Cause",
        "Reason",
        "DialStatus",
    )
    return head + " " + " ".join(f"{k}={d[k]}" for k in keys if k in d)


def assert_same_instants(expected: list[tuple[float, Normalized]], got: list[Normalized], label: str) -> None:
    """``got`` must be the capture's instants in order, each one as a multiset of events."""
    groups = instants(expected)
    position = 0
    remaining = groups[0].copy() if groups else Counter()
    for index, item in enumerate(got):
        while not remaining and position + 1 < len(groups):
            position += 1
            remaining = groups[position].copy()
        if remaining[item] > 0:
            remaining[item] -= 1
            if remaining[item] == 0:
                del remaining[item]
            continue
        expected_now = "\n    ".join(describe(i) for i in remaining.elements())
        context = "\n    ".join(describe(i) for i in got[max(0, index - 5) : index + 3])
        raise AssertionError(
            f"{label}: simulator event #{index} does not belong to capture instant #{position}\n"
            f"  got:\n    {describe(item)}\n  full:\n    {dict(item)}\n"
            f"  the capture still expected in this instant:\n    {expected_now or '(nothing)'}\n"
            f"  simulator around it:\n    {context}"
        )
    missing = list(remaining.elements())
    for group in groups[position + 1 :]:
        missing.extend(group.elements())
    assert not missing, f"{label}: the simulator never sent:\n    " + "\n    ".join(
        describe(i) for i in missing
    )


def assert_same_order(expected: list[Normalized], got: list[Normalized], label: str) -> None:
    """Event for event, in order (for scenarios whose in-instant order is reproducible)."""
    for index, (want, have) in enumerate(zip(expected, got, strict=False)):
        if want != have:
            raise AssertionError(
                f"{label}: event #{index} differs in order\n  capture:   {describe(want)}\n"
                f"  simulator: {describe(have)}"
            )
    assert len(expected) == len(got), f"{label}: {len(got)} events, the capture has {len(expected)}"


def device_summary(devices: list[AmiMessage]) -> dict[str, str]:
    """Device -> its last state (the loose DeviceStateChange check)."""
    last: dict[str, str] = {}
    for m in devices:
        last[m.get("Device", "")] = m.get("State", "")
    return last


async def _phone_dials_in(
    capture: Capture, t: float, phone: re.Match[str], sim: AsteriskSimulator, t0: float, time_scale: float
) -> None:
    """At the time the capture shows the phone's Newchannel, the simulator's phone dials."""
    endpoint, exten = phone["endpoint"], phone["exten"]
    seen = next(
        (
            at
            for at, raw in capture.received
            if at >= t
            and raw.startswith("Event: Newchannel")
            and f"Channel: PJSIP/{endpoint}-" in raw
            and f"Exten: {exten}\r\n" in raw
        ),
        t,
    )
    loop = asyncio.get_running_loop()
    await asyncio.sleep(max(0.0, t0 + seen / time_scale - loop.time()))
    after = phone["bye"] or phone["stays"]
    sim.phone_dials_in(endpoint, exten, float(after) if after else None)


@dataclass
class Replay:
    messages: list[tuple[float, AmiMessage]]  # capture-time seconds, message
    closed_by_server: bool


async def replay(
    capture: Capture,
    sim: AsteriskSimulator,
    time_scale: float,
    on_restart: Any = None,
) -> Replay:
    """Log in, send the capture's actions at their (scaled) times, collect until its end."""
    loop = asyncio.get_running_loop()
    reader, writer = await asyncio.open_connection("127.0.0.1", sim.port)
    parser = AmiParser()
    got: list[tuple[float, AmiMessage]] = []
    t0 = loop.time()
    writer.write(b"Action: Login\r\nActionID: login-1\r\nUsername: dialer\r\nSecret: dialer-secret\r\n\r\n")
    end = capture.received[-1][0]
    ends_with_goodbye = capture.received[-1][1].startswith("Response: Goodbye")

    async def send_actions() -> None:
        for t, raw in capture.sent:
            due = t0 + t / time_scale - loop.time()
            if due > 0:  # actions of one instant go out together, as the capture's client wrote them
                await asyncio.sleep(due)
            if raw.startswith("Action: Login"):
                continue
            if raw.startswith("(operator runs: core restart now)"):
                await sim.restart()
                continue
            phone = _PHONE_DIALS.match(raw)
            if phone is not None:
                await _phone_dials_in(capture, t, phone, sim, t0, time_scale)
                continue
            writer.write(raw.encode())
        if ends_with_goodbye:
            await asyncio.sleep(max(0.0, t0 + end / time_scale - loop.time()))
            writer.write(b"Action: Logoff\r\nActionID: logoff-1\r\n\r\n")

    sender = asyncio.ensure_future(send_actions())
    closed = False
    deadline = t0 + end / time_scale + 2.0
    try:
        while loop.time() < deadline:
            try:
                data = await asyncio.wait_for(reader.read(65536), max(0.01, deadline - loop.time()))
            except TimeoutError:
                break
            if not data:
                closed = True
                break
            now = (loop.time() - t0) * time_scale
            got.extend((now, m) for m in parser.feed(data))
    finally:
        await sender
        writer.close()
    return Replay(got, closed)
