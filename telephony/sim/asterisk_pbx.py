"""The call engine of the Asterisk simulator: channels, dialplan, bridges, and their AMI events.

It plays what Asterisk 22 does for each outcome of an Originate, event for
event as in the captures of ``../shared/asterisk-transcripts``: two Local
channels (``;1`` ours, ``;2`` running the callee's script) or one PJSIP
channel whose far end is the callee model.  Each burst of events that Asterisk
writes at one instant is emitted here synchronously, in the order of the
capture of that scenario (where Asterisk's threads race, the tables
RINGING_RACE and ANSWER_RACE hold the captured interleavings); time passes
only between bursts, counted on each call's own ``Timeline``, so concurrent
calls interleave between bursts as on a real PBX.

The engine knows nothing of sockets: it hands every event (a list of header
pairs) to ``emit``; FastAGI connections are opened by ``asterisk_agi``.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import math
import random
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from telephony.asterisk.protocol import AmiMessage
from telephony.sim import ami_events as ev
from telephony.sim import asterisk_agi_redirect as agi_redirect
from telephony.sim import asterisk_mixmonitor as mixmonitor
from telephony.sim.ami_events import Headers, SimBridge, SimChannel
from telephony.sim.asterisk_confbridge import (
    ADMIN_USER_PROFILES,
    CONF_LOCKED_S,
    STARTMUTED_USER_PROFILES,
    confbridge_args,
    max_members_of,
    refuses,
)
from telephony.sim.asterisk_dialplan import (
    AGENT_CONTEXTS,
    DEFAULT_PROMPT_SECONDS,
    LAB_CONTACT_HANGS_UP_AFTER_S,
    LAB_ENDPOINT_KIND,
    LAB_ENDPOINTS_WITHOUT_RINGING,
    LAB_NUMBER_OF_KIND,
    PROMPT_SECONDS,
    DialplanName,
    Shape,
    Step,
    amd_verdict,
    callee_script,
    find_steps,
    gotoif_target,
    lab_contexts,
    lab_recording_contexts,
    production_contexts,
    substitute,
)
from telephony.sim.model import CalleeKind, CalleeModel, CalleePlan

# Channel drivers of each shape of simulated PBX.  "sip" has a PJSIP trunk (and
# Local channels, as every Asterisk); "local" is the lab PBX whose callees are
# all Local channels: a PJSIP dial string fails there like a missing driver.
KNOWN_TECH: dict[str, dict[str, str]] = {
    "sip": {"local": "Local", "pjsip": "PJSIP"},
    "local": {"local": "Local"},
}

AGENT_PHONE = CalleePlan(CalleeKind.AGENT, 0.004, None)  # answers at once (sip_agent_and_customer_connected)
BLOCKING_APPS = {"wait", "amd", "playback", "confbridge", "agi", "hangup"}
ANSWER_SETTLE_S = 0.5  # Answer() on a Local ;2 waits this long for audio from ;1


# Interleavings of racing Asterisk threads that change what an event says.  On
# a 180 the dialing thread writes DialState(RINGING) and the channel's thread
# Newstate(Ringing); when DialState wins, its snapshot still says Down.  The
# captures show DialState first for the lab's machine peer and for calls
# into dialer-agi, Newstate first elsewhere; the simulator replays them so.
# A client must accept both.  Key: (callee kind, Originate context); "" = any.
RINGING_RACE: dict[tuple[CalleeKind, str], bool] = {
    (CalleeKind.MACHINE, ""): True,
    (CalleeKind.MACHINE_BEEP, ""): True,
    (CalleeKind.PERSON, "dialer-agi"): True,
}


# When an answered call's OriginateResponse (the originate thread) is written
# relative to the channel's Newstate(Up), DialEnd(ANSWER) and the start of the
# dialplan (the channel's PBX thread), as the captures show it per shape,
# callee kind and Originate context.  Where two captures of one situation
# disagree (SIP into dialer-answered-noamd) the first listed is followed.
ANSWER_RACE: dict[str, dict[tuple[CalleeKind, str], str]] = {
    "local": {
        (CalleeKind.PERSON, ""): "after_first_app",
        (CalleeKind.SHORT, ""): "after_first_app",
        (CalleeKind.PERSON, "dialer-agi"): "before_dialend",
        (CalleeKind.MACHINE, ""): "after_dialend",
    },
    "sip": {
        (CalleeKind.PERSON, "dialer-answered"): "before_dialend",
        (CalleeKind.PERSON, "dialer-agi"): "before_newstate",
        (CalleeKind.PERSON, "dialer-answered-noamd"): "before_newstate",
        (CalleeKind.MACHINE, ""): "after_first_app",
    },
}


class Activity(enum.Enum):
    DIALING = "dialing"
    APP = "app"  # a dialplan application that only waits (Wait, NoOp ...)
    AMD = "amd"
    PLAYBACK = "playback"
    BRIDGE = "bridge"
    AGI = "agi"
    DEAD = "dead"


class OriginateRefused(Exception):
    """The Originate action is refused before any call starts (Response: Error)."""


@dataclass(eq=False)
class Timeline:
    """Where one thread of the simulated PBX is in time (event-loop seconds).

    Waits are counted from here rather than from when the code got to run, so
    the time spent writing events does not add up along a call: a machine's
    greeting ends 11.3 s after the answer however busy the simulator is.
    """

    at: float

    @classmethod
    def now(cls) -> Timeline:
        return cls(asyncio.get_running_loop().time())


@dataclass(eq=False)
class Leg:
    """One simulated channel and what it is doing."""

    chan: SimChannel
    call: Call
    ours: bool  # the channel the dialer tracks (Local ;1 or the PJSIP channel)
    activity: Activity = Activity.DIALING
    runner: asyncio.Task[None] | None = None
    media: bool = False  # an answered PJSIP channel sends RTP: RTPAUDIOQOS on hangup
    device_used: bool = False  # its device changed state, so it goes back to NOT_INUSE at the end
    hungup: asyncio.Event = field(default_factory=asyncio.Event)
    bridge_left: asyncio.Event = field(default_factory=asyncio.Event)
    leave_announced: bool = False  # ConfbridgeLeave already written, the bridge thread not done yet
    end_how: str = ""
    end_cause: int = 16
    clock: Timeline = field(default_factory=Timeline.now)
    media_started: asyncio.Event = field(default_factory=asyncio.Event)  # ours plays audio to the callee
    media_settle: float = 0.0  # PBX seconds the far Answer() takes to return once it hears that audio
    on_ami_hangup: Callable[[int], None] | None = None  # an application that ends its channel itself
    goto: tuple[str, str, int] | None = None  # a Redirect waiting for its FastAGI session to end


@dataclass(eq=False)
class Call:
    action_id: str
    dial: str  # the Originate Channel header
    tech: str  # "Local" | "PJSIP"
    number: str
    where: str  # Local context or PJSIP endpoint
    plan: CalleePlan
    timeout_s: float
    target: list[tuple[str, str]]  # Context/Exten or Application/Data as OriginateResponse shows it
    app: tuple[str, str] | None  # Application, Data of an Originate into an application
    context: str
    exten: str
    priority: int
    cid_num: str
    cid_name: str
    preset_id: bool
    variables: list[tuple[str, str]]
    asynchronous: bool
    ours: Leg | None = None
    far: Leg | None = None
    answered: bool = False
    done: bool = False  # the dial phase is over (answered or failed)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    outcome: asyncio.Future[bool] | None = None
    t0: float = 0.0  # event-loop time the Originate arrived
    success_pending: bool = False  # OriginateResponse waits for the dialplan's first blocking app
    dial_string: str = ""  # DialBegin's DialString when it is not <number>@<endpoint>


Emit = Callable[[Headers], None]
AgiRunner = Callable[["PbxEngine", Leg, str], Coroutine[Any, Any, str]]


class PbxEngine:
    """All channels, calls and conferences of one run of the simulated Asterisk."""

    def __init__(
        self,
        emit: Emit,
        model: CalleeModel,
        shape: Shape,
        dialplan: DialplanName,
        time_scale: float,
        agi_url: str,
        agi_runner: AgiRunner,
        seed: int,
        lab_peers: bool | None = None,
        agent_hangs_up_after_s: float | None = None,
        version: str = "22.7.0",
    ) -> None:
        if time_scale <= 0:
            raise ValueError(f"time_scale must be > 0, got {time_scale}")
        # The PJSIP endpoints are the lab's (lab-pjsip.conf): the endpoint, not the
        # number, plays the part, and calls start in [from-lab].
        self.lab_peers = dialplan == "lab" if lab_peers is None else lab_peers
        self.agent_hangs_up_after_s = agent_hangs_up_after_s
        self.version = version
        # Originates (by ActionID) whose 180 race DialState wins against RINGING_RACE's
        # choice: for replaying a capture that caught the other interleaving.
        self.dialstate_wins: set[str] = set()
        # The AMI user's "system" write class (MixMonitor, Originate of AGI/Exec/System...).
        self.system_write = False
        self.recordings = mixmonitor.Recordings()  # asterisk_mixmonitor
        # Asterisk 22.10 (the fault captures) writes a SIP BYE's HangupRequest without a
        # Cause and the RTP statistics of a hung-up channel once, not twice as 22.7.
        self.modern = tuple(int(p) for p in version.split(".")[:2]) >= (22, 10)
        self.emit = emit
        self.model = model
        self.shape = shape
        self.dialplan_name = dialplan
        self.time_scale = time_scale
        self.agi_url = agi_url
        self.agi_runner = agi_runner
        self.rng = random.Random(seed)
        self.contexts = lab_contexts(agi_url) if dialplan == "lab" else production_contexts()
        if self.lab_peers:  # the lab PBX's copy of our config adds its recording context
            self.contexts.update(lab_recording_contexts())
        self.endpoint_context = "from-lab" if self.lab_peers else "from-trunk"
        self.legs: dict[str, Leg] = {}  # by channel name
        self.bridges: dict[str, SimBridge] = {}  # by conference name
        # The [globals] our shipped dialplan expects: where the FastAGI server listens.
        self.global_vars: dict[str, str] = {"DIALER_FASTAGI": agi_url.removeprefix("agi://").split("/")[0]}
        self._local_seq = 0
        self._pjsip_seq = 0
        self._uid_seq = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self.started = time.monotonic()
        self.closing = False
        self.restarting = False  # core restart now: channels in FastAGI are held until the script lets go
        self.agi_open = 0  # FastAGI sessions open now
        self.agi_idle = asyncio.Event()  # set while none is open
        self.agi_idle.set()

    # -- time and tasks ---------------------------------------------------

    async def sleep(self, seconds: float, clock: Timeline) -> None:
        """Wait ``seconds`` of PBX time on the thread whose time is ``clock``."""
        if math.isinf(seconds):
            await asyncio.Event().wait()
        clock.at += max(0.0, seconds) / self.time_scale
        await asyncio.sleep(max(0.0, clock.at - asyncio.get_running_loop().time()))

    def spawn(self, coro: Coroutine[Any, Any, None], call: Call | None = None) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if call is not None:
            call.tasks.append(task)
        return task

    @staticmethod
    def cancel(task: asyncio.Task[None] | None) -> None:
        if task is not None and task is not asyncio.current_task() and not task.done():
            task.cancel()

    async def abort(self) -> None:
        """Drop every call without a word (a killed Asterisk)."""
        self.closing = True
        tasks = [t for t in self._tasks if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):  # a killed PBX does not care how its tasks ended
                await task
        self.legs.clear()
        self.bridges.clear()

    # -- lookups ----------------------------------------------------------

    def find(self, ref: str) -> Leg | None:
        leg = self.legs.get(ref)
        if leg is not None:
            return leg
        for leg in self.legs.values():
            if leg.chan.uniqueid == ref:
                return leg
        return None

    def live_channels(self) -> list[SimChannel]:
        return [leg.chan for leg in self.legs.values()]

    # -- naming -----------------------------------------------------------

    def _uniqueid(self) -> str:
        uid = f"{int(time.time())}.{self._uid_seq}"
        self._uid_seq += 1
        return uid

    def _next_local(self) -> str:
        seq = self._local_seq
        self._local_seq += 1
        return f"{seq:08x}"

    def _next_pjsip(self) -> str:
        seq = self._pjsip_seq
        self._pjsip_seq += 1
        return f"{seq:08x}"

    # -- Originate ---------------------------------------------------------

    def originate(self, action: AmiMessage) -> Call | None:
        """Start an Originate.  Raises OriginateRefused for a request Asterisk refuses outright.

        Returns None when the channel technology does not exist: the failure
        comes as an OriginateResponse only, with no channel (as Asterisk).
        """
        dial = action.get("Channel", "")
        if not dial:
            raise OriginateRefused("Channel not specified")
        tech, sep, resource = dial.partition("/")
        if not sep or not resource:
            raise OriginateRefused("Invalid channel")
        timeout_raw = action.get("Timeout", "30000")
        try:
            timeout_s = int(timeout_raw) / 1000.0
        except ValueError:
            raise OriginateRefused("Invalid timeout") from None
        priority_raw = action.get("Priority", "1") or "1"
        try:
            priority = int(priority_raw)
        except ValueError:
            raise OriginateRefused("Invalid priority") from None
        app_name = action.get("Application", "")
        app_data = action.get("Data", "")
        if app_name and not self.system_write and mixmonitor.originate_forbidden(app_name, app_data):
            raise OriginateRefused(mixmonitor.FORBIDDEN_ORIGINATE)
        cid_num, cid_name = _parse_callerid(action.get("CallerID", ""))
        variables: list[tuple[str, str]] = []
        for raw in action.getall("Variable"):
            for item in raw.split(","):
                name, eq, value = item.partition("=")
                if eq and name.strip():
                    variables.append((name.strip(), value))
        context = action.get("Context", "")
        exten = action.get("Exten", "")
        target = (
            [("Application", app_name), ("Data", app_data)]
            if app_name
            else [
                ("Context", context),
                ("Exten", exten),
            ]
        )
        action_id = action.get("ActionID", "")
        asynchronous = action.get("Async", "false").lower() in ("true", "yes", "1", "on")
        channel_id = action.get("ChannelId", "")
        other_id = action.get("OtherChannelId", "")
        tech_name = KNOWN_TECH[self.shape].get(tech.lower())
        # A missing channel driver, or a ChannelId a live channel already has: Asterisk
        # cannot allocate the channel, so the Originate fails with no channel at all.
        if tech_name is None or (channel_id and self.find(channel_id) is not None):
            self.spawn(self._bad_channel(action_id, dial, target, channel_id, cid_num, cid_name))
            return None
        number, _, where = resource.partition("@")
        contact = ""
        if tech_name == "PJSIP" and "/" in resource:
            # PJSIP/<endpoint>/sip:<user>@<host:port>: the endpoint, to one contact URI.
            where, _, uri = resource.partition("/")
            number, _, contact = uri.removeprefix("sip:").partition("@")
        elif tech_name == "PJSIP" and not where:
            number, where = "", resource  # an endpoint dialled directly: a registered softphone
        plan = self._plan(tech_name, number, where, contact)
        call = Call(
            action_id=action_id,
            dial=dial,
            tech=tech_name,
            number=number,
            where=where,
            plan=plan,
            timeout_s=timeout_s,
            target=target,
            app=(app_name, app_data) if app_name else None,
            context=context,
            exten=exten,
            priority=priority,
            cid_num=cid_num,
            cid_name=cid_name,
            preset_id=bool(channel_id),
            variables=variables,
            asynchronous=asynchronous,
            dial_string=resource if contact else "",
        )
        call.outcome = asyncio.get_running_loop().create_future()
        call.t0 = asyncio.get_running_loop().time()
        # The channels appear after the action's response, as Asterisk writes them.
        self.spawn(self._launch(call, channel_id, other_id), call)
        return call

    async def _launch(self, call: Call, channel_id: str, other_id: str) -> None:
        if call.tech == "Local":
            self._create_local(call, channel_id, other_id)
        else:
            self._create_pjsip(call, channel_id)

    def _plan(self, tech: str, number: str, where: str, contact: str = "") -> CalleePlan:
        if (tech == "PJSIP" and not number) or (tech == "Local" and where in AGENT_CONTEXTS):
            return self._agent_phone(AGENT_PHONE, contact)  # a softphone: the callee model is not asked
        plan = self.model.plan(number)
        if tech == "PJSIP" and self.lab_peers and where in LAB_ENDPOINT_KIND:
            kind = LAB_ENDPOINT_KIND[where]
            if plan.kind is not kind:
                plan = self.model.plan(LAB_NUMBER_OF_KIND[kind])
                if plan.kind is not kind:
                    plan = CalleePlan(kind, plan.ring_s, plan.talk_s)
        if plan.kind is CalleeKind.AGENT:
            plan = self._agent_phone(plan, contact)
        return plan

    def _agent_phone(self, plan: CalleePlan, contact: str) -> CalleePlan:
        """An agent phone: stays until hung up, or sends BYE by itself N s after answering."""
        after = self.agent_hangs_up_after_s
        if self.lab_peers and contact in LAB_CONTACT_HANGS_UP_AFTER_S:
            after = LAB_CONTACT_HANGS_UP_AFTER_S[contact]
        return plan if after is None else CalleePlan(plan.kind, plan.ring_s, after)

    async def _bad_channel(
        self,
        action_id: str,
        dial: str,
        target: list[tuple[str, str]],
        channel_id: str,
        cid_num: str,
        cid_name: str,
    ) -> None:
        await asyncio.sleep(0)
        self.emit(
            ev.originate_response(
                action_id, False, dial, target, 0, channel_id or "<unknown>", cid_num, cid_name
            )
        )

    def _new_leg(self, call: Call, name: str, uniqueid: str, linkedid: str, state: int, ours: bool) -> Leg:
        context = call.where if call.tech == "Local" else self.endpoint_context
        exten = call.number if call.tech == "Local" else "s"
        chan = SimChannel(
            name=name, uniqueid=uniqueid, linkedid=linkedid, state=state, context=context, exten=exten
        )
        leg = Leg(chan=chan, call=call, ours=ours)
        self.legs[name] = leg
        return leg

    def _failure_response(self, call: Call, reason: int) -> None:
        assert call.ours is not None
        if not call.asynchronous:  # a synchronous Originate is answered by its Response only
            self._settle(call, False)
            return
        uid = call.ours.chan.uniqueid if call.preset_id else "<unknown>"
        self.emit(
            ev.originate_response(
                call.action_id, False, call.dial, call.target, reason, uid, call.cid_num, call.cid_name
            )
        )
        self._settle(call, False)

    def _success_response(self, call: Call) -> None:
        assert call.ours is not None
        if not call.asynchronous:
            self._settle(call, True)
            return
        ch = call.ours.chan
        self.emit(
            ev.originate_response(
                call.action_id, True, ch.name, call.target, 4, ch.uniqueid, call.cid_num, call.cid_name
            )
        )
        self._settle(call, True)

    @staticmethod
    def _settle(call: Call, answered: bool) -> None:
        call.done = True
        if call.outcome is not None and not call.outcome.done():
            call.outcome.set_result(answered)

    # -- Local channels ----------------------------------------------------

    def _create_local(self, call: Call, channel_id: str, other_id: str) -> None:
        suffix = self._next_local()
        base = f"Local/{call.number}@{call.where}-{suffix}"
        one_uid = channel_id or self._uniqueid()
        two_uid = other_id or self._uniqueid()
        ours = self._new_leg(call, f"{base};1", one_uid, one_uid, 0, True)
        far = self._new_leg(call, f"{base};2", two_uid, one_uid, 4, False)
        call.ours, call.far = ours, far
        one, two = ours.chan, far.chan
        one.application, one.app_data = "AppDial2", "(Outgoing Line)"
        self.emit(ev.channel_event("Newchannel", one))
        self.emit(ev.channel_event("Newchannel", two))
        self.emit(ev.newexten(one, "AppDial2", "(Outgoing Line)"))
        self._dress_outgoing(call, one)
        for name, value in call.variables:
            two.variables[name] = value
            self.emit(ev.varset(two, name, value))
        if call.cid_num != "<unknown>" or call.cid_name != "<unknown>":
            two.cid_num, two.cid_name = call.cid_num, call.cid_name
            two.conn_num, two.conn_name = call.cid_num, call.cid_name
            self.emit(ev.newcallerid(two))
            self.emit(ev.channel_event("NewConnectedLine", two))
        self.emit(ev.local_bridge(one, two))
        self.emit(ev.dial_event("DialBegin", one, ("DialString", f"{call.number}@{call.where}")))
        far.runner = self.spawn(self._run_far(far, self._far_script(call)), call)
        if math.isfinite(call.timeout_s):
            self.spawn(self._ring_timeout(call, Timeline(call.t0)), call)

    def _far_script(self, call: Call) -> list[Step]:
        if call.where == "sim-agents":
            return [Step("Answer"), Step("ConfBridge", f"agent_{call.number}")]
        hold = call.far.chan.variables.get("HOLD") if call.far is not None else None
        if self.dialplan_name == "production":
            hold = None
        return callee_script(call.plan.kind, call.plan, self.dialplan_name, hold)

    async def _run_far(self, leg: Leg, script: list[Step]) -> None:
        call = leg.call
        ch = leg.chan
        clock = leg.clock = Timeline(call.t0)
        ringing_heard = False
        index = 0
        while index < len(script) and ch.alive:
            step = script[index]
            ch.priority = index + 1
            data = substitute(step.data, ch.variables, ch.exten)
            app = step.app
            self.emit(ev.newexten(ch, app, data))
            ch.application, ch.app_data = app, data
            if ringing_heard:
                ringing_heard = False
                assert call.ours is not None
                self.emit(ev.dial_event("DialState", call.ours.chan, ("DialStatus", "RINGING")))
            if app == "Busy":
                self._local_refused(call, "busy")
                return
            if app == "Congestion":
                self._local_refused(call, "congestion")
                return
            if app == "Hangup" and not call.answered:
                self._local_refused(call, "invalid", int(data or "16"))
                return
            if app == "Hangup":
                self._far_hangs_up(call)
                return
            if app == "Ringing":
                ours = call.ours
                assert ours is not None
                ours.chan.state = 5
                self.emit(ev.channel_event("Newstate", ours.chan))
                self.emit(ev.device_state(ch.device, "INUSE"))
                # ;1's Dial() hears the ringing after ;2 has gone on to its next step.
                ringing_heard = True
                index += 1
                continue
            if app == "Answer":
                self._answer(call, clock.at)
                await self._answer_settle(call, clock)
                index += 1
                continue
            leg.activity = Activity.PLAYBACK if app == "Playback" else Activity.APP
            if app == "Wait":
                await self.sleep(_seconds(data), clock)
            elif app == "Playback":
                await self.sleep(PROMPT_SECONDS.get(data, DEFAULT_PROMPT_SECONDS), clock)
                self.emit(ev.varset(ch, "PLAYBACKSTATUS", "SUCCESS"))
            elif app == "ConfBridge":
                self.bridge_join(leg, data)
                await asyncio.Event().wait()
            leg.activity = Activity.APP
            index += 1
        if ch.alive and call.answered:
            # The script ended without Hangup(): Asterisk hangs the channel up.
            self._far_hangs_up(call)
        elif ch.alive:
            self._local_refused(call, "invalid", 16)

    async def _answer_settle(self, call: Call, clock: Timeline) -> None:
        """Answer() on a Local ;2 returns when ;1 sends it audio, or after 500 ms (as the captures show)."""
        ours = call.ours
        assert ours is not None
        loop = asyncio.get_running_loop()
        limit = clock.at + ANSWER_SETTLE_S / self.time_scale
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ours.media_started.wait(), max(0.0, limit - loop.time()))
        if ours.media_started.is_set():
            clock.at = max(clock.at, loop.time())
            await self.sleep(ours.media_settle, clock)
        else:
            clock.at = limit

    def _local_refused(self, call: Call, how: str, cause: int = 16) -> None:
        ours, far = call.ours, call.far
        assert ours is not None and far is not None
        one, two = ours.chan, far.chan
        if how == "busy":
            two.state = 7
            self.emit(ev.channel_event("Newstate", two))
            self.emit(ev.device_state(two.device, "INUSE"))
            self.emit(ev.dial_event("DialEnd", one, ("DialStatus", "BUSY")))
            self.emit(ev.hangup_request("HangupRequest", two, 0))
            self._failure_response(call, 5)
            self._gone(ours, 0)
            self.emit(ev.hangup_request("SoftHangupRequest", two, 16))
            self._gone(far, 17)
        elif how == "congestion":
            two.state = 7
            self.emit(ev.channel_event("Newstate", two))
            self.emit(ev.device_state(two.device, "INUSE"))
            self.emit(ev.dial_event("DialEnd", one, ("DialStatus", "CONGESTION")))
            self.emit(ev.hangup_request("HangupRequest", two, 0))
            self.emit(ev.hangup_request("SoftHangupRequest", two, 16))
            self._gone(far, 34)
            self._failure_response(call, 8)
            self._gone(ours, 0)
        else:
            self.emit(ev.hangup_request("SoftHangupRequest", two, 16))
            self.emit(ev.hangup_request("HangupRequest", one, cause))
            self._gone(far, cause)
            self.emit(ev.dial_event("DialEnd", one, ("DialStatus", "NOANSWER")))
            self._failure_response(call, 0)
            self._gone(ours, cause)
        self._end_call(call)

    # -- PJSIP channels ----------------------------------------------------

    def _dress_outgoing(self, call: Call, ch: SimChannel) -> None:
        """Our outgoing leg takes the originate's variables, then its caller id (as Asterisk emits them)."""
        for name, value in reversed(call.variables):
            ch.variables[name] = value
            self.emit(ev.varset(ch, name, value))
        if call.cid_num != "<unknown>" or call.cid_name != "<unknown>":
            ch.cid_num, ch.cid_name = call.cid_num, call.cid_name
            self.emit(ev.newcallerid(ch))
            ch.conn_num, ch.conn_name = call.cid_num, call.cid_name
            self.emit(ev.channel_event("NewConnectedLine", ch))

    def _create_pjsip(self, call: Call, channel_id: str) -> None:
        endpoint = call.where
        name = f"PJSIP/{endpoint}-{self._next_pjsip()}"
        uid = channel_id or self._uniqueid()
        ours = self._new_leg(call, name, uid, uid, 0, True)
        call.ours = ours
        ch = ours.chan
        ch.application, ch.app_data = "AppDial2", "(Outgoing Line)"
        self.emit(ev.channel_event("Newchannel", ch))
        self.emit(ev.newexten(ch, "AppDial2", "(Outgoing Line)"))
        self._dress_outgoing(call, ch)
        dial_string = call.dial_string or (f"{call.number}@{endpoint}" if call.number else endpoint)
        self.emit(ev.dial_event("DialBegin", ch, ("DialString", dial_string)))
        self.spawn(self._sip_dial(call), call)

    async def _sip_dial(self, call: Call) -> None:
        ours = call.ours
        assert ours is not None
        clock = Timeline(call.t0)
        ch = ours.chan
        kind = call.plan.kind
        refusals = {
            CalleeKind.BUSY: (17, 486, "BUSY"),
            CalleeKind.CONGESTION: (34, 503, "CONGESTION"),
            CalleeKind.INVALID: (1, 404, "NOANSWER"),
        }
        if kind in refusals:
            cause, tech_cause, status = refusals[kind]
            await self.sleep(min(call.plan.ring_s, call.timeout_s), clock)
            if call.plan.ring_s >= call.timeout_s:
                self._sip_no_answer(call)
                return
            self.emit(ev.hangup_request("HangupRequest", ch, cause, tech_cause))
            if kind is CalleeKind.INVALID:
                self._failure_response(call, 0)
                self.emit(ev.dial_event("DialEnd", ch, ("DialStatus", status)))
            else:
                self.emit(ev.dial_event("DialEnd", ch, ("DialStatus", status)))
                self._failure_response(call, 0)
            self._gone(ours, cause, tech_cause)
            self._end_call(call)
            return
        # 180 Ringing at once, as every SIP peer of the lab does (but the supervisor's
        # phone, which answers at once).  The dialing thread's DialState races the
        # channel's Newstate; see RINGING_RACE.
        if self.lab_peers and call.where in LAB_ENDPOINTS_WITHOUT_RINGING:
            pass
        elif call.action_id in self.dialstate_wins or RINGING_RACE.get(
            (kind, call.context), RINGING_RACE.get((kind, ""), False)
        ):
            self.emit(ev.dial_event("DialState", ch, ("DialStatus", "RINGING")))
            ch.state = 5
            self.emit(ev.channel_event("Newstate", ch))
        else:
            ch.state = 5
            self.emit(ev.channel_event("Newstate", ch))
            self.emit(ev.dial_event("DialState", ch, ("DialStatus", "RINGING")))
        if ch.state == 5:
            self.emit(ev.device_state(ch.device, "RINGING"))
        ours.device_used = True
        ring = call.plan.ring_s if kind is not CalleeKind.NO_ANSWER else math.inf
        if ring >= call.timeout_s:
            await self.sleep(call.timeout_s, clock)
            self._sip_no_answer(call)
            return
        await self.sleep(ring, clock)
        ours.media = True
        self._answer(call, clock.at)
        if call.plan.talk_s is not None and math.isfinite(call.plan.talk_s):
            await self.sleep(call.plan.talk_s, clock)
            if ch.alive:
                self._far_hangs_up(call)

    def _sip_no_answer(self, call: Call) -> None:
        ours = call.ours
        assert ours is not None
        self._failure_response(call, 3)
        self._gone(ours, 0)
        self._end_call(call)

    # -- ringing timeout and cancel ------------------------------------------

    async def _ring_timeout(self, call: Call, clock: Timeline) -> None:
        await self.sleep(call.timeout_s, clock)
        if call.done:
            return
        ours, far = call.ours, call.far
        assert ours is not None and far is not None
        self.cancel(far.runner)
        self.emit(ev.hangup_request("HangupRequest", far.chan, 0))
        self._failure_response(call, 3)
        self.emit(ev.hangup_request("SoftHangupRequest", far.chan, 16))
        self._gone(ours, 0)
        self._gone(far, 0)
        self._end_call(call)

    def _cancel_dialing(self, call: Call, cause: int) -> None:
        """Our Hangup action on a call that has not been answered yet."""
        ours, far = call.ours, call.far
        assert ours is not None
        self.emit(ev.dial_event("DialEnd", ours.chan, ("DialStatus", "NOANSWER")))
        if far is not None:
            self.cancel(far.runner)
            self.emit(ev.hangup_request("HangupRequest", far.chan, 16))
            self.emit(ev.hangup_request("SoftHangupRequest", far.chan, 16))
            self._gone(ours, cause)
            self._failure_response(call, 0)
            self._gone(far, 16)
        else:
            self._failure_response(call, 0)
            self._gone(ours, cause)
        self._end_call(call)

    # -- answer -----------------------------------------------------------

    def _answer_race(self, call: Call) -> str:
        kind, context = call.plan.kind, call.context
        table = ANSWER_RACE["local" if call.far is not None else "sip"]
        return table.get((kind, context), table.get((kind, ""), "after_dialend"))

    def _success_if_pending(self, call: Call) -> None:
        if call.success_pending:
            call.success_pending = False
            self._success_response(call)

    def _answer(self, call: Call, at: float) -> None:
        ours, far = call.ours, call.far
        assert ours is not None
        call.answered = True
        if far is not None:
            far.chan.state = 6
            self.emit(ev.channel_event("Newstate", far.chan))
            self.emit(ev.device_state(far.chan.device, "INUSE"))
        position = "after_dialend" if call.app is not None else self._answer_race(call)
        if position == "before_newstate":
            self._success_response(call)
        ours.chan.state = 6
        self.emit(ev.channel_event("Newstate", ours.chan))
        if position == "before_dialend":
            self._success_response(call)
        self.emit(ev.dial_event("DialEnd", ours.chan, ("DialStatus", "ANSWER")))
        if position == "after_dialend":
            self._success_response(call)
        call.success_pending = position == "after_first_app"
        self.emit(ev.device_state(ours.chan.device, "INUSE"))
        ours.device_used = True
        if far is not None and self.dialplan_name == "production":
            talk = call.plan.talk_s
            if talk is not None and math.isfinite(talk):
                self.spawn(self._talk_deadline(call, talk, Timeline(at)), call)
        ours.clock = Timeline(at)
        if call.app is not None:
            ours.runner = self.spawn(self._run_application(ours, *call.app), call)
        else:
            ours.chan.context, ours.chan.exten, ours.chan.priority = call.context, call.exten, call.priority
            ours.runner = self.spawn(self._run_dialplan(ours), call)

    async def _talk_deadline(self, call: Call, talk_s: float, clock: Timeline) -> None:
        """The callee model's talk time: the Local callee hangs up then, wherever its script is."""
        await self.sleep(talk_s, clock)
        far = call.far
        if far is not None and far.chan.alive and call.answered:
            self.cancel(far.runner)
            self._far_hangs_up(call)

    # -- our side's dialplan ---------------------------------------------------

    async def _run_application(self, leg: Leg, app: str, data: str) -> None:
        """An Originate into an application: it runs without dialplan (no Newexten)."""
        leg.chan.application, leg.chan.app_data = app, data
        await self._exec(leg, app, data)
        if leg.chan.alive:
            self.ours_hangs_up(leg)

    async def _run_dialplan(self, leg: Leg) -> None:
        ch = leg.chan
        while ch.alive:
            steps = find_steps(self.contexts, ch.context, ch.exten)
            if steps is None or not 1 <= ch.priority <= len(steps):
                self.ours_hangs_up(leg)
                return
            step = steps[ch.priority - 1]
            data = substitute(step.data, {**self.global_vars, **ch.variables}, ch.exten)
            self.emit(ev.newexten(ch, step.app, data))
            ch.application, ch.app_data = step.app, data
            jump = await self._exec(leg, step.app, data)
            if not ch.alive or leg.activity is Activity.DEAD:
                return
            if jump == "hangup":
                return
            if jump.isdigit():
                ch.priority = int(jump)
            else:
                ch.priority += 1

    async def _exec(self, leg: Leg, app: str, data: str) -> str:
        """Run one application on our side; returns "" to go on, a priority, or "hangup"."""
        ch = leg.chan
        name = app.lower()
        if name in BLOCKING_APPS and leg.ours:
            self._success_if_pending(leg.call)
        if name == "noop":
            return ""
        if name == "set":
            var, _, value = data.partition("=")
            ch.variables[var] = value
            self.emit(ev.varset(ch, var, value))
            return ""
        if name == "gotoif":
            target = gotoif_target(data)
            return str(target) if target is not None else ""
        if name == "userevent":
            event_name, _, rest = data.partition(",")
            fields: list[tuple[str, str]] = []
            for item in rest.split(",") if rest else []:
                key, _, value = item.partition(":")
                fields.append((key.strip(), value.strip()))
            self.emit(ev.user_event(ch, event_name, fields))
            return ""
        if name == "wait":
            leg.activity = Activity.APP
            await self.sleep(_seconds(data), leg.clock)
            return ""
        if name == "amd":
            leg.activity = Activity.AMD
            seconds, status, cause = amd_verdict(leg.call.plan.kind, "local" if leg.call.far else "sip")
            await self.sleep(seconds, leg.clock)
            leg.activity = Activity.APP
            ch.variables["AMDSTATUS"], ch.variables["AMDCAUSE"] = status, cause
            self.emit(ev.varset(ch, "AMDSTATUS", status))
            self.emit(ev.varset(ch, "AMDCAUSE", cause))
            return ""
        if name == "playback":
            leg.activity = Activity.PLAYBACK
            self._media(leg, 0.001)
            await self.sleep(PROMPT_SECONDS.get(data, DEFAULT_PROMPT_SECONDS), leg.clock)
            leg.activity = Activity.APP
            ch.variables["PLAYBACKSTATUS"] = "SUCCESS"
            self.emit(ev.varset(ch, "PLAYBACKSTATUS", "SUCCESS"))
            return ""
        if name == "confbridge":
            if self.bridge_full(data):
                leg.activity = Activity.PLAYBACK
                if not await self.bridge_refused(leg):
                    return "hangup"
                leg.activity = Activity.APP
                return ""
            self.bridge_join(leg, data)
            await asyncio.Event().wait()
            return ""
        if name == "agi":
            leg.activity = Activity.AGI
            result = await self.agi_runner(self, leg, data)
            leg.clock = Timeline.now()  # the script decided when AGI() returned
            if leg.activity is Activity.AGI:
                leg.activity = Activity.APP
            return result
        if name == "hangup":
            self.ours_hangs_up(leg, int(data) if data.isdigit() else 16)
            return "hangup"
        if name in ("answer", "ringing", "progress"):
            return ""
        if name == "mixmonitor":
            mixmonitor.start(self, leg, data)
            return ""
        if name == "chanspy":
            from telephony.sim.asterisk_spy import chanspy  # it builds on this module

            return await chanspy(self, leg, data)
        # An application the simulated PBX does not have: Asterisk hangs up.
        self.ours_hangs_up(leg)
        return "hangup"

    @staticmethod
    def _media(leg: Leg, settle: float) -> None:
        if not leg.media_started.is_set():
            leg.media_settle = settle
            leg.media_started.set()

    # -- conferences ----------------------------------------------------------

    def bridge_full(self, data: str) -> bool:
        """Whether ConfBridge(``data``) would be refused now: the conference is full."""
        conference, _, user_profile = confbridge_args(data)
        return refuses(self.bridges.get(conference), user_profile)

    async def bridge_refused(self, leg: Leg) -> bool:
        """ConfBridge() into a full conference: conf-locked, then FAILED.  False if hung up meanwhile."""
        try:
            await asyncio.wait_for(leg.hungup.wait(), CONF_LOCKED_S / self.time_scale)
        except TimeoutError:
            leg.clock = Timeline.now()
            self.setvar(leg, "CONFBRIDGE_RESULT", "FAILED")
            return True
        return False

    def bridge_join(self, leg: Leg, conference: str, bridge_profile: str = "") -> None:
        user_profile = confbridge_args(conference)[2]
        conference, bridge_profile = (
            conference.split(",")[0],
            bridge_profile or confbridge_args(conference)[1],
        )
        bridge = self.bridges.get(conference)
        if bridge is None:
            announcer = f"CBAnn/{conference}-{self._next_local()};2"
            bridge_id = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
            bridge = SimBridge(
                uniqueid=bridge_id,
                name=conference,
                announcer=announcer,
                max_members=max_members_of(bridge_profile),
            )
            self.bridges[conference] = bridge
            self.emit(ev.bridge_event("BridgeCreate", bridge))
            bridge.num_channels = 1
            self.emit(ev.device_state(f"confbridge:{conference}", "INUSE"))
            self.emit(ev.bridge_event("ConfbridgeStart", bridge))
            self.emit(ev.device_state(f"CBAnn/{conference}", "INUSE"))
        leg.activity = Activity.BRIDGE if leg.activity is not Activity.AGI else Activity.AGI
        self._media(leg, 0.02)
        leg.bridge_left.clear()
        bridge.num_channels += 1
        bridge.members.append(leg.chan)
        if user_profile in ADMIN_USER_PROFILES:
            bridge.admins.add(leg.chan.name)
        if user_profile in STARTMUTED_USER_PROFILES:
            bridge.muted.add(leg.chan.name)
        leg.chan.bridge = bridge
        self.emit(ev.bridge_channel_event("BridgeEnter", bridge, leg.chan))
        for other in bridge.members:
            if other is not leg.chan:
                self.emit(ev.varset(other, "BRIDGEPEER", bridge.peers_of(other)))
        self.emit(ev.varset(leg.chan, "BRIDGEPEER", bridge.peers_of(leg.chan)))
        self.emit(ev.bridge_channel_event("ConfbridgeJoin", bridge, leg.chan))

    def announce_leave(self, leg: Leg) -> None:
        """ConfBridge's part of leaving: ConfbridgeLeave (the bridge still counts the member)."""
        bridge = leg.chan.bridge
        if bridge is None or leg.leave_announced:
            return
        leg.leave_announced = True
        self.emit(ev.bridge_channel_event("ConfbridgeLeave", bridge, leg.chan))
        self.emit(ev.varset(leg.chan, "BRIDGEPEER", ""))

    def bridge_leave(self, leg: Leg, result: str = "HANGUP") -> None:
        bridge = leg.chan.bridge
        if bridge is None:
            return
        if not leg.leave_announced:
            self.announce_leave(leg)
        leg.leave_announced = False
        bridge.members.remove(leg.chan)
        bridge.admins.discard(leg.chan.name)
        bridge.muted.discard(leg.chan.name)
        bridge.num_channels -= 1
        leg.chan.bridge = None
        self.emit(ev.bridge_channel_event("BridgeLeave", bridge, leg.chan))
        for other in bridge.members:
            self.emit(ev.varset(other, "BRIDGEPEER", bridge.peers_of(other)))
        if result:
            self.emit(ev.varset(leg.chan, "CONFBRIDGE_RESULT", result))
        if not bridge.members:
            self.emit(ev.bridge_event("ConfbridgeEnd", bridge))
            self.emit(ev.device_state(f"confbridge:{bridge.name}", "NOT_INUSE"))
            bridge.num_channels = 0
            self.emit(ev.device_state(f"CBAnn/{bridge.name}", "UNKNOWN"))
            self.emit(ev.bridge_event("BridgeDestroy", bridge))
            del self.bridges[bridge.name]
        leg.bridge_left.set()

    # -- hang-ups of answered calls --------------------------------------------

    def _before_end(self, leg: Leg) -> None:
        """What the application our side is in writes when its channel goes away."""
        ch = leg.chan
        if leg.activity is Activity.AMD:
            ch.variables["AMDSTATUS"], ch.variables["AMDCAUSE"] = "HANGUP", ""
            self.emit(ev.varset(ch, "AMDSTATUS", "HANGUP"))
            self.emit(ev.varset(ch, "AMDCAUSE", ""))
        if ch.bridge is not None:
            self.bridge_leave(leg)

    def _far_hangs_up(self, call: Call) -> None:
        """The called party hangs up an answered call (Local ;2 Hangup(), or a SIP BYE)."""
        ours, far = call.ours, call.far
        assert ours is not None
        if not ours.chan.alive:
            return
        if far is not None:
            two = far.chan
            self.emit(ev.hangup_request("SoftHangupRequest", two, 16))
            self.emit(ev.hangup_request("HangupRequest", ours.chan, 16))
            self._before_end(far)
            self._gone(far, 16)
        else:
            self._rtp_quality(ours)
            if self.modern:
                self.emit(ev.event("HangupRequest", ev.PRIV_CALL, ours.chan.snapshot()))
            else:
                self.emit(ev.hangup_request("HangupRequest", ours.chan, 16))
            if self.restarting and ours.end_how:
                return  # held in its FastAGI session by the restart: no Hangup while the socket is open
        self._end_ours(ours, "far_gone", 16)

    def ours_hangs_up(self, leg: Leg, cause: int = 16) -> None:
        """Our side's dialplan ends the call (Hangup(), end of dialplan, AGI HANGUP)."""
        if not leg.chan.alive:
            return
        self._end_ours(leg, "self", cause)

    def ami_hangup(self, leg: Leg, cause: int) -> None:
        call = leg.call
        if not leg.chan.alive:
            return
        if leg.on_ami_hangup is not None:
            leg.on_ami_hangup(cause)
            return
        if not call.done and leg.ours:
            self._cancel_dialing(call, cause)
            return
        if not leg.ours:
            # The far Local leg hung up by the manager: like the callee hanging up.
            if call.answered:
                self.cancel(leg.runner)
                self._far_hangs_up(call)
            else:
                self._cancel_dialing(call, cause)
            return
        if self.modern and leg.chan.bridge is not None:
            # ConfBridge writes ConfbridgeLeave at once, the bridge lets go after the
            # actions of this instant (two Hangups at once: both ConfbridgeLeave first,
            # sip_connect_into_full_bridge).
            self.announce_leave(leg)
            self.spawn(self._ami_hangup_later(leg, cause), call)
            return
        self._end_ours(leg, "ami", cause)

    async def _ami_hangup_later(self, leg: Leg, cause: int) -> None:
        await asyncio.sleep(0)
        if leg.chan.alive:
            self._end_ours(leg, "ami", cause)

    def agi_finished(self, leg: Leg) -> bool:
        """The AGI script let go.  True when the channel died meanwhile (it is finished here)."""
        ch = leg.chan
        if leg.end_how and ch.alive:
            ch.variables["AGISTATUS"] = "HANGUP"
            self.emit(ev.varset(ch, "AGISTATUS", "HANGUP"))
            self._finish_ours(leg, leg.end_how, leg.end_cause)
            return True
        if not ch.alive:
            return True
        if agi_redirect.resume(self, leg):
            return True  # a Redirect moved it on
        ch.variables["AGISTATUS"] = "SUCCESS"
        self.emit(ev.varset(ch, "AGISTATUS", "SUCCESS"))
        return False

    def agi_failed(self, leg: Leg) -> bool:
        """The FastAGI server could not be reached: AGI() returns and the dialplan goes on.

        True when the channel died while Asterisk was connecting (it is finished here).
        """
        ch = leg.chan
        if not ch.alive:
            return True
        ch.variables["AGISTATUS"] = "FAILURE"
        self.emit(ev.varset(ch, "AGISTATUS", "FAILURE"))
        if leg.end_how:
            self._finish_ours(leg, leg.end_how, leg.end_cause)
            return True
        return False

    def _end_ours(self, leg: Leg, how: str, cause: int) -> None:
        self._success_if_pending(leg.call)
        self._before_end(leg)
        if leg.activity is Activity.AGI:
            # The AGI session is told; it finishes the channel when the script lets go.
            leg.end_how, leg.end_cause = how, cause
            leg.activity = Activity.DEAD
            leg.hungup.set()
            return
        self._finish_ours(leg, how, cause)

    def _finish_ours(self, leg: Leg, how: str, cause: int) -> None:
        call = leg.call
        far = call.far
        ch = leg.chan
        self.cancel(leg.runner)
        leg.activity = Activity.DEAD
        leg.hungup.set()
        if far is None:
            # A channel running an Originate's application has no PBX thread to soft-hang it up.
            in_app = how == "far_gone" and call.app is not None and self.modern
            # A manager Hangup ends a channel's dialplan (pbx thread) with a soft hang-up too
            # (sip_supervisor_listen_whisper_barge: the customer in FastAGI, the dialled-in phone).
            ends_dialplan = how == "ami" and call.app is None and self.modern
            if (how in ("far_gone", "self") and not in_app) or ends_dialplan:
                self.emit(ev.hangup_request("SoftHangupRequest", ch, 16))
            if not (self.modern and how == "far_gone"):
                self._rtp_quality(leg)
            self._gone(leg, cause if how == "ami" else 16)
        elif how == "far_gone":
            self.emit(ev.hangup_request("SoftHangupRequest", ch, 16))
            self._gone(leg, 16)
        else:
            if how == "self":
                self.emit(ev.hangup_request("SoftHangupRequest", ch, 16))
            if far.chan.alive:
                self.emit(ev.hangup_request("HangupRequest", far.chan, 16))
            self._gone(leg, cause if how == "ami" else 16)
            if far.chan.alive:
                self.cancel(far.runner)
                if far.activity is Activity.PLAYBACK:
                    self.emit(ev.varset(far.chan, "PLAYBACKSTATUS", "SUCCESS"))
                self._before_end(far)
                self.emit(ev.hangup_request("SoftHangupRequest", far.chan, 16))
                self._gone(far, 16)
        self._end_call(call)

    def agi_opened(self) -> None:
        self.agi_open += 1
        self.agi_idle.clear()

    def agi_closed(self) -> None:
        self.agi_open -= 1
        if self.agi_open <= 0:
            self.agi_idle.set()

    def _rtp_quality(self, leg: Leg) -> None:
        if leg.media:
            elapsed = max(0.0, time.monotonic() - leg.chan.created) * self.time_scale
            for headers in ev.rtp_quality(leg.chan, int(elapsed * 50), 0):
                self.emit(headers)

    def _gone(self, leg: Leg, cause: int, tech_cause: int | None = None) -> None:
        """The channel's Hangup event: it is destroyed."""
        ch = leg.chan
        if not ch.alive:
            return
        ch.alive = False
        leg.activity = Activity.DEAD
        leg.hungup.set()
        self.emit(ev.hangup(ch, cause, tech_cause))
        mixmonitor.channel_gone(self, ch)
        self.legs.pop(ch.name, None)
        # A PJSIP endpoint's device stays in use while another of its channels is up.
        shared = leg.call.tech == "PJSIP" and any(
            other.chan.device == ch.device and other.device_used for other in self.legs.values()
        )
        if (leg.device_used or leg.call.tech == "Local") and not shared:
            self.emit(ev.device_state(ch.device, "NOT_INUSE"))
        self.cancel(leg.runner)

    def _end_call(self, call: Call) -> None:
        self._settle(call, call.answered)
        for leg in (call.ours, call.far):
            if leg is not None and leg.chan.alive:
                return
        for task in call.tasks:
            self.cancel(task)

    # -- manager actions on live calls ---------------------------------------------

    def redirect(self, leg: Leg, context: str, exten: str, priority: int) -> None:
        """Move an answered channel to another place in the dialplan (AMI Redirect)."""
        if leg.chan.bridge is not None:
            self.bridge_leave(leg, result="")
        if leg.activity is Activity.AGI:
            agi_redirect.request(leg, context, exten, priority)  # moves when the session ends
            return
        self.continue_at(leg, context, exten, priority)

    def continue_at(self, leg: Leg, context: str, exten: str, priority: int) -> None:
        """The channel's dialplan goes on at ``context,exten,priority`` (its application ended)."""
        self.cancel(leg.runner)
        leg.activity = Activity.APP
        leg.clock = Timeline.now()
        leg.chan.context, leg.chan.exten, leg.chan.priority = context, exten, priority
        leg.runner = self.spawn(self._run_dialplan(leg), leg.call)

    def setvar(self, leg: Leg | None, name: str, value: str) -> None:
        if leg is None:
            self.global_vars[name] = value
            return
        leg.chan.variables[name] = value
        self.emit(ev.varset(leg.chan, name, value))

    # For asterisk_restart (the 22.10 restart).
    rtp_quality = _rtp_quality
    gone = _gone
    end_call = _end_call
    failure_response = _failure_response
    # For asterisk_phones (a phone that dials in runs our dialplan like an originated channel).
    new_uniqueid = _uniqueid
    next_pjsip = _next_pjsip
    run_dialplan = _run_dialplan
    far_hangs_up = _far_hangs_up

    # -- restart ---------------------------------------------------------------------

    def shutdown_calls(self) -> None:
        """``core restart now``: every channel is soft-hung-up (cause 4) and destroyed (cause 0)."""
        self.closing = True
        for leg in list(self.legs.values()):
            call = leg.call
            if not leg.chan.alive:
                continue
            self.cancel(leg.runner)
            if leg.chan.bridge is not None:
                self.bridge_leave(leg)
            self.emit(ev.hangup_request("SoftHangupRequest", leg.chan, 4))
            self.emit(ev.hangup_request("SoftHangupRequest", leg.chan, 16))
            self._rtp_quality(leg)
            if leg.ours and not call.done:
                self._failure_response(call, 0)
            self._gone(leg, 0)
            self._end_call(call)
        for task in list(self._tasks):
            self.cancel(task)


def _seconds(data: str) -> float:
    try:
        return float(data.split(",")[0])
    except ValueError:
        return math.inf if not data else 0.0


def _parse_callerid(raw: str) -> tuple[str, str]:
    """``"Dialer" <0100000000>`` -> ("0100000000", "Dialer"); missing parts are ``<unknown>``."""
    raw = raw.strip()
    if not raw:
        return "<unknown>", "<unknown>"
    if "<" in raw and raw.endswith(">"):
        name, _, num = raw[:-1].partition("<")
        name = name.strip().strip('"')
        return num.strip() or "<unknown>", name or "<unknown>"
    if raw.replace("+", "").isdigit():
        return raw, "<unknown>"
    return "<unknown>", raw.strip('"')
