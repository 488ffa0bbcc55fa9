"""Agent phones that dial in to the simulated Asterisk (``sip_agent_dials_login_extension``).

An agent's softphone (PJSIP endpoint ``agentphone`` in the lab) dials
``9<agent id>`` into the project's ``[dialer-agent]`` context: a channel the
dialer did not originate, so its Uniqueid is Asterisk's own
(``1796399371.27``).  As recorded from Asterisk 22.10:

* at once: ``Newchannel`` (``ChannelStateDesc: Ring``, ``Context:
  dialer-agent``, ``Exten: 92101``, the phone's caller id), ``VarSet
  SIPDOMAIN`` (the domain it dialled), ``Newexten`` ``Answer``, ``Newstate``
  Up;
* 500 ms later (Answer() settling) the dialplan goes on: ``Newexten``
  ``ConfBridge(agent_2101,dialer_agent_bridge,dialer_agent)`` and the
  conference join;
* when the phone sends BYE: the RTP statistics, ``HangupRequest``, the
  conference leave, ``SoftHangupRequest`` and ``Hangup`` cause 16.

The lab dialplan (``lab-extensions.conf``) has no ``[dialer-agent]``: the
lab's copy of the project's config does, so it is added from the shipped one.
"""

from __future__ import annotations

import math

from telephony.sim import ami_events as ev
from telephony.sim.ami_events import SimChannel
from telephony.sim.asterisk_dialplan import find_steps, production_contexts
from telephony.sim.asterisk_pbx import ANSWER_SETTLE_S, Activity, Call, Leg, PbxEngine, Timeline
from telephony.sim.model import CalleeKind, CalleePlan

AGENT_CONTEXT = "dialer-agent"
SIP_DOMAIN = "127.0.0.1"  # the host part of the URI the lab phone dialled


class DialInRefused(Exception):
    """The phone's call cannot start (the PBX is not running)."""


def phone_dials_in(
    engine: PbxEngine,
    endpoint: str,
    exten: str,
    hangs_up_after_s: float | None = None,
    caller_name: str = "Agent",
    context: str = AGENT_CONTEXT,
) -> str:
    """The phone of PJSIP ``endpoint`` calls ``exten`` in ``context``; returns the channel's Uniqueid.

    ``hangs_up_after_s``: PBX seconds after the answer when the phone sends BYE
    (None: it stays until hung up by the manager or the PBX).
    """
    if engine.closing:
        raise DialInRefused("the simulated Asterisk is shutting down")
    if context == AGENT_CONTEXT and AGENT_CONTEXT not in engine.contexts:
        engine.contexts[AGENT_CONTEXT] = production_contexts()[AGENT_CONTEXT]
    uid = engine.new_uniqueid()
    name = f"PJSIP/{endpoint}-{engine.next_pjsip()}"
    plan = CalleePlan(CalleeKind.AGENT, 0.0, hangs_up_after_s)
    call = Call(
        action_id="",
        dial=name,
        tech="PJSIP",
        number=exten,
        where=endpoint,
        plan=plan,
        timeout_s=math.inf,
        target=[],
        app=None,
        context=context,
        exten=exten,
        priority=1,
        cid_num=endpoint,
        cid_name=caller_name,
        preset_id=False,
        variables=[],
        asynchronous=True,
        answered=True,
        done=True,
    )
    chan = SimChannel(
        name=name,
        uniqueid=uid,
        linkedid=uid,
        state=4,
        context=context,
        exten=exten,
        cid_num=endpoint,
        cid_name=caller_name,
    )
    leg = Leg(chan=chan, call=call, ours=True, activity=Activity.APP)
    leg.media = True
    call.ours = leg
    engine.legs[name] = leg
    engine.emit(ev.channel_event("Newchannel", chan))
    chan.variables["SIPDOMAIN"] = SIP_DOMAIN
    engine.emit(ev.varset(chan, "SIPDOMAIN", SIP_DOMAIN))
    leg.runner = engine.spawn(_run(engine, leg), call)
    return uid


async def _run(engine: PbxEngine, leg: Leg) -> None:
    """The phone's dialplan: Answer() (Up, then 500 ms), the rest as any channel's dialplan."""
    ch = leg.chan
    call = leg.call
    steps = find_steps(engine.contexts, ch.context, ch.exten) or []
    if steps and steps[0].app.lower() == "answer":
        engine.emit(ev.newexten(ch, steps[0].app, steps[0].data))
        ch.application, ch.app_data = steps[0].app, steps[0].data
        ch.state = 6
        engine.emit(ev.channel_event("Newstate", ch))
        engine.emit(ev.device_state(ch.device, "INUSE"))
        leg.device_used = True
        answered = Timeline(leg.clock.at)
        talk = call.plan.talk_s
        if talk is not None and math.isfinite(talk):
            engine.spawn(_sends_bye(engine, leg, talk, answered), call)
        await engine.sleep(ANSWER_SETTLE_S, leg.clock)
        ch.priority = 2
    await engine.run_dialplan(leg)


async def _sends_bye(engine: PbxEngine, leg: Leg, after_s: float, clock: Timeline) -> None:
    await engine.sleep(after_s, clock)
    if leg.chan.alive:
        engine.far_hangs_up(leg.call)
