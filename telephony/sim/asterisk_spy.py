"""Supervision on the simulated Asterisk: ChanSpy, and the manager actions on a ConfBridge member.

As ``sip_supervisor_listen_whisper_barge`` recorded it (Asterisk 22.10, the
project's ``dialer`` user, which may Originate ``Application: ChanSpy``):

* ``ChanSpy(PJSIP/agentphone,<options>)`` on an Originated supervisor leg: 100 ms
  after the answer ``ChanSpyStart`` (``Spyer*`` = the supervisor's channel,
  ``Spyee*`` = the first channel whose name starts with the spied prefix), and
  ConfBridge re-reads the spied bridge's peers (``BRIDGEPEER`` of every member
  again, twice for whisper) as ChanSpy's audiohooks attach.  Listen (``q``),
  whisper (``w``), barge (``B``) and the DTMF mode switch (``d``: 4 listen,
  5 whisper, 6 barge) look the same on AMI otherwise: the switch is not visible
  (DTMF events need the ``dtmf`` read class).
* A manager ``Hangup`` of the supervisor: the peers are re-read, ``ChanSpyStop``,
  re-read again (not for plain listen, whose two fell together), the RTP
  statistics and ``Hangup`` ``Cause: 0``; no ``SoftHangupRequest``.  The
  delays are the capture's (``STOP_TIMING``).
* The spied channel hanging up: ``ChanSpyStop``; with ``E`` ChanSpy returns and
  the supervisor leg is hung up, without it ChanSpy looks for the next channel.
  (Not captured: modelled on app_chanspy.)

ConfBridge manager actions (``asterisk_confbridge`` has the profiles): a
member's flags are those of its user profile (``dialer_supervisor_listen``
joins as admin and muted); ``ConfbridgeList`` lists the members with them,
``ConfbridgeMute``/``ConfbridgeUnmute`` change ``Muted`` and send
``Event: ConfbridgeMute``/``ConfbridgeUnmute`` after the response.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass

from telephony.asterisk.protocol import AmiMessage
from telephony.sim import ami_events as ev
from telephony.sim.ami_events import Headers, SimBridge, SimChannel
from telephony.sim.asterisk_pbx import Activity, Leg, PbxEngine

SPY_START_S = 0.1  # from the supervisor's answer to ChanSpyStart (all four spies of the capture)
SPY_SCAN_S = 1.0  # ChanSpy looks again for a channel to spy on when none matches


@dataclass(frozen=True)
class StopTiming:
    """After a manager Hangup of the spy: when the peers are re-read and ChanSpyStop comes (PBX s)."""

    first_peers_s: float  # from the Hangup action to the first re-read of the spied bridge's peers
    stop_s: float  # from there to ChanSpyStop
    peers_after_stop: bool  # the peers are re-read once more after ChanSpyStop


# By mode, as captured (sip_supervisor_listen_whisper_barge): dtmf 20.013 -> 20.014 -> 20.035,
# listen 25.015 -> 25.035 (one instant), whisper 29.517 -> 29.535 -> 29.555, barge 34.019 ->
# 34.035 -> 34.054.
STOP_TIMING = {
    "dtmf": StopTiming(0.001, 0.021, True),
    "listen": StopTiming(0.020, 0.0, False),
    "whisper": StopTiming(0.018, 0.020, True),
    "barge": StopTiming(0.016, 0.019, True),
}


def spy_mode(options: str) -> str:
    """The mode ChanSpy starts in: ``d`` (DTMF switch), ``w`` whisper, ``B`` barge, else listen."""
    if "d" in options:
        return "dtmf"
    if "w" in options:
        return "whisper"
    if "B" in options:
        return "barge"
    return "listen"


def parse_chanspy(data: str) -> tuple[str, str]:
    """``PJSIP/agentphone,qdE`` -> (channel-name prefix, options); options in ``(...)`` dropped."""
    prefix, _, options = data.partition(",")
    plain = []
    depth = 0
    for c in options:
        if c == "(":
            depth += 1
        elif c == ")":
            depth = max(0, depth - 1)
        elif depth == 0:
            plain.append(c)
    return prefix.strip(), "".join(plain)


def find_spyee(engine: PbxEngine, prefix: str, spyer: Leg) -> Leg | None:
    """The first live channel whose name starts with ``prefix`` (ChanSpy's channel scan)."""
    if not prefix:
        return None
    for leg in engine.legs.values():
        ch = leg.chan
        if leg is not spyer and ch.alive and ch.name.startswith(prefix):
            return leg
    return None


def _spy_event(name: str, spyer: SimChannel, spyee: SimChannel) -> Headers:
    return ev.event(name, ev.PRIV_CALL, spyer.snapshot("Spyer"), spyee.snapshot("Spyee"))


def _reread_peers(engine: PbxEngine, spyee: SimChannel) -> None:
    """ConfBridge writes every member's BRIDGEPEER again when an audiohook comes or goes."""
    bridge = spyee.bridge
    if bridge is None:
        return
    for member in bridge.members:
        engine.emit(ev.varset(member, "BRIDGEPEER", bridge.peers_of(member)))


async def chanspy(engine: PbxEngine, leg: Leg, data: str) -> str:
    """Run ChanSpy(``data``) on ``leg``; "" when it returns, "hangup" when it ended the channel."""
    prefix, options = parse_chanspy(data)
    mode = spy_mode(options)
    leg.activity = Activity.APP
    stop_cause: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def hung_up_by_manager(cause: int) -> None:
        if not stop_cause.done():
            stop_cause.set_result(cause)

    leg.on_ami_hangup = hung_up_by_manager
    try:
        await engine.sleep(SPY_START_S, leg.clock)
        while leg.chan.alive:
            spyee = find_spyee(engine, prefix, leg)
            if spyee is None:
                if stop_cause.done():
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(stop_cause), SPY_SCAN_S / engine.time_scale)
                continue
            engine.emit(_spy_event("ChanSpyStart", leg.chan, spyee.chan))
            for _ in range(2 if mode == "whisper" else 1):
                _reread_peers(engine, spyee.chan)
            gone: asyncio.Future[object] = asyncio.ensure_future(spyee.hungup.wait())
            stopped: asyncio.Future[object] = asyncio.ensure_future(asyncio.shield(stop_cause))
            try:
                await asyncio.wait({gone, stopped}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                gone.cancel()
                stopped.cancel()
            if stop_cause.done():
                await _stopped_by_manager(engine, leg, spyee, mode)
                return "hangup"
            engine.emit(_spy_event("ChanSpyStop", leg.chan, spyee.chan))
            if "E" in options:
                return ""
            leg.clock.at = asyncio.get_running_loop().time()
        if stop_cause.done() and leg.chan.alive:
            _end_spyer(engine, leg)
        return "hangup"
    finally:
        leg.on_ami_hangup = None


async def _stopped_by_manager(engine: PbxEngine, leg: Leg, spyee: Leg, mode: str) -> None:
    timing = STOP_TIMING[mode]
    clock = leg.clock
    clock.at = asyncio.get_running_loop().time()
    await engine.sleep(timing.first_peers_s, clock)
    _reread_peers(engine, spyee.chan)
    await engine.sleep(timing.stop_s, clock)
    engine.emit(_spy_event("ChanSpyStop", leg.chan, spyee.chan))
    if timing.peers_after_stop:
        _reread_peers(engine, spyee.chan)
    _end_spyer(engine, leg)


def _end_spyer(engine: PbxEngine, leg: Leg) -> None:
    """The spy's channel goes: RTP statistics, ``Hangup`` ``Cause: 0`` (capture), no SoftHangupRequest."""
    leg.activity = Activity.DEAD
    engine.rtp_quality(leg)
    engine.gone(leg, 0)
    engine.end_call(leg.call)


# -- ConfBridge manager actions -----------------------------------------------------------


def _member(bridge: SimBridge, channel: str) -> SimChannel | None:
    return next((m for m in bridge.members if m.name == channel), None)


def _yes_no(flag: bool) -> str:
    return "Yes" if flag else "No"


def confbridge_action(
    engine: PbxEngine, name: str, action: AmiMessage
) -> tuple[list[tuple[str, str]], list[Headers], list[Headers]]:
    """``ConfbridgeList``/``ConfbridgeMute``/``ConfbridgeUnmute``.

    Returns (the response's headers after ``Response``/``ActionID``, the messages
    for the asking session only, the events for every session), to be written in
    that order.
    """
    conference = action.get("Conference", "")
    action_id = [("ActionID", action["ActionID"])] if "ActionID" in action else []
    if not conference:
        return [("Response", "Error"), ("Message", "No Conference name provided.")], [], []
    bridge = engine.bridges.get(conference)
    if name == "confbridgelist":
        if not engine.bridges:
            return [("Response", "Error"), ("Message", "No active conferences.")], [], []
        if bridge is None:
            return [("Response", "Error"), ("Message", "No Conference by that name found.")], [], []
        items: list[Headers] = []
        now = time.monotonic()
        for member in bridge.members:
            answered = int(max(0.0, now - member.created) * engine.time_scale)
            items.append(
                [
                    ("Event", "ConfbridgeList"),
                    *action_id,
                    ("Conference", conference),
                    ("Admin", _yes_no(member.name in bridge.admins)),
                    ("MarkedUser", "No"),
                    ("WaitMarked", "No"),
                    ("EndMarked", "No"),
                    ("EndMarkedAny", "No"),
                    ("Waiting", "No"),
                    ("Muted", _yes_no(member.name in bridge.muted)),
                    ("Talking", "No"),
                    ("AnsweredTime", str(answered)),
                    *member.snapshot(),
                ]
            )
        items.append(
            [
                ("Event", "ConfbridgeListComplete"),
                *action_id,
                ("EventList", "Complete"),
                ("ListItems", str(len(bridge.members))),
            ]
        )
        reply = [
            ("Response", "Success"),
            ("EventList", "start"),
            ("Message", "Confbridge user list will follow"),
        ]
        return reply, items, []
    channel = action.get("Channel", "")
    if not channel:
        return [("Response", "Error"), ("Message", "No channel name provided.")], [], []
    if bridge is None:
        return [("Response", "Error"), ("Message", "No Conference by that name found.")], [], []
    target = _member(bridge, channel)
    if target is None:
        return [("Response", "Error"), ("Message", "No Channel by that name found in Conference.")], [], []
    mute = name == "confbridgemute"
    if mute:
        bridge.muted.add(target.name)
    else:
        bridge.muted.discard(target.name)
    event_name = "ConfbridgeMute" if mute else "ConfbridgeUnmute"
    reply = [("Response", "Success"), ("Message", "User muted" if mute else "User unmuted")]
    return reply, [], [ev.bridge_channel_event(event_name, bridge, target)]


CONFBRIDGE_ACTIONS = {"confbridgelist", "confbridgemute", "confbridgeunmute"}
