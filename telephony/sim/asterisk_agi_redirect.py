"""A Redirect of a channel that sits in a FastAGI session, as ``sip_call_recording`` recorded it.

Asterisk answers ``Redirect successful`` at once, but the channel is in
``AGI()``: the redirect is an asynchronous goto, which the AGI sees as a
hang-up.  The session is sent an unasked ``HANGUP`` line (later commands
answer 511), and the channel moves only when the FastAGI server closes the
socket: ``VarSet AGISTATUS HANGUP`` (still at the AGI's priority), then the
dialplan goes on at the new place.  A server that keeps the socket open holds
the customer in the AGI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from telephony.sim import ami_events as ev

if TYPE_CHECKING:
    from telephony.sim.asterisk_pbx import Leg, PbxEngine


def request(leg: Leg, context: str, exten: str, priority: int) -> None:
    """AMI Redirect of a channel in ``AGI()``: tell the session, move when it ends."""
    leg.goto = (context, exten, priority)
    leg.hungup.set()  # what the AGI session watches: it writes HANGUP and waits for the close


def resume(engine: PbxEngine, leg: Leg) -> bool:
    """The FastAGI session of a redirected channel ended: True when the channel moved on."""
    ch = leg.chan
    if leg.goto is None or leg.end_how or not ch.alive:
        return False
    context, exten, priority = leg.goto
    leg.goto = None
    ch.variables["AGISTATUS"] = "HANGUP"
    engine.emit(ev.varset(ch, "AGISTATUS", "HANGUP"))
    leg.hungup.clear()
    engine.continue_at(leg, context, exten, priority)
    return True
