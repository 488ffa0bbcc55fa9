"""``core restart now`` on Asterisk 22.10, as ``sip_restart_least_privilege`` recorded it.

Every channel gets ``SoftHangupRequest`` ``Cause: 4`` at one instant.  Then:

* a ringing call: ``OriginateResponse`` Failure ``Reason: 0``, ``DialEnd``
  ``NOANSWER``, ``Hangup`` ``Cause: 0`` (not a no answer);
* a conference: ConfBridge's announcer goes first (the two members left see
  each other as ``BRIDGEPEER``/``BRIDGEPVTCALLID``), then each member leaves
  (``ConfbridgeLeave``, ``BridgeLeave``, ``CONFBRIDGE_RESULT`` HANGUP) and the
  last one ends it (``ConfbridgeEnd``, ``BridgeDestroy``);
* a customer in ``EXEC ConfBridge`` sees it answer ``200 result=0``; once the
  FastAGI server closes: ``AGISTATUS`` HANGUP, ``SoftHangupRequest`` 16,
  ``Hangup`` 16;
* an agent leg (an Originate into ConfBridge): ``Hangup`` 16, 14 ms later;
* a channel whose FastAGI session waits for the server is sent ``HANGUP`` and
  held: no ``Hangup`` while the socket is open, and Asterisk holds the
  restart (``RESTART_HOLD_S`` at most; the link closed 16.4 s after the
  command);
* a channel in any other dialplan application: ``SoftHangupRequest`` 16,
  ``Hangup`` 0.

The manager link closes when the restart is done; ``Event: Shutdown`` goes
out only to users with the ``system`` read class (``asterisk.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid

from telephony.sim import ami_events as ev
from telephony.sim.asterisk_pbx import Activity, Leg, PbxEngine

RESTART_HOLD_S = 16.42  # PBX seconds Asterisk waits for open FastAGI sessions, then ends uncleanly
AGENT_LEG_END_S = 0.014  # the Originate's ConfBridge thread ends its channel this much later
# ... and after the customers of its conference once their FastAGI session closed (1 ms in the
# capture; waited for, at most this long, so a slow test machine keeps the captured order)
PARTNER_WAIT_S = 0.25


def _call_id(engine: PbxEngine, leg: Leg) -> str:
    """The SIP Call-ID of a PJSIP channel (BRIDGEPVTCALLID of its peer)."""
    return str(uuid.UUID(int=engine.rng.getrandbits(128), version=4))


def restart_calls(engine: PbxEngine) -> None:
    """Hang up every channel as ``core restart now`` does (the events of its first instant)."""
    engine.closing = True
    engine.restarting = True
    legs = [leg for leg in engine.legs.values() if leg.chan.alive]
    for leg in legs:
        engine.emit(ev.hangup_request("SoftHangupRequest", leg.chan, 4))
    for leg in legs:
        call = leg.call
        if leg.ours and not call.done:
            _ringing_lost(engine, leg)
    partners: dict[str, list[Leg]] = {}
    for bridge_name in list(engine.bridges):
        members = [engine.legs[m.name] for m in engine.bridges[bridge_name].members]
        for leg in members:
            partners[leg.chan.name] = [m for m in members if m is not leg]
        _dissolve(engine, bridge_name)
    for leg in legs:
        if not leg.chan.alive or not leg.call.done:
            continue
        if leg.activity is Activity.AGI or leg.end_how:
            engine.ours_hangs_up(leg)  # the session is told HANGUP; the channel waits for the script
        elif leg.call.app is not None:
            leg.activity = Activity.DEAD
            engine.cancel(leg.runner)
            engine.spawn(_end_agent_leg(engine, leg, partners.get(leg.chan.name, [])), leg.call)
        else:
            engine.cancel(leg.runner)
            engine.emit(ev.hangup_request("SoftHangupRequest", leg.chan, 16))
            engine.rtp_quality(leg)
            engine.gone(leg, 0)
            engine.end_call(leg.call)


def _ringing_lost(engine: PbxEngine, leg: Leg) -> None:
    call = leg.call
    for task in call.tasks:
        engine.cancel(task)
    engine.failure_response(call, 0)
    engine.emit(ev.dial_event("DialEnd", leg.chan, ("DialStatus", "NOANSWER")))
    engine.gone(leg, 0)
    engine.end_call(call)


def _dissolve(engine: PbxEngine, name: str) -> None:
    bridge = engine.bridges[name]
    bridge.num_channels -= 1  # the announcer channel is hung up first
    members = list(bridge.members)
    if len(members) == 2:
        call_ids = {m.name: _call_id(engine, engine.legs[m.name]) for m in members}
        for member in members:
            other = members[1] if member is members[0] else members[0]
            engine.emit(ev.varset(member, "BRIDGEPEER", other.name))
            engine.emit(ev.varset(member, "BRIDGEPVTCALLID", call_ids[other.name]))
    for member in reversed(members):
        leg = engine.legs[member.name]
        engine.emit(ev.bridge_channel_event("ConfbridgeLeave", bridge, member))
        engine.emit(ev.varset(member, "BRIDGEPEER", ""))
        if len(members) == 2:
            engine.emit(ev.varset(member, "BRIDGEPVTCALLID", ""))
        bridge.members.remove(member)
        bridge.num_channels -= 1
        member.bridge = None
        engine.emit(ev.bridge_channel_event("BridgeLeave", bridge, member))
        member.variables["CONFBRIDGE_RESULT"] = "HANGUP"
        engine.emit(ev.varset(member, "CONFBRIDGE_RESULT", "HANGUP"))
        leg.bridge_left.set()
    engine.emit(ev.device_state(f"CBAnn/{name}", "UNKNOWN"))
    engine.emit(ev.device_state(f"confbridge:{name}", "NOT_INUSE"))
    engine.emit(ev.bridge_event("ConfbridgeEnd", bridge))
    engine.emit(ev.bridge_event("BridgeDestroy", bridge))
    del engine.bridges[name]


async def _end_agent_leg(engine: PbxEngine, leg: Leg, partners: list[Leg]) -> None:
    """The agent leg ends after the customers of its conference whose FastAGI server let go at once."""
    await asyncio.sleep(AGENT_LEG_END_S / engine.time_scale)
    for _ in range(max(1, int(PARTNER_WAIT_S / engine.time_scale / 0.001))):
        if not any(p.chan.alive and p.end_how for p in partners):
            break
        await asyncio.sleep(0.001)
    if leg.chan.alive:
        engine.rtp_quality(leg)
        engine.gone(leg, 16)
        engine.end_call(leg.call)


async def hold_for_agi(engine: PbxEngine) -> None:
    """Wait until every FastAGI session is closed, at most RESTART_HOLD_S (then Asterisk gives up)."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(engine.agi_idle.wait(), RESTART_HOLD_S / engine.time_scale)
