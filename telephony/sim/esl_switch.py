"""The switch behind the ESL simulator: channels, avmd and agent conferences, with no sockets.

It plays each originate out the way FreeSWITCH 1.10.12 did in the recorded
sessions (``../shared/freeswitch-transcripts``): the same events in the same
order with the same delays, rendered from templates cut out of those
sessions.  The callee model decides who answers; every delay is in PBX
seconds and divided by the time scale.  Events go to ``publish``; replies to
API commands are returned as text.

What each call does, as recorded:

- refused (486/503/404): CHANNEL_CREATE, then 20 ms later CHANNEL_HANGUP,
  CHANNEL_HANGUP_COMPLETE and BACKGROUND_JOB ``-ERR <CAUSE>`` (the job lands
  before, between or after the hang-up events with the recorded odds);
- ringing: CHANNEL_CREATE, CHANNEL_PROGRESS; ``originate_timeout`` counted in
  whole seconds of the clock (``NO_ANSWER``), or ``uuid_kill`` (cause
  ``NORMAL_CLEARING``, 20 ms after the API reply);
- answered: CHANNEL_ANSWER and BACKGROUND_JOB ``+OK <uuid>``, then the
  application: ``&park()`` (CHANNEL_PARK), ``amd`` (avmd::start,
  EXECUTE_COMPLETE avmd_start, CHANNEL_PARK, the avmd::start copy) or
  ``agent_<id>`` (conference); at the end CHANNEL_HANGUP,
  CHANNEL_EXECUTE_COMPLETE of the running application, CHANNEL_HANGUP_COMPLETE.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import re
import time
import uuid as uuidlib
from collections.abc import Callable
from dataclasses import dataclass, field

from telephony.base import Q850
from telephony.sim.esl_templates import (
    ORIGVARS_MARKER,
    Headers,
    Template,
    load_templates,
    render,
    serialize_event,
    time_resolver,
    url_encode,
)
from telephony.sim.model import CalleeKind, CalleeModel, CalleePlan

log = logging.getLogger(__name__)

# The sofia profiles of the lab configuration (lab-conf/autoload_configs/sofia.conf.xml).
SOFIA_PROFILES = frozenset({"dialer"})
DEFAULT_ORIGINATE_TIMEOUT = 60  # FreeSWITCH's default when originate_timeout is not set

# Delays measured in the captures, in PBX seconds.
SIP_ROUND_TRIP = 0.020  # INVITE -> 180 / final answer from a local peer
KILL_DELAY = 0.020  # uuid_kill reply -> CHANNEL_HANGUP
APP_DELAY = 0.020  # sendmsg / uuid_transfer reply -> the application's events
PARK_COPY_DELAY = 0.001  # the parked session re-fires its queued copy of an avmd event
BEEP_AFTER_ANSWER = 5.30  # avmd::beep after answer for the lab's beeping greeting (5.28-5.30 s)
TALK_START = 0.060  # a customer says "hello" this long after joining the conference
TALK_LENGTH = 1.350
BEEP_TONE_S = 1.0  # the lab's beep (machine_beep.xml)
GREETING_S = 11.0  # the lab machine's greeting without a beep
PLAYBACK_S = 3.0  # a dialer's message (abandon notice, voicemail message); not in the recordings
CONFERENCE_SETTLE = 0.020  # floor-change to the next member / conference-destroy after a leave
PIN_TYPING_S = 2.0  # an agent hears the PIN prompt and types the PIN; not in the recordings
LOGIN_PHONE_PORT = "5081"  # the lab's agent softphone peer
# play_and_get_digits of the shipped login extension (config/freeswitch/dialplan/dialer.xml)
LOGIN_DIGITS_DATA = (
    "4 12 3 8000 # voicemail/vm-enter_pass.wav voicemail/vm-fail_auth.wav dialer_login_pin \\d+ 5000"
)

BYE_VARIABLES = (
    "variable_sip_term_status",
    "variable_proto_specific_hangup_cause",
    "variable_sip_term_cause",
)
DISPOSITION = "variable_sip_hangup_disposition"

# SIP refusals of the lab peers: cause, q850, SIP status, reason phrase.
_REFUSALS: dict[CalleeKind, tuple[str, int, str, str]] = {
    CalleeKind.BUSY: ("USER_BUSY", 17, "486", "Busy Here"),
    CalleeKind.CONGESTION: ("NORMAL_TEMPORARY_FAILURE", 41, "503", "Service Unavailable"),
    CalleeKind.INVALID: ("UNALLOCATED_NUMBER", 1, "404", "Not Found"),
}
_ANSWERING = frozenset(
    {
        CalleeKind.PERSON,
        CalleeKind.MACHINE,
        CalleeKind.MACHINE_BEEP,
        CalleeKind.SHORT,
        CalleeKind.AGENT,
    }
)
_TALKERS = frozenset({CalleeKind.PERSON, CalleeKind.MACHINE, CalleeKind.MACHINE_BEEP, CalleeKind.SHORT})
_AGENT_EXTENSION = re.compile(r"^agent_\d+$")
_ORIGINATE = re.compile(r"^(\{(?P<vars>[^}]*)\})?(?P<dial>\S+)(\s+(?P<dest>.*))?$")
_CAUSE_NAMES = {c.name: int(c) for c in Q850}

# event name, CUSTOM subclass ("" otherwise), the event's headers (URL-encoded values), frame
Publish = Callable[[str, str, Headers, bytes], None]


def q850_of(cause: str) -> int:
    return _CAUSE_NAMES.get(cause, 16)


class OriginateRefused(Exception):
    """The originate did not create a channel (bad profile, bad dial string)."""

    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.reply = reply


@dataclass
class Dial:
    variables: list[tuple[str, str]]
    profile: str
    user: str
    host: str
    port: str
    destination: str  # "&park()", "amd XML dialer", "agent_1001 XML dialer"

    @property
    def target(self) -> str:
        return f"{self.user}@{self.host}:{self.port}" if self.port else f"{self.user}@{self.host}"


def parse_originate_arg(arg: str, profiles: frozenset[str] = SOFIA_PROFILES) -> Dial:
    """``{vars}sofia/<profile>/<user>@<host>[:<port>] <destination>`` as mod_commands reads it."""
    m = _ORIGINATE.match(arg.strip())
    if not m or not m.group("dest"):
        raise OriginateRefused(
            "-USAGE: <call url> <exten>|&<application_name>(<app_args>) [<dialplan>] [<context>] "
            "[<cid_name>] [<cid_num>] [<timeout_sec>]\n"
        )
    pairs = []
    for part in (m.group("vars") or "").split(","):
        if part:
            k, _, v = part.partition("=")
            pairs.append((k.strip(), v))
    endpoint, _, rest = m.group("dial").partition("/")
    if endpoint != "sofia":
        raise OriginateRefused("-ERR CHAN_NOT_IMPLEMENTED\n")
    profile, _, target = rest.partition("/")
    if profile not in profiles:
        raise OriginateRefused("-ERR INVALID_PROFILE\n")
    user, _, hostport = target.partition("@")
    host, _, port = hostport.partition(":")
    if not user or not host:
        raise OriginateRefused("-ERR INVALID_URL\n")
    return Dial(pairs, profile, user, host, port, m.group("dest").strip())


@dataclass
class Conference:
    name: str
    uuid: str
    members: list[Channel] = field(default_factory=list)
    floor: Channel | None = None


@dataclass
class Channel:
    uuid: str
    job: str
    dial: Dial
    plan: CalleePlan
    values: dict[str, str]
    points: dict[str, int]
    family: str  # template family of the current application: park, amd, agent, cust
    commands: asyncio.Queue[tuple[str, str]] = field(default_factory=asyncio.Queue)
    answered: bool = False
    hung_up: bool = False
    application: str = ""  # running application: park, conference
    last_app: str = ""
    avmd_running: bool = False
    avmd_stopped_by_app: bool = False
    beep_detected: bool = False
    conference: Conference | None = None
    member_id: int = 0
    role: str = ""  # agent (originated into the conference) or cust (transferred in)
    pending_transfer: str = ""
    channel_vars: dict[str, str] = field(default_factory=dict)  # set with uuid_setvar
    background: bool = True  # bgapi: the outcome is a BACKGROUND_JOB; api: the reply waits for it
    arg: str = ""
    result: asyncio.Future[str] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    timers: dict[str, float] = field(default_factory=dict)  # action -> PBX epoch seconds
    playing: str = ""  # file of a running playback; later sendmsg applications wait for it
    deferred: list[tuple[str, str]] = field(default_factory=list)
    ready: list[tuple[str, str]] = field(default_factory=list)  # deferred commands whose turn has come
    task: asyncio.Task[None] | None = None
    # An agent's phone that dialed the login extension 9<id> (``Switch.dial_in``), not an originate.
    inbound: bool = False
    login_agent: str = ""
    login_pins: list[str] = field(default_factory=list)  # typed at each PIN prompt, in turn
    login_vars: dict[str, str] = field(default_factory=dict)  # set by the login extension

    @property
    def number(self) -> str:
        return self.dial.user


@dataclass(frozen=True)
class LiveChannel:
    """What ``show channels`` tells about a channel."""

    uuid: str
    number: str
    answer_state: str
    application: str
    created_epoch: int


class Switch:
    """Channels and conferences of one FreeSWITCH process; ``crash`` forgets them all."""

    def __init__(
        self,
        model: CalleeModel,
        time_scale: float,
        seed: int,
        publish: Publish,
        profiles: frozenset[str] = SOFIA_PROFILES,
        dialplan: str = "shipped",
    ) -> None:
        if time_scale <= 0:
            raise ValueError(f"time_scale must be > 0, got {time_scale}")
        self.model = model
        self.profiles = profiles
        # "shipped": config/freeswitch/dialplan/dialer.xml, where agent_<id> runs answer before
        # conference; "lab": the lab dialplan of the first captures (conference at once).
        if dialplan not in ("shipped", "lab"):
            raise ValueError(f"dialplan must be 'shipped' or 'lab', got {dialplan!r}")
        self.dialplan = dialplan
        self.time_scale = time_scale
        self.publish = publish
        self.templates: dict[str, Template] = load_templates()
        self.rng = random.Random(seed)
        self.core_uuid = str(uuidlib.UUID(int=self.rng.getrandbits(128), version=4))
        self.channels: dict[str, Channel] = {}
        self.conferences: dict[str, Conference] = {}
        self._settling: set[asyncio.Task[None]] = set()
        self.sequence = 1000 + self.rng.randrange(500)
        self.session_counter = 0
        self.member_counter = 0
        self.sessions_since_start = 0
        self._epoch0 = time.time()
        self._mono0 = time.monotonic()
        self.on_channel_gone: Callable[[str], None] | None = None  # uuid_record ends with the channel

    # -- clock ---------------------------------------------------------------------

    def now_us(self) -> int:
        return int((self._epoch0 + (time.monotonic() - self._mono0) * self.time_scale) * 1_000_000)

    def uptime_s(self) -> float:
        return (time.monotonic() - self._mono0) * self.time_scale

    async def sleep(self, pbx_seconds: float) -> None:
        await asyncio.sleep(max(0.0, pbx_seconds) / self.time_scale)

    async def wait_command(self, ch: Channel, pbx_seconds: float) -> tuple[str, str] | None:
        """The next command for this channel, or None when ``pbx_seconds`` pass first."""
        if math.isinf(pbx_seconds):
            return await ch.commands.get()
        try:
            return await asyncio.wait_for(ch.commands.get(), max(0.0, pbx_seconds) / self.time_scale)
        except TimeoutError:
            return None

    # -- events ----------------------------------------------------------------------

    def _uuid(self) -> str:
        return str(uuidlib.UUID(int=self.rng.getrandbits(128), version=4))

    def next_sequence(self) -> int:
        # FreeSWITCH numbers every event, subscribed or not (CHANNEL_STATE, CALLSTATE...):
        # a listener sees gaps of one to four between the events it asked for.
        self.sequence += self.rng.randint(1, 4)
        return self.sequence

    def emit(
        self,
        name: str,
        ch: Channel | None,
        extra: dict[str, str] | None = None,
        *,
        seq: int | None = None,
        transform: Callable[[Headers], Headers] | None = None,
    ) -> int:
        template = self.templates[name]
        values: dict[str, str] = dict(ch.values) if ch else {}
        values["core_uuid"] = self.core_uuid
        sequence = seq if seq is not None else self.next_sequence()
        values["seq"] = str(sequence)
        if extra:
            values.update(extra)
        points = dict(ch.points) if ch else {}
        points["event"] = self.now_us()
        headers = render(template, values, time_resolver(points))
        if transform is not None:
            headers = transform(headers)
        if ch is not None and ch.inbound:
            headers = _as_inbound(headers, ch)
        subclass = ""
        if template.event_name == "CUSTOM":
            subclass = next((v for k, v in headers if k == "Event-Subclass"), "").replace("%3A", ":")
        body = values.get("job_body", "") if template.body is not None else None
        self.publish(template.event_name, subclass, headers, serialize_event(headers, body))
        return sequence

    def background_job(self, job: str, job_arg: str, body: str) -> None:
        """BACKGROUND_JOB for ``bgapi <command> <arg>``; ``job_arg`` is the raw argument."""
        self.emit("bgjob", None, {"job": job, "job_arg": url_encode(job_arg), "job_body": body})

    def job_done(self, ch: Channel, body: str) -> None:
        if ch.background:
            self.background_job(ch.job, ch.arg, body)
        if not ch.result.done():
            ch.result.set_result(body)

    # -- originate -------------------------------------------------------------------

    def originate(self, job: str, arg: str, *, background: bool = True) -> Channel:
        """Create the channel of ``originate <arg>`` and start playing it out (bgapi or api)."""
        dial = parse_originate_arg(arg, self.profiles)
        variables = dict(dial.variables)
        uuid = variables.get("origination_uuid") or self._uuid()
        if uuid in self.channels:
            raise OriginateRefused("-ERR DESTINATION_OUT_OF_ORDER\n")
        # A model may tell callees apart by port too (the recorded lab peers share user parts).
        plan_dial = getattr(self.model, "plan_dial", None)
        plan: CalleePlan = plan_dial(dial.user, dial.port) if plan_dial else self.model.plan(dial.user)
        self.session_counter += 1
        self.sessions_since_start += 1
        destination = dial.destination.split()[0]
        if destination.startswith("&"):
            family = "park"  # an inline application: &park()
        elif _AGENT_EXTENSION.match(destination):
            family = "agent"
        else:
            # a dialplan extension: "amd" runs avmd_start then park; "park" (and, leniently,
            # any other name) parks.  Both are a bl_xfer into context dialer.
            family = "amd"
        ch = self._new_channel(uuid, job, arg, dial, plan, family, background)
        if family == "agent":
            ch.values["conf_name"] = destination
        ch.task = asyncio.get_running_loop().create_task(self._run(ch))
        return ch

    def _new_channel(
        self, uuid: str, job: str, arg: str, dial: Dial, plan: CalleePlan, family: str, background: bool
    ) -> Channel:
        destination = dial.destination.split()[0]
        variables = dict(dial.variables)
        now = self.now_us()
        sdp_id = self.rng.randrange(1_700_000_000, 1_999_999_999)
        values = {
            "uuid": uuid,
            "job": job,
            "job_arg": url_encode(arg),
            "number": dial.user,
            "port": dial.port or "5060",
            "dest": url_encode(dial.target),
            "dest_raw": dial.target,
            "hostport": url_encode(f"{dial.host}:{dial.port or '5060'}"),
            "cid_number": url_encode(variables.get("origination_caller_id_number", "0000000000")),
            "cid_name": url_encode(variables.get("origination_caller_id_name", "FreeSWITCH")),
            "session_id": str(self.session_counter),
            "sip_call_id": self._uuid(),
            "sip_from_tag": self._token(13),
            "sip_to_tag": f"{self.rng.randrange(1000, 99999)}SIPpTag01{self.rng.randrange(10, 99)}",
            "sip_cseq": str(self.rng.randrange(100_000_000, 200_000_000)),
            "sip_branch": "z9hG4bK" + self._token(13),
            "rtp_ssrc": str(self.rng.randrange(100_000_000, 4_000_000_000)),
            "local_media_port": str(20000 + 2 * self.rng.randrange(500)),
            "remote_media_port": str(7000 + 2 * self.rng.randrange(100)),
            "sdp_id": str(sdp_id),
            "sdp_version": str(sdp_id + 1),
            # a variable set to nothing is not set at all (dialer_campaign= of an agent leg)
            ORIGVARS_MARKER: "\n".join(f"variable_{k}\t{url_encode(v)}" for k, v in dial.variables if v),
            "extension": url_encode(destination),
            "xfer_uuid": self._uuid(),
        }
        points = {"created": now, "profile": now, "progress": 0, "answered": 0, "hangup": 0, "avmd": 0}
        ch = Channel(uuid, job, dial, plan, values, points, family, background=background, arg=arg)
        self.channels[uuid] = ch
        return ch

    def dial_in(self, agent_id: str, pins: list[str]) -> Channel:
        """An agent's phone dials the login extension ``9<agent_id>`` and types ``pins`` in turn.

        No capture of this flow exists (every recorded channel is an originate).  The events are
        the recorded ones of a parked channel, turned inbound (``_as_inbound``):
        CHANNEL_CREATE / CHANNEL_ANSWER / CHANNEL_PARK of ``answered_person`` (park.*), the
        CHANNEL_EXECUTE_COMPLETE of ``answer`` and ``play_and_get_digits`` shaped like
        ``burst_of_twenty``'s avmd_start one (as playback's is), and once the dialer moves it
        into ``agent_<id>`` the customer's of ``agent_and_customer_connected`` (cust.exec_park,
        cust.exec_answer, cust.add_member, cust.hangup...), since that leg was moved from park
        the same way.  The variables the
        login extension sets (dialer_login_agent, dialer_login_pin) come where an originate's
        own variables are.
        """
        if not agent_id.isdigit():
            raise ValueError(f"an agent's phone dials digits: 9{agent_id!r}")
        uuid = self._uuid()
        extension = f"9{agent_id}"
        dial = Dial([], "dialer", agent_id, "127.0.0.1", LOGIN_PHONE_PORT, f"{extension} XML dialer")
        self.session_counter += 1
        self.sessions_since_start += 1
        ch = self._new_channel(uuid, "", "", dial, CalleePlan(CalleeKind.AGENT, 0.0), "park", False)
        ch.inbound = True
        ch.values.update(cid_number=url_encode(agent_id), cid_name=url_encode(f"Agent {agent_id}"))
        ch.login_agent = agent_id
        ch.login_pins = list(pins)
        ch.task = asyncio.get_running_loop().create_task(self._run_login(ch))
        return ch

    async def _run_login(self, ch: Channel) -> None:
        try:
            self.emit("park.create", ch)
            await self.sleep(SIP_ROUND_TRIP)
            ch.answered = True
            now = self.now_us()
            ch.points["answered"] = ch.points["profile"] = now
            self.emit("park.answer", ch)  # the login extension's answer
            await self.sleep(APP_DELAY)
            self.emit(
                "amd.exec_avmd_start",
                ch,
                {"app_uuid": self._uuid()},
                transform=lambda headers: _as_application(headers, "answer", "", "_none_"),
            )
            ch.application = "play_and_get_digits"
            ch.timers["pin_typed"] = self._now_s() + PIN_TYPING_S
            await self._talk(ch)
        except Exception:
            log.exception("simulated login call %s failed", ch.uuid)
            raise
        finally:
            self.channels.pop(ch.uuid, None)

    def _pin_typed(self, ch: Channel) -> None:
        """play_and_get_digits is done (the next PIN, or nothing typed), then set and park."""
        pin = ch.login_pins.pop(0) if ch.login_pins else ""
        self.set_var(ch, "dialer_login_pin", pin)
        data = LOGIN_DIGITS_DATA
        self.emit(
            "amd.exec_avmd_start",
            ch,
            {"app_uuid": self._uuid()},
            transform=lambda headers: _as_application(headers, "play_and_get_digits", data, "_none_"),
        )
        self.set_var(ch, "dialer_login_agent", ch.login_agent)
        self._park(ch, "park.park")

    def set_var(self, ch: Channel, name: str, value: str) -> None:
        """``set`` / ``uuid_setvar``: a login channel's variables show in its events; no value unsets."""
        ch.channel_vars[name] = value
        if not ch.inbound:
            return
        if value:
            ch.login_vars[name] = value
        else:
            ch.login_vars.pop(name, None)
        ch.values[ORIGVARS_MARKER] = "\n".join(
            f"variable_{k}\t{url_encode(v)}" for k, v in ch.login_vars.items()
        )

    def _token(self, n: int) -> str:
        alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
        return "".join(self.rng.choice(alphabet) for _ in range(n))

    def originate_timeout(self, ch: Channel) -> float:
        """PBX seconds from now until originate_timeout fires: FreeSWITCH compares whole seconds."""
        raw = dict(ch.dial.variables).get("originate_timeout", "")
        timeout = int(raw) if raw.isdigit() and int(raw) > 0 else DEFAULT_ORIGINATE_TIMEOUT
        deadline_s = ch.points["created"] // 1_000_000 + timeout
        return deadline_s - self.now_us() / 1_000_000

    async def _run(self, ch: Channel) -> None:
        try:
            await self._play(ch)
        except Exception:
            log.exception("simulated call %s failed", ch.uuid)
            raise
        finally:
            self.channels.pop(ch.uuid, None)

    async def _play(self, ch: Channel) -> None:
        prefix = {"agent": "agent", "amd": "amd", "park": "park"}[ch.family]
        if ch.plan.kind in _REFUSALS:
            prefix = "refuse"
        elif ch.plan.kind not in _ANSWERING:
            prefix = "ring"
        self.emit(f"{prefix}.create", ch)
        if ch.plan.kind in _REFUSALS:
            cause, q850, status, phrase = _REFUSALS[ch.plan.kind]
            await self.sleep(max(ch.plan.ring_s, SIP_ROUND_TRIP))
            self._set_cause(ch, cause, q850, status, url_encode(phrase))
            self._end_unanswered(ch, "refuse")
            return
        progress_at = min(SIP_ROUND_TRIP, ch.plan.ring_s) if ch.plan.kind in _ANSWERING else SIP_ROUND_TRIP
        await self.sleep(progress_at)
        ch.points["progress"] = self.now_us()
        self.emit(f"{prefix}.progress", ch)
        ring_left = ch.plan.ring_s - progress_at if ch.plan.kind in _ANSWERING else math.inf
        while True:
            timeout_left = self.originate_timeout(ch)
            wait = min(ring_left, timeout_left)
            started = self.now_us()
            command = await self.wait_command(ch, wait)
            if command is None:
                if ring_left <= timeout_left:
                    break  # answered
                self._set_cause(ch, "NO_ANSWER", 19, "487", "CANCEL")
                self._end_unanswered(ch, "ring")
                return
            ring_left -= (self.now_us() - started) / 1_000_000
            verb, arg = command
            if verb == "kill":
                await self.sleep(KILL_DELAY)
                self._set_cause(ch, arg, q850_of(arg), "487", "CANCEL")
                self._end_unanswered(ch, "ring")
                return
            if verb == "transfer":
                ch.pending_transfer = arg
        await self._answered(ch)

    def _set_cause(self, ch: Channel, cause: str, q850: int, sip_status: str, phrase: str = "") -> None:
        ch.values.update(cause=cause, q850=str(q850), sip_status=sip_status, sip_phrase=phrase)

    def _end_unanswered(self, ch: Channel, family: str) -> None:
        """CHANNEL_HANGUP, CHANNEL_HANGUP_COMPLETE and the ``-ERR`` job, the job where chance puts it.

        The job thread and the channel thread race in FreeSWITCH: over the recorded
        failures the job came after CHANNEL_HANGUP_COMPLETE 12 times, between the two
        hang-up events 6 times and before CHANNEL_HANGUP once.  The simulator draws
        the same odds (seeded), so a client is exercised on every order.
        """
        ch.hung_up = True
        ch.points["hangup"] = self.now_us()
        if family == "ring":
            ch.points["profile"] = ch.points["created"]
        position = self.rng.choices((0, 1, 2), weights=(1, 6, 12))[0]
        body = f"-ERR {ch.values['cause']}\n"
        if position == 0:
            self.job_done(ch, body)
        self.emit(f"{family}.hangup", ch)
        if position == 1:
            self.job_done(ch, body)
        self.emit(f"{family}.hangup_complete", ch)
        if position == 2:
            self.job_done(ch, body)

    # -- answered calls ----------------------------------------------------------------

    def _now_s(self) -> float:
        return self.now_us() / 1_000_000

    async def _answered(self, ch: Channel) -> None:
        ch.answered = True
        now = self.now_us()
        ch.points["answered"] = now
        self.emit(f"{ch.family}.answer", ch)
        if ch.plan.talk_s is not None:
            ch.timers["hangup"] = now / 1_000_000 + ch.plan.talk_s
        if ch.family == "park":
            self.job_done(ch, f"+OK {ch.uuid}\n")
            self._park(ch, "park.park")
        elif ch.family == "amd":
            ch.points["profile"] = now
            self.job_done(ch, f"+OK {ch.uuid}\n")
            extension = ch.values["extension"]
            amd_on = dict(ch.dial.variables).get("dialer_amd") == "true"
            if extension == "amd" or (extension == "dialer_answered" and amd_on):
                await self._avmd_start(ch, with_app=True)
            else:
                self._park(ch, "amd.park")
        else:
            ch.points["profile"] = now
            await self.sleep(APP_DELAY)
            if self.dialplan == "shipped":
                self.emit("agent.exec_answer", ch, {"app_uuid": self._uuid()})
            self._join(ch, ch.values["conf_name"], "agent")
            self.job_done(ch, f"+OK {ch.uuid}\n")
            conference = ch.conference
            if conference is not None and conference.floor is None:
                self._floor_change(conference, ch)
        if ch.pending_transfer:
            ch.commands.put_nowait(("transfer", ch.pending_transfer))
        await self._talk(ch)

    def _park(self, ch: Channel, template: str) -> None:
        ch.application = ch.last_app = "park"
        self.emit(template, ch)

    async def _avmd_start(self, ch: Channel, *, with_app: bool) -> None:
        ch.points["avmd"] = self.now_us()
        ch.avmd_running = True
        seq = self.emit("amd.avmd_start_bare", ch)
        if with_app:
            self.emit("amd.exec_avmd_start", ch, {"app_uuid": self._uuid()})
            self._park(ch, "amd.park")
        await self.sleep(PARK_COPY_DELAY)
        self.emit("amd.avmd_start_copy", ch, seq=seq)
        if ch.plan.kind is CalleeKind.MACHINE_BEEP and not ch.beep_detected:
            ch.timers["beep"] = ch.points["answered"] / 1_000_000 + BEEP_AFTER_ANSWER

    async def _talk(self, ch: Channel) -> None:
        """The answered call until it ends: callee timers and the dialer's commands."""
        while True:
            action, at = min(ch.timers.items(), key=lambda kv: kv[1]) if ch.timers else ("", math.inf)
            command = ch.ready.pop(0) if ch.ready else await self.wait_command(ch, at - self._now_s())
            if command is None:
                del ch.timers[action]
                if action == "hangup":
                    await self._hangup(ch, "NORMAL_CLEARING", by_us=False)
                    return
                await self._timer(ch, action)
                continue
            verb, arg = command
            if verb == "kill":
                await self.sleep(KILL_DELAY)
                await self._hangup(ch, arg, by_us=True)
                return
            if verb == "bye":  # the far end hangs up (an agent's phone: sim.agent_phone_hangs_up)
                await self._hangup(ch, "NORMAL_CLEARING", by_us=False)
                return
            if verb == "transfer":
                await self.sleep(APP_DELAY)
                self._transfer(ch, arg)
            elif verb == "kick" and ch.conference is not None:
                await self._kicked(ch)
                return
            elif verb == "app" and ch.playing:
                ch.deferred.append(command)  # the session runs its queued applications one by one
            elif verb == "app":
                app, _, app_arg = arg.partition(" ")
                await self.sleep(APP_DELAY)
                if app == "hangup":
                    await self._hangup(ch, app_arg.strip() or "NORMAL_CLEARING", by_us=True)
                    return
                if app == "playback":
                    ch.playing = app_arg.strip()
                    ch.timers["playback_done"] = self._now_s() + PLAYBACK_S
                    continue
                if app == "transfer":  # the dptools app: <extension> XML <context>
                    self._transfer(ch, app_arg.strip())
                    continue
                await self._app(ch, app)
            elif verb == "avmd_api_stop":
                await self._avmd_api_stop(ch)
            elif verb == "avmd_api_start" and not ch.avmd_running:
                await self._avmd_start(ch, with_app=False)

    async def _timer(self, ch: Channel, action: str) -> None:
        conference = ch.conference
        if action == "pin_typed":
            self._pin_typed(ch)
            return
        if action == "playback_done":
            self.emit(
                "amd.exec_avmd_start",
                ch,
                {"app_uuid": self._uuid()},
                transform=lambda headers: _as_application(headers, "playback", ch.playing, "FILE%20PLAYED"),
            )
            ch.playing = ""
            ch.ready.extend(ch.deferred)
            ch.deferred.clear()
            return
        if action == "beep" and ch.avmd_running:
            detect_us = int(BEEP_AFTER_ANSWER * 1_000_000) - self.rng.randrange(0, 30_000)
            extra = {"avmd_detect_us": str(detect_us), "avmd_detect_ms": str(detect_us // 1000)}
            ch.values.update(extra)
            ch.beep_detected = True
            ch.avmd_running = False  # avmd stops itself once it has heard the beep
            seq = self.emit("beep.avmd_beep_bare", ch)
            if ch.conference is None:
                # the parked session re-fires its queued copy; in a conference only the bare one comes
                self.emit("beep.avmd_beep_copy", ch, seq=seq)
        elif action == "start_talking" and conference is not None:
            self.emit("cust.start_talking", ch, self._member_values(conference, ch))
            ch.timers["take_floor"] = self._now_s() + SIP_ROUND_TRIP
        elif action == "take_floor" and conference is not None and conference.floor is not ch:
            self._floor_change(conference, ch)
        elif action == "stop_talking" and conference is not None:
            self.emit("cust.stop_talking", ch, self._member_values(conference, ch))

    async def _app(self, ch: Channel, app: str) -> None:
        """``sendmsg <uuid>`` ``execute-app-name``: the applications the dialer runs on a parked call."""
        if app == "avmd_stop":
            ch.last_app = "avmd_stop"
            if ch.avmd_running:
                total = self.now_us() - ch.points["avmd"]
                ch.values["avmd_total_time"] = str(total)
                seq = self.emit("stop.avmd_stop_bare", ch)
                ch.avmd_running = False
                ch.avmd_stopped_by_app = True
                ch.timers.pop("beep", None)
                self.emit("stop.exec_avmd_stop", ch, {"app_uuid": self._uuid()})
                await self.sleep(PARK_COPY_DELAY)
                self.emit("stop.avmd_stop_copy", ch, seq=seq)
            else:
                ch.avmd_stopped_by_app = True
                self.emit("stop.exec_avmd_stop", ch, {"app_uuid": self._uuid()})
        elif app == "avmd_start" and not ch.avmd_running:
            await self._avmd_start(ch, with_app=False)

    async def _avmd_api_stop(self, ch: Channel) -> None:
        # mod_avmd 1.10.12's API stop passes a zero beep state, which reads as DETECTED, and a
        # total time of minus the start time (the session object is not found).
        await self.sleep(0.001)
        ch.values["avmd_total_time"] = str(-ch.points["avmd"])
        seq = self.emit("apistop.avmd_stop_bare", ch)
        ch.avmd_running = False
        ch.timers.pop("beep", None)
        await self.sleep(APP_DELAY)
        self.emit("apistop.avmd_stop_copy", ch, seq=seq)

    def _transfer(self, ch: Channel, destination: str) -> None:
        extension = destination.split()[0] if destination.split() else ""
        if ch.login_agent and extension == f"9{ch.login_agent}" and ch.conference is None:
            # back to the login extension for another PIN: the park ends as a transferred
            # one does (cust.exec_park, agent_and_customer_connected), the prompt runs again
            ch.values["xfer_uuid"] = self._uuid()
            ch.values["conf_name"] = extension  # the template's transfer destination
            if ch.application == "park":
                self.emit("cust.exec_park", ch, {"app_uuid": self._uuid()})
            ch.application = "play_and_get_digits"
            ch.points["profile"] = self.now_us()
            ch.timers["pin_typed"] = self._now_s() + PIN_TYPING_S
            return
        if extension == "dialer_abandon":
            self._to_message(ch)
            return
        if not _AGENT_EXTENSION.match(extension) or ch.conference is not None:
            return
        # avmd started in the answer extension keeps listening in the conference (beep_after_connect)
        ch.values["xfer_uuid"] = self._uuid()
        ch.values["conf_name"] = extension
        ch.points["profile"] = self.now_us()
        if ch.application == "park":
            self.emit("cust.exec_park", ch, {"app_uuid": self._uuid()})
        if self.dialplan == "shipped":
            self.emit("cust.exec_answer", ch, {"app_uuid": self._uuid()})
        self._join(ch, extension, "cust")
        conference = ch.conference
        if conference is not None and conference.floor is None:
            self._floor_change(conference, ch)
        if ch.plan.kind in _TALKERS:
            now = self._now_s()
            ch.timers["start_talking"] = now + TALK_START
            answered = ch.points["answered"] / 1_000_000
            if ch.plan.kind is CalleeKind.MACHINE_BEEP:
                # the greeting runs into its beep: no pause before then (beep_after_connect)
                ch.timers["stop_talking"] = answered + BEEP_AFTER_ANSWER + BEEP_TONE_S
            elif ch.plan.kind is CalleeKind.MACHINE:
                ch.timers["stop_talking"] = answered + GREETING_S
            else:
                ch.timers["stop_talking"] = now + TALK_START + TALK_LENGTH

    # -- conferences ----------------------------------------------------------------------

    def _member_values(self, conference: Conference, ch: Channel | None, **extra: str) -> dict[str, str]:
        values = {
            "conf_name": conference.name,
            "conf_uuid": conference.uuid,
            "conf_size": str(len(conference.members)),
        }
        if ch is not None:
            values["member_id"] = str(ch.member_id)
        values.update(extra)
        return values

    def _join(self, ch: Channel, name: str, role: str) -> None:
        template = f"{role}.add_member"
        if role == "agent" and self.dialplan == "shipped":
            template = "shipped_agent.add_member"  # answer ran first: the member carries its transfer
        conference = self.conferences.get(name)
        if conference is None:
            conference = Conference(name, self._uuid())
            self.conferences[name] = conference
            self.emit("conf.create", None, self._member_values(conference, None))
        self.member_counter += 1
        ch.member_id = self.member_counter
        ch.conference = conference
        ch.role = ch.family = role
        ch.application = ch.last_app = "conference"
        ch.values.update(conf_name=name, conf_uuid=conference.uuid, member_id=str(ch.member_id))
        conference.members.append(ch)
        self.emit(template, ch, self._member_values(conference, ch))

    def _floor_change(self, conference: Conference, ch: Channel) -> None:
        old = str(conference.floor.member_id) if conference.floor is not None else "none"
        conference.floor = ch
        values = self._member_values(conference, ch, old_id=old, new_id=str(ch.member_id))
        self.emit(f"{ch.role}.floor_change", ch, values)

    def kick(self, conference_name: str, member_id: str) -> str:
        """``conference <name> kick <member-id>``: kick-member now, the member's leg ends 20 ms later."""
        conference = self.conferences.get(conference_name)
        if conference is None:
            return f"Conference {conference_name} not found\n"
        member = next((m for m in conference.members if str(m.member_id) == member_id), None)
        if member is None:
            return "Non-Existent ID 0\n" if not member_id.isdigit() else f"Non-Existent ID {member_id}\n"
        self.emit("cust.kick_member", member, self._member_values(conference, member))
        member.commands.put_nowait(("kick", ""))
        return f"+OK kicked {member_id}\n"

    def _to_message(self, ch: Channel) -> None:
        """``dialer_abandon`` of the shipped dialplan: playback ${dialer_abandon_message}, hangup.
        Not in the recordings: a member moved out leaves its conference as a kicked one does."""
        ch.timers.pop("beep", None)
        ch.timers.pop("start_talking", None)
        ch.timers.pop("stop_talking", None)
        ch.avmd_running = False
        conference = ch.conference
        if conference is not None:
            self._leave(ch, conference)
            ch.conference = None
            ch.role = ""
            ch.family = "cust"
            task = asyncio.get_running_loop().create_task(self._settle(conference))
            self._settling.add(task)
            task.add_done_callback(self._settling.discard)
        ch.application = "playback"
        ch.playing = ch.channel_vars.get("dialer_abandon_message", "")
        ch.timers["playback_done"] = self._now_s() + PLAYBACK_S
        ch.deferred.append(("app", "hangup NORMAL_CLEARING"))

    def _leave(self, ch: Channel, conference: Conference) -> None:
        if conference.floor is ch:
            conference.floor = None
            values = self._member_values(conference, None, old_id="none", new_id="none")
            self.emit("conf.floor_none", None, values)
        conference.members.remove(ch)
        self.emit("kicked.del_member", ch, self._member_values(conference, ch))
        self.emit("kicked.exec_conference", ch, {"app_uuid": self._uuid()})

    async def _settle(self, conference: Conference) -> None:
        await self.sleep(CONFERENCE_SETTLE)
        if conference.members:
            if conference.floor is None:
                self._floor_change(conference, conference.members[0])
        elif self.conferences.get(conference.name) is conference:
            del self.conferences[conference.name]
            self.emit("conf.destroy", None, self._member_values(conference, None))

    async def _kicked(self, ch: Channel) -> None:
        """A kicked customer leaves the conference; nothing follows conference in its extension,
        so the leg hangs up (NORMAL_CLEARING, FreeSWITCH sends the BYE), as recorded."""
        conference = ch.conference
        assert conference is not None
        await self.sleep(APP_DELAY)
        if conference.floor is ch:
            conference.floor = None
            values = self._member_values(conference, None, old_id="none", new_id="none")
            self.emit("conf.floor_none", None, values)
        conference.members.remove(ch)
        self.emit("kicked.del_member", ch, self._member_values(conference, ch))
        self.emit("kicked.exec_conference", ch, {"app_uuid": self._uuid()})
        ch.hung_up = True
        ch.timers.clear()
        if self.on_channel_gone is not None:
            self.on_channel_gone(ch.uuid)
        ch.points["hangup"] = self.now_us()
        self._set_cause(ch, "NORMAL_CLEARING", 16, "200")
        self.emit("kicked.hangup", ch)
        self.emit("kicked.hangup_complete", ch)
        await self.sleep(CONFERENCE_SETTLE)
        if conference.members:
            if conference.floor is None:
                self._floor_change(conference, conference.members[0])
        elif self.conferences.get(conference.name) is conference:
            del self.conferences[conference.name]
            self.emit("conf.destroy", None, self._member_values(conference, None))

    # -- hang-up ---------------------------------------------------------------------------

    async def _hangup(self, ch: Channel, cause: str, *, by_us: bool) -> None:
        ch.hung_up = True
        ch.timers.clear()
        if self.on_channel_gone is not None:
            self.on_channel_gone(ch.uuid)
        ch.points["hangup"] = self.now_us()
        self._set_cause(ch, cause, q850_of(cause), "200")
        family = ch.family
        if family == "amd":
            family = "stop" if ch.avmd_stopped_by_app else "beep" if ch.beep_detected else "amd"
        transform: Callable[[Headers], Headers] | None = None
        if by_us and family != "agent":
            transform = _as_killed
        elif not by_us and family == "agent":
            transform = _as_hung_up_by_callee
        self.emit(f"{family}.hangup", ch, transform=transform)
        conference = ch.conference
        if conference is not None:
            if conference.floor is ch:
                conference.floor = None
                # recorded as Old-ID none / New-ID none, whoever held the floor
                values = self._member_values(conference, None, old_id="none", new_id="none")
                self.emit("conf.floor_none", None, values)
            conference.members.remove(ch)
            self.emit(f"{ch.role}.del_member", ch, self._member_values(conference, ch))
            self.emit(f"{ch.role}.exec_conference", ch, {"app_uuid": self._uuid()}, transform=transform)
        else:
            self.emit(f"{family}.exec_park", ch, {"app_uuid": self._uuid()}, transform=transform)
        self.emit(f"{family}.hangup_complete", ch, transform=transform)
        if conference is not None:
            await self.sleep(CONFERENCE_SETTLE)
            if conference.members:
                if conference.floor is None:
                    self._floor_change(conference, conference.members[0])
            elif self.conferences.get(conference.name) is conference:
                del self.conferences[conference.name]
                self.emit("conf.destroy", None, self._member_values(conference, None))

    # -- what the API commands ask --------------------------------------------------------

    def find(self, uuid: str) -> Channel | None:
        ch = self.channels.get(uuid)
        return ch if ch is not None and not ch.hung_up else None

    def live_channels(self) -> list[LiveChannel]:
        return [
            LiveChannel(
                ch.uuid,
                ch.number,
                "answered" if ch.answered else "ringing",
                ch.application,
                ch.points["created"] // 1_000_000,
            )
            for ch in self.channels.values()
            if not ch.hung_up
        ]

    async def shutdown_calls(self, cause: str = "SYSTEM_SHUTDOWN") -> None:
        """``fsctl shutdown``: every channel hangs up at once with ``cause``, as recorded.

        The CHANNEL_HANGUP of every channel comes first (within a millisecond),
        then each channel's end: its application's CHANNEL_EXECUTE_COMPLETE and
        CHANNEL_HANGUP_COMPLETE (conference members leave with del-member), and
        a ringing call's BACKGROUND_JOB ``-ERR <cause>``; the empty conferences
        are destroyed 20 ms later.  Answered legs say ``send_bye``, ringing ones
        ``send_cancel`` (487).
        """
        live = [ch for ch in self.channels.values() if not ch.hung_up]
        for ch in live:
            if ch.task is not None and ch.task is not asyncio.current_task():
                ch.task.cancel()
        for ch in live:
            ch.hung_up = True
            ch.timers.clear()
            if self.on_channel_gone is not None:
                self.on_channel_gone(ch.uuid)
            ch.points["hangup"] = self.now_us()
            if ch.answered:
                self._set_cause(ch, cause, q850_of(cause), "200")
                self.emit(f"{self._end_family(ch)}.hangup", ch, transform=_killed_unless_agent(ch))
            else:
                self._set_cause(ch, cause, q850_of(cause), "487", "CANCEL")
                ch.points["profile"] = ch.points["created"]
                self.emit("ring.hangup", ch)
        emptied: list[Conference] = []
        for ch in sorted(live, key=lambda c: c.answered):  # the ringing ones end first, as recorded
            transform = _killed_unless_agent(ch)
            if not ch.answered:
                self.emit("ring.hangup_complete", ch)
                continue
            conference = ch.conference
            if conference is not None:
                if conference.floor is ch:
                    conference.floor = None
                    values = self._member_values(conference, None, old_id="none", new_id="none")
                    self.emit("conf.floor_none", None, values)
                conference.members.remove(ch)
                self.emit(f"{ch.role}.del_member", ch, self._member_values(conference, ch))
                self.emit(f"{ch.role}.exec_conference", ch, {"app_uuid": self._uuid()}, transform=transform)
                if not conference.members:
                    emptied.append(conference)
            else:
                family = self._end_family(ch)
                self.emit(f"{family}.exec_park", ch, {"app_uuid": self._uuid()}, transform=transform)
            self.emit(f"{self._end_family(ch)}.hangup_complete", ch, transform=transform)
        for ch in live:
            if not ch.answered:
                self.job_done(ch, f"-ERR {cause}\n")
            self.channels.pop(ch.uuid, None)
        await self.sleep(CONFERENCE_SETTLE)
        for conference in emptied:
            if self.conferences.get(conference.name) is conference:
                del self.conferences[conference.name]
                self.emit("conf.destroy", None, self._member_values(conference, None))

    def _end_family(self, ch: Channel) -> str:
        if ch.family == "amd":
            return "stop" if ch.avmd_stopped_by_app else "beep" if ch.beep_detected else "amd"
        return ch.family

    def shutdown(self) -> None:
        """Forget every call at once, as a killed process does."""
        for ch in list(self.channels.values()):
            if ch.task is not None:
                ch.task.cancel()
            if not ch.result.done():
                ch.result.set_result("-ERR SYSTEM_SHUTDOWN\n")
        self.channels.clear()
        self.conferences.clear()


def _as_application(headers: Headers, app: str, data: str, response: str) -> Headers:
    """CHANNEL_EXECUTE_COMPLETE of an application the recordings do not have (playback),
    shaped like the recorded avmd_start one."""
    out: Headers = []
    for k, v in headers:
        if k == "variable_current_application":
            out.append((k, app))
        elif k == "Application":
            out.extend([(k, app), ("Application-Data", url_encode(data))])
        elif k == "Application-Response":
            out.append((k, response))
        else:
            out.append((k, v))
    return out


_DIRECTION_HEADERS = frozenset(
    {
        "Call-Direction",
        "Presence-Call-Direction",
        "Caller-Direction",
        "Caller-Logical-Direction",
        "variable_direction",
    }
)


def _as_inbound(headers: Headers, ch: Channel) -> Headers:
    """A recorded originate's event told of a channel that called in (the agent's login call):
    inbound, to 9<id> in context dialer.  No capture of an inbound call exists."""
    out: Headers = []
    for k, v in headers:
        if k in _DIRECTION_HEADERS and v == "outbound":
            out.append((k, "inbound"))
        elif k == "variable_is_outbound":
            continue
        elif k == "Caller-Destination-Number" and v == ch.number:
            out.append((k, f"9{ch.login_agent}"))
        elif k == "Caller-Context" and v == "default":
            out.append((k, "dialer"))
        else:
            out.append((k, v))
    return out


def _killed_unless_agent(ch: Channel) -> Callable[[Headers], Headers] | None:
    """The switch ended the call: the agent templates were recorded that way already."""
    return None if ch.family == "agent" else _as_killed


def _as_killed(headers: Headers) -> Headers:
    """A hang-up we asked for (uuid_kill): no BYE was received, FreeSWITCH sent it.

    The recorded events of such calls carry no sip_term_status and say
    ``send_bye`` only in CHANNEL_HANGUP_COMPLETE, after the CDR durations.
    """
    out = [(k, v) for k, v in headers if k not in BYE_VARIABLES and k != DISPOSITION]
    if headers and headers[0] == ("Event-Name", "CHANNEL_HANGUP_COMPLETE"):
        at = next((i + 1 for i, (k, _) in enumerate(out) if k == "variable_flow_billusec"), len(out))
        out.insert(at, (DISPOSITION, "send_bye"))
    return out


def _as_hung_up_by_callee(headers: Headers) -> Headers:
    """The far end's BYE on a template recorded with uuid_kill: the BYE variables come when the BYE does."""
    out = [(k, v) for k, v in headers if k != DISPOSITION]
    bye = [
        ("variable_sip_term_status", "200"),
        ("variable_proto_specific_hangup_cause", "sip%3A200"),
        ("variable_sip_term_cause", "16"),
    ]
    name = headers[0][1] if headers else ""
    if name == "CHANNEL_HANGUP":
        at = max((i + 1 for i, (k, _) in enumerate(out) if k.startswith("variable_")), default=len(out))
        return out[:at] + bye + out[at:]
    bye.append((DISPOSITION, "recv_bye"))
    anchor = "Application" if name == "CHANNEL_EXECUTE_COMPLETE" else "variable_hangup_cause"
    at = next((i for i, (k, _) in enumerate(out) if k == anchor), len(out))
    return out[:at] + bye + out[at:]
