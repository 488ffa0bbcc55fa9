"""FreeSWITCH behind ``telephony.base.Pbx``: originate, hang up, connect to an agent over ESL.

Each attempt is placed as::

    bgapi originate {origination_uuid=<attempt>,originate_timeout=<s>,ignore_early_media=true,
                     origination_caller_id_number=..,origination_caller_id_name=..,
                     dialer_attempt=<attempt>,dialer_campaign=..,dialer_amd=true|false}
                    <dial string> dialer_answered XML dialer
    Job-UUID: <attempt>-job

so the channel's Unique-ID is the attempt id and the BACKGROUND_JOB is ours
by its Job-UUID.  The ``dialer_answered`` extension (config/freeswitch/)
starts avmd when ``dialer_amd=true`` and parks the call; on CHANNEL_PARK of
an answered attempt the ``AnswerRouter`` decides at once (a person never waits
for a beep), and the decision runs as ``uuid_transfer`` (agent conference),
``sendmsg`` playback + hangup (abandon / machine message) or ``uuid_kill``.

avmd only hears beeps, and a voicemail greeting ends in its beep seconds after
the answer.  So it keeps listening on the customer's leg for ``amd_window_s``
after the answer, the customer in the agent's conference by then: a beep heard
in that window is ``AmdDetected(MACHINE, "beep 1000 Hz")`` for the connected
call (the runtime takes the agent out and ends the call as a machine); at the
end of the window it is ``AmdDetected(PERSON, "no beep within N s")`` and avmd
is stopped.

A connect counts when FreeSWITCH says so: ``Connected`` on the customer's
conference::maintenance ``add-member`` in ``agent_<id>``.  When the move fails
and the customer is still there (an agent whose phone leg is no longer in its
conference, a refused transfer) the router is asked again
(``on_connect_failed``) and its decision carried out; when the customer is gone
(``-ERR No such channel!``, a hang-up before joining) it is the event
``ConnectFailed(customer_gone=True)``.

Agent legs (``login_agent``'s, or any other channel in an ``agent_<id>``
conference) are followed through the conference events: when one leaves its
conference or hangs up, ``AgentLegEnded`` goes out at once.  At every
(re)connect and at each login the agent conferences are listed
(``show channels``): legs of an agent logged in here that are not its current
leg are hung up before a customer can be sent to them; others are adopted.

An agent may also log in from the phone: dialing ``9<id>`` (the login
extension, telephony/freeswitch/agent_login.py) parks the leg with the typed
PIN; the runtime's ``PhoneLogin`` checks it and the leg is moved into
``agent_<id>`` and followed as that agent's current leg.

An originate is never re-sent.  After a reconnect the live channels
(``show channels as json``) are compared with the attempts in flight: a
missing unanswered one ends as ``Failed(LOST)``, a missing answered one as
``HungUp``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import re
import time
import uuid as uuidlib
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from dataclasses import dataclass, fields
from typing import Any

from telephony.base import (
    Q850,
    ActionTimeout,
    AgentLegEnded,
    AmdDetected,
    AmdResult,
    AnswerDecision,
    Answered,
    AnsweredCall,
    AnswerRouter,
    CallEvent,
    Connected,
    ConnectFailed,
    ConnectToAgent,
    Failed,
    HangupCall,
    HungUp,
    OriginateRequest,
    PbxError,
    PbxUnavailable,
    PhoneLogin,
    PlayMessageThenHangup,
    mask_number,
)
from telephony.freeswitch.agent_login import (
    AGENT_VARIABLE,
    MAX_TRIES,
    PIN_VARIABLE,
    PROMPT_REFUSED,
    LoginRequest,
    login_extension,
    login_request,
)
from telephony.freeswitch.client import (
    ConnectionDown,
    ConnectionUp,
    EslClient,
    EslClientSettings,
    EslItem,
    EslReplyLost,
    events_for,
)
from telephony.freeswitch.protocol import EslEvent, EslFrame
from telephony.freeswitch.tracker import FreeSwitchCallTracker, cause_code
from telephony.supervision import MonitorMode, MonitorRefused

log = logging.getLogger(__name__)

# What may go inside the {var=value,...} block or be a word of a command.
# Commas, braces, quotes, spaces and line breaks would end a value or the
# block, or add variables of the caller's choosing: refused, never escaped.
_SAFE_VALUE = re.compile(r"^[\w.+@:/#*-]*$")
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")
_SAFE_DIAL = re.compile(r"^[\w.+@:/#*;=\[\]-]+$")
# A customer whose move to an agent failed is offered again at most this many times.
MAX_CONNECT_ROUNDS = 3


@dataclass(frozen=True, slots=True)
class FreeSwitchSettings:
    """How to reach and drive one FreeSWITCH.  Built once from the ``[freeswitch]`` config table."""

    host: str = "127.0.0.1"
    port: int = 8021
    password: str = ""  # event_socket.conf.xml "password"; never logged
    action_timeout_s: float = 5.0  # every api / bgapi / sendmsg reply
    connect_timeout_s: float = 5.0
    reconnect_initial_s: float = 0.5
    reconnect_max_s: float = 30.0
    liveness_interval_s: float = 10.0
    context: str = "dialer"  # dialplan context of config/freeswitch/dialplan/dialer.xml
    answer_extension: str = "dialer_answered"  # runs avmd_start when dialer_amd=true, then park
    # Extension for attempts that ask for detection; the shipped dialplan needs no second one
    # (it reads dialer_amd), the lab dialplan of the captures uses "amd".
    amd_extension: str = "dialer_answered"
    agent_extension_prefix: str = "agent_"  # agent_<id>: conference agent_<id>@agent
    amd_variable: str | None = None  # channel variable of a person/machine classifier, if any
    # With amd on: how long avmd keeps listening on the customer's leg after the answer (the
    # call is routed at once all the same); a beep in that time turns the call into a machine.
    # 0: avmd listens until the call ends.
    amd_window_s: float = 8.0
    # An answered call that never reaches park (a dialplan that does not park) is routed anyway
    # after this long, rather than left in silence; 0 turns the safety net off.
    park_timeout_s: float = 5.0
    agent_ring_timeout_s: int = 30
    agent_caller_id_number: str = "0000"
    agent_caller_id_name: str = "Dialer"
    message_extension: str = "wav"  # playback file = <message>.<ext> unless it has one
    # A call already in an agent's conference is moved here to hear a message (it plays
    # ${dialer_abandon_message}, then hangs up: config/freeswitch/dialplan/dialer.xml).
    abandon_extension: str = "dialer_abandon"

    def __post_init__(self) -> None:
        problems = []
        if not self.password:
            problems.append("password is empty: set [freeswitch] password (event_socket.conf.xml)")
        if not 0 < self.port < 65536:
            problems.append(f"port {self.port} is not a TCP port")
        if self.action_timeout_s <= 0:
            problems.append("action_timeout_s must be > 0")
        if self.amd_window_s < 0:
            problems.append("amd_window_s must be >= 0")
        if self.park_timeout_s < 0:
            problems.append("park_timeout_s must be >= 0")
        for name in (
            "context",
            "answer_extension",
            "amd_extension",
            "agent_extension_prefix",
            "abandon_extension",
        ):
            if not re.fullmatch(r"[A-Za-z0-9_]+", getattr(self, name)):
                problems.append(f"{name} {getattr(self, name)!r} must be letters, digits or _")
        if self.amd_variable is not None and not re.fullmatch(r"[A-Za-z0-9_]+", self.amd_variable):
            problems.append(f"amd_variable {self.amd_variable!r} must be letters, digits or _")
        if problems:
            raise ValueError("invalid [freeswitch] settings: " + "; ".join(problems))

    def __repr__(self) -> str:  # the password stays out of logs
        return f"FreeSwitchSettings(host={self.host!r}, port={self.port}, context={self.context!r})"

    @classmethod
    def option_names(cls) -> frozenset[str]:
        """Every key the adapter takes (what ``[pbx.<name>]`` must be able to set)."""
        return frozenset(f.name for f in fields(cls))

    @classmethod
    def from_options(cls, options: Mapping[str, object]) -> FreeSwitchSettings:
        """Settings from config keys already type-checked by the settings loader."""
        unknown = sorted(set(options) - cls.option_names())
        if unknown:
            raise ValueError(f"invalid [freeswitch] settings: unknown key(s) {', '.join(unknown)}")
        return cls(**options)  # type: ignore[arg-type]


def cause_name(cause: int) -> str:
    try:
        return Q850(cause).name
    except ValueError:
        return "NORMAL_CLEARING"


def _value(name: str, value: str) -> str:
    if not _SAFE_VALUE.match(value):
        raise PbxError(
            f"originate variable {name}={value!r} has a character that would break the variable block "
            "(space, comma, brace, quote or line break); fix the campaign setting"
        )
    return value


def _ident(what: str, value: str) -> str:
    if not _SAFE_ID.match(value):
        raise PbxError(f"{what} {value!r} must be letters, digits, '.', ':', '_' or '-' (at most 100)")
    return value


def originate_command(
    request: OriginateRequest, settings: FreeSwitchSettings, extension: str | None = None
) -> str:
    """The ``originate`` argument line for one attempt (without ``bgapi``).

    The answered call goes to ``extension`` (default: the answer extension)
    in the dialer context.
    """
    attempt = _ident("attempt id", request.attempt_id)
    if not _SAFE_DIAL.match(request.dial_string) or "," in request.dial_string:
        raise PbxError(
            f"dial string for attempt {attempt} has a space, comma, brace or line break; "
            "fix the campaign's dial-string template"
        )
    variables: dict[str, str] = {
        "origination_uuid": attempt,
        "originate_timeout": str(max(1, math.ceil(request.ring_timeout_s))),
        "ignore_early_media": "true",
        "origination_caller_id_number": request.caller_id_number,
        "origination_caller_id_name": request.caller_id_name or request.caller_id_number,
        "dialer_attempt": attempt,
        "dialer_campaign": request.campaign_id,
        "dialer_amd": "true" if request.amd else "false",
    }
    for name, value in request.variables.items():
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,63}", name) or name in variables:
            raise PbxError(f"originate variable name {name!r} is not allowed")
        variables[name] = value
    block = ",".join(f"{k}={_value(k, v)}" for k, v in variables.items())
    if extension is None:
        extension = settings.amd_extension if request.amd else settings.answer_extension
    return f"originate {{{block}}}{request.dial_string} {extension} XML {settings.context}"


def parse_show_channels(text: str) -> dict[str, dict[str, str]]:
    """``show channels as json`` -> {uuid: row}.  Raises PbxError when it is not that."""
    text = text.strip()
    if not text.startswith("{"):
        raise PbxError(f"FreeSWITCH 'show channels as json' failed: {text[:80]!r}")
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise PbxError(f"FreeSWITCH 'show channels as json' is not JSON: {exc}") from None
    rows = data.get("rows") or []
    return {
        str(r["uuid"]): {k: str(v) for k, v in r.items()}
        for r in rows
        if isinstance(r, dict) and r.get("uuid")
    }


def conference_agent(row_or_name: str, prefix: str) -> str | None:
    """The agent id of ``agent_<id>`` / ``agent_<id>@profile`` (a conference name), else None."""
    name = row_or_name.split("@", 1)[0]
    if not name.startswith(prefix):
        return None
    agent = name[len(prefix) :]
    return agent if _SAFE_ID.match(agent) else None


@dataclass(slots=True)
class _Live:
    """Adapter-side facts about an attempt that the tracker does not need."""

    connection: int  # the client connection it was sent on
    amd: bool
    agent_leg: bool = False
    agent: str = ""  # agent legs: whose leg it is
    routed: bool = False
    call: AnsweredCall | None = None  # what the router was told (asked again on a failed connect)
    connecting_to: str | None = None  # agent the customer was sent to, until add-member
    connected_to: str | None = None  # agent whose conference the customer joined
    window: asyncio.TimerHandle | None = None  # avmd listening window after the answer
    park_timer: asyncio.TimerHandle | None = None  # answered, CHANNEL_PARK still to come

    def cancel_timers(self) -> None:
        for timer in (self.window, self.park_timer):
            if timer is not None:
                timer.cancel()
        self.window = self.park_timer = None


class FreeSwitchPbx:
    """``telephony.base.Pbx`` over one inbound ESL connection."""

    name = "freeswitch"

    def __init__(self, settings: FreeSwitchSettings, *, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self._clock = clock
        self.tracker = FreeSwitchCallTracker(amd_variable=settings.amd_variable)
        client_settings = EslClientSettings(
            host=settings.host,
            port=settings.port,
            password=settings.password,
            events=events_for(),
            command_timeout_s=settings.action_timeout_s,
            connect_timeout_s=settings.connect_timeout_s,
            reconnect_initial_s=settings.reconnect_initial_s,
            reconnect_max_s=settings.reconnect_max_s,
            liveness_interval_s=settings.liveness_interval_s,
        )
        self.client = EslClient(client_settings, self._on_item, clock=clock)
        self._events: asyncio.Queue[CallEvent] = asyncio.Queue()
        self._live: dict[str, _Live] = {}
        self._router: AnswerRouter | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        # Agent seats.  _legs: every live agent leg we know (ours from login_agent, or adopted from
        # the conference events) -> agent id; _seats: agent -> legs now in its conference (an agent
        # present here was seen at least once, so an empty set means "nobody to talk to");
        # _current: the leg login_agent made last for each agent; _clearing: stale legs we hang up.
        self._legs: dict[str, str] = {}
        self._seats: dict[str, set[str]] = {}
        self._current: dict[str, str] = {}
        self._clearing: set[str] = set()
        self._phone_login: PhoneLogin | None = None
        self._login_tries: dict[str, int] = {}  # login leg -> PINs refused so far
        self._logins_running: set[str] = set()
        self.phone_logins_accepted = 0
        self.phone_logins_refused = 0
        self.router_errors = 0
        self.action_errors = 0
        self.lost_attempts = 0
        self.stale_legs_cleared = 0

    # -- Pbx ----------------------------------------------------------------

    async def start(self) -> None:
        await self.client.start()
        await self.client.wait_connected(self.settings.connect_timeout_s)

    async def stop(self) -> None:
        for live in self._live.values():
            live.cancel_timers()
        await self.client.stop()
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    @property
    def connected(self) -> bool:
        return self.client.connected

    async def events(self) -> AsyncIterator[CallEvent]:
        while True:
            yield await self._events.get()

    def set_answer_router(self, router: AnswerRouter) -> None:
        self._router = router

    def set_phone_login(self, login: PhoneLogin) -> None:
        """Who checks the PIN of an agent who dialed the login extension ``9<id>``."""
        self._phone_login = login

    async def originate(self, request: OriginateRequest) -> None:
        command = originate_command(request, self.settings)
        attempt = request.attempt_id
        if attempt in self._live or self.tracker.is_finished(attempt):
            raise PbxError(f"attempt {attempt} was already originated; an attempt is dialed once")
        if not self.client.connected:
            raise PbxUnavailable(f"not connected to FreeSWITCH: attempt {attempt} not dialed")
        job = f"{attempt}-job"
        self._register(attempt, job, _Live(connection=self.client.connections, amd=request.amd))
        log.info("originate attempt=%s number=%s", attempt, mask_number(request.number))
        try:
            await self.client.bgapi(command, job)
        except (EslReplyLost, ActionTimeout) as exc:
            # Written, reply lost: it may be ringing.  Not re-sent; the reconnect
            # reconciliation (or its own events) will end it.
            log.warning("attempt %s: originate sent but not confirmed (%s); reconciling later", attempt, exc)
        except PbxError:
            # Refused or never written: nothing is ringing, the caller records the failure.
            self.tracker.mark_lost(attempt, self._clock())
            self._live.pop(attempt, None)
            raise

    async def hangup(self, attempt_id: str, cause: int = Q850.NORMAL_CLEARING) -> None:
        attempt = _ident("attempt id", attempt_id)
        self.tracker.note_kill_requested(attempt)
        reply = await self.client.api(f"uuid_kill {attempt} {cause_name(cause)}")
        if not reply.startswith("+OK"):
            if "No such channel" in reply:
                log.info("hangup %s: the call had already ended", attempt)
                return
            raise PbxError(f"FreeSWITCH could not hang up attempt {attempt}: {reply.strip()}")

    async def connect_to_agent(self, attempt_id: str, agent_id: str) -> None:
        """Move the customer into ``agent_<id>``; ``Connected`` follows when it has joined."""
        reason, _ = await self._move(attempt_id, agent_id)
        if reason is not None:
            raise PbxError(f"FreeSWITCH could not move attempt {attempt_id} to agent {agent_id}: {reason}")

    async def _move(self, attempt_id: str, agent_id: str, announcement: str = "") -> tuple[str | None, bool]:
        """``uuid_transfer`` into the agent's conference: (why it failed or None, customer still there).

        With an ``announcement`` the parked session plays it, then runs the ``transfer`` application
        (two ``sendmsg`` with event-lock, run in order): a ``uuid_transfer`` would cut the message short.
        """
        attempt = _ident("attempt id", attempt_id)
        agent = _ident("agent id", agent_id)
        s = self.settings
        conference = f"{s.agent_extension_prefix}{agent}"
        seat = self._seats.get(agent)
        if seat is not None and not seat:
            return f"agent {agent} has no phone leg in conference {conference}", True
        live = self._live.get(attempt)
        if live is not None:
            live.connecting_to = agent
        if announcement:
            try:
                sound = self._sound(announcement)
                await self.client.sendmsg_execute(attempt, "playback", sound, event_lock=True)
                await self.client.sendmsg_execute(
                    attempt, "transfer", f"{conference} XML {s.context}", event_lock=True
                )
            except PbxError as exc:
                if live is not None:
                    live.connecting_to = None
                return str(exc), "invalid session id" not in str(exc)
            return None, True
        reply = await self.client.api(f"uuid_transfer {attempt} {conference} XML {s.context}")
        if reply.startswith("+OK"):
            return None, True
        if live is not None:
            live.connecting_to = None
        gone = "No such channel" in reply
        return reply.strip(), not gone

    async def play_then_hangup(self, attempt_id: str, message: str) -> None:
        """Two ``sendmsg execute`` with event-lock: ``playback`` then ``hangup``, run in order on the channel.

        sendmsg is what FreeSWITCH's own ESL clients use to drive a parked
        channel; the parked session picks the messages up and runs them one
        after the other, so the hang-up waits for the end of the message.  A
        customer already in an agent's conference is not parked (a message
        sent there would wait for the conference to end): it is moved out to
        the ``abandon_extension`` with the message in ``dialer_abandon_message``
        (the voicemail that beeped after the connect gets the machine message).
        """
        attempt = _ident("attempt id", attempt_id)
        if not re.fullmatch(r"[\w./-]+", message) or ".." in message:
            raise PbxError(f"message {message!r} must be a sound file name (letters, digits, '/', '.', '-')")
        path = (
            message if "." in message.rsplit("/", 1)[-1] else f"{message}.{self.settings.message_extension}"
        )
        live = self._live.get(attempt)
        if live is not None and (live.connected_to is not None or live.connecting_to is not None):
            s = self.settings
            for command in (
                f"uuid_setvar {attempt} dialer_abandon_message {path}",
                f"uuid_transfer {attempt} {s.abandon_extension} XML {s.context}",
            ):
                reply = await self.client.api(command)
                if not reply.startswith("+OK"):
                    raise PbxError(
                        f"FreeSWITCH refused {command.split()[0]} for attempt {attempt}: {reply.strip()}"
                    )
            return
        await self.client.sendmsg_execute(attempt, "playback", path, event_lock=True)
        await self.client.sendmsg_execute(attempt, "hangup", "NORMAL_CLEARING", event_lock=True)

    def _sound(self, message: str) -> str:
        """The file ``playback`` plays for a message name (the configured extension unless it has one)."""
        if not re.fullmatch(r"[\w./-]+", message) or ".." in message:
            raise PbxError(f"message {message!r} must be a sound file name (letters, digits, '/', '.', '-')")
        extension = self.settings.message_extension
        return message if "." in message.rsplit("/", 1)[-1] else f"{message}.{extension}"

    async def has_sound(self, name: str) -> bool | None:
        """Whether FreeSWITCH has the file ``play_then_hangup(name)`` plays; None: cannot tell.

        Asked over ESL with the core ``file_exists`` API (mod_commands: ``true``/``false``).  A
        relative name is looked for where playback looks: under the global ``sound_prefix``, else
        ``sounds_dir`` (``global_getvar``); a dialplan that sets its own ``sound_prefix`` is not seen.
        """
        if not re.fullmatch(r"[\w./-]+", name) or ".." in name:
            return False  # play_then_hangup refuses it
        path = name if "." in name.rsplit("/", 1)[-1] else f"{name}.{self.settings.message_extension}"
        try:
            if not path.startswith("/"):
                prefix = (await self.client.api("global_getvar sound_prefix")).strip()
                if not prefix.startswith("/"):
                    prefix = (await self.client.api("global_getvar sounds_dir")).strip()
                if not prefix.startswith("/"):
                    return None
                path = f"{prefix.rstrip('/')}/{path}"
            reply = (await self.client.api(f"file_exists {path}")).strip()
        except PbxError as exc:
            log.warning("cannot ask FreeSWITCH whether %s exists: %s", path, exc)
            return None
        return {"true": True, "false": False}.get(reply)

    async def login_agent(self, agent_id: str, endpoint: str) -> str:
        """Call the agent's softphone into its conference; returns the agent leg's id.

        Any other leg already in the agent's conference (left by a crash or a
        stop) is hung up first, so a customer never lands with a dead phone.
        The leg's own events (Answered, HungUp / Failed) come on ``events()``
        under that id, and ``AgentLegEnded`` when it leaves.
        """
        agent = _ident("agent id", agent_id)
        s = self.settings
        leg = f"agent-{agent}-{uuidlib.uuid4().hex[:12]}"
        request = OriginateRequest(
            attempt_id=leg,
            number="",
            dial_string=endpoint,
            caller_id_number=s.agent_caller_id_number,
            caller_id_name=s.agent_caller_id_name,
            ring_timeout_s=s.agent_ring_timeout_s,
            variables={"dialer_agent": agent},
        )
        command = originate_command(request, s, f"{s.agent_extension_prefix}{agent}")
        if not self.client.connected:
            raise PbxUnavailable(f"not connected to FreeSWITCH: agent {agent} not called")
        await self._seat(agent, leg)
        self._register(
            leg,
            f"{leg}-job",
            _Live(connection=self.client.connections, amd=False, agent_leg=True, agent=agent),
        )
        try:
            await self.client.bgapi(command, f"{leg}-job")
        except (EslReplyLost, ActionTimeout):
            log.warning("agent %s: login call sent but not confirmed; reconciling later", agent)
        except PbxError:
            self.tracker.mark_lost(leg, self._clock())
            self._live.pop(leg, None)
            self._legs.pop(leg, None)
            raise
        return leg

    async def _seat(self, agent: str, leg: str) -> None:
        """Make ``leg`` the agent's current leg; the agent's other legs are hung up first."""
        stale = [u for u, a in self._legs.items() if a == agent and u != leg]
        try:
            channels = await self._show_channels()
        except PbxError as exc:
            log.warning("agent %s: cannot list FreeSWITCH channels before login (%s)", agent, exc)
        else:
            rows = self._agent_rows(channels)
            stale += [u for u, a in rows.items() if a == agent and u not in stale and u != leg]
        self._current[agent] = leg
        for uuid in stale:
            await self._clear_leg(uuid, agent)
        self._seats.setdefault(agent, set())
        self._legs[leg] = agent

    def _register(self, attempt: str, job: str, live: _Live) -> None:
        dropped = self.tracker.dropped_live
        self.tracker.register_originate(attempt, job, self._clock())
        self._live[attempt] = live
        if self.tracker.dropped_live != dropped:
            # the tracker was full and forgot its oldest call: forget it here too
            for gone in [a for a in self._live if self.tracker.attempt(a) is None]:
                self._live.pop(gone, None)

    async def live_attempts(self) -> set[str]:
        """Uuids of every live channel on the switch (ours are our attempt ids)."""
        return set(await self._show_channels())

    async def _show_channels(self) -> dict[str, dict[str, str]]:
        return parse_show_channels(await self.client.api("show channels as json"))

    # -- agent legs ---------------------------------------------------------

    def agent_legs(self, agent_id: str) -> frozenset[str]:
        """The agent's legs now in its conference, as the conference events tell."""
        return frozenset(self._seats.get(agent_id, ()))

    def _agent_rows(self, channels: dict[str, dict[str, str]]) -> dict[str, str]:
        """Channels in an agent conference that are not customers of ours: uuid -> agent id."""
        out: dict[str, str] = {}
        for uuid, row in channels.items():
            if row.get("application") != "conference":
                continue
            agent = conference_agent(row.get("application_data", ""), self.settings.agent_extension_prefix)
            live = self._live.get(uuid)
            if agent is not None and (live is None or live.agent_leg):
                out[uuid] = agent
        return out

    async def _clear_leg(self, uuid: str, agent: str) -> None:
        """Hang up a leg the agent no longer uses; it ends without ``AgentLegEnded``."""
        self._clearing.add(uuid)
        self._forget_leg(uuid)
        self.stale_legs_cleared += 1
        log.warning("agent %s: stale leg %s in its conference: hanging it up", agent, uuid)
        try:
            await self.hangup(uuid)
        except PbxError as exc:
            log.error("agent %s: cannot hang up stale leg %s: %s", agent, uuid, exc)

    def _forget_leg(self, uuid: str) -> str | None:
        agent = self._legs.pop(uuid, None)
        if agent is not None:
            self._seats.setdefault(agent, set()).discard(uuid)
        return agent

    def _leg_ended(self, uuid: str, at: float, cause: int, detail: str) -> None:
        agent = self._forget_leg(uuid)
        if agent is None or uuid in self._clearing:
            self._clearing.discard(uuid)
            return
        if self._current.get(agent) == uuid:
            del self._current[agent]
        log.warning("agent %s: phone leg %s ended (%s): out of dialing", agent, uuid, detail)
        self._events.put_nowait(AgentLegEnded(uuid, at, agent_id=agent, cause=cause, detail=detail))

    def _on_conference(self, event: EslEvent, at: float) -> None:
        action = event.get("Action")
        uuid = event.get("Unique-ID")
        if uuid is None or action not in ("add-member", "del-member"):
            return
        agent = conference_agent(event.get("Conference-Name") or "", self.settings.agent_extension_prefix)
        if agent is None:
            return
        live = self._live.get(uuid)
        customer = live is not None and not live.agent_leg
        if action == "add-member":
            if customer or uuid in self._clearing:
                return
            current = self._current.get(agent)
            if current is not None and uuid != current and uuid not in self._legs:
                # a second phone in the room of an agent seated here: it would share the customer
                self._spawn(self._clear_leg(uuid, agent), f"clear-leg-{uuid}")
                return
            self._legs[uuid] = agent
            self._seats.setdefault(agent, set()).add(uuid)
            return
        if customer or uuid not in self._legs:
            return
        name = event.get("Hangup-Cause") or ""
        code = (cause_code(name) or 0) if name else 0
        detail = f"hung up ({name})" if name else f"left conference {event.get('Conference-Name')}"
        self._leg_ended(uuid, at, code, detail)

    # -- events -------------------------------------------------------------

    async def _on_item(self, item: EslItem, at: float) -> None:
        if isinstance(item, EslFrame):
            for event in self.tracker.feed(item, at):
                self._publish(event)
            if not item.is_event:
                return
            esl = item.event
            name = esl.get("Event-Name")
            if name == "CHANNEL_PARK":
                uid = esl.get("Unique-ID")
                if uid is not None and uid not in self._live and esl.get(f"variable_{AGENT_VARIABLE}"):
                    self._on_login_park(uid, esl)
                elif uid is not None:
                    self._maybe_route(uid, at)
            elif name == "CUSTOM" and esl.get("Event-Subclass") == "conference::maintenance":
                self._on_conference(esl, at)
            elif name == "CHANNEL_HANGUP_COMPLETE":
                uid = esl.get("Unique-ID")
                if uid is not None and uid in self._legs:
                    cause = esl.get("Hangup-Cause") or ""
                    self._leg_ended(uid, at, cause_code(cause) or 0, f"hung up ({cause})")
                elif uid is not None:
                    self._clearing.discard(uid)
                if uid is not None:
                    self._login_tries.pop(uid, None)
        elif isinstance(item, ConnectionUp):
            await self._reconcile(item.at, item.connection)
        elif isinstance(item, ConnectionDown):
            log.warning("FreeSWITCH link down (%s): %d calls in flight", item.reason, len(self._live))

    # -- phone login (the login extension 9<id>) -----------------------------

    def _on_login_park(self, uuid: str, event: EslEvent) -> None:
        request = login_request(
            uuid, event.get(f"variable_{AGENT_VARIABLE}"), event.get(f"variable_{PIN_VARIABLE}")
        )
        if request is None:
            log.warning("login leg %s parked with an agent id that is not digits: ignored", uuid)
            return
        if uuid in self._logins_running or not _SAFE_ID.match(uuid):
            return
        self._logins_running.add(uuid)
        self._spawn(self._phone_login_leg(request), f"phone-login-{uuid}")

    async def _phone_login_leg(self, request: LoginRequest) -> None:
        try:
            await self._check_login(request)
        except PbxError as exc:
            self.action_errors += 1
            log.error("agent %s: phone login on leg %s failed: %s", request.agent_id, request.leg_id, exc)
            with contextlib.suppress(PbxError):
                await self.hangup(request.leg_id)
        finally:
            self._logins_running.discard(request.leg_id)

    async def _check_login(self, request: LoginRequest) -> None:
        """Ask the runtime about the PIN; seat and move the leg, or refuse (bounded retries)."""
        uuid, agent = request.leg_id, request.agent_id
        # the PIN leaves the channel at once: later events and the CDR would carry it
        with contextlib.suppress(PbxError):
            await self.client.api(f"uuid_setvar {uuid} {PIN_VARIABLE}")
        login = self._phone_login
        if login is None:
            problem: str | None = "the dialer is not taking phone logins"
        elif not request.pin:
            problem = "no PIN was typed"
        else:
            try:
                problem = await login.on_phone_login(agent, request.pin, uuid)
            except Exception:
                log.exception("agent %s: phone login check failed (leg %s)", agent, uuid)
                problem = "the login check failed"
        if problem is None:
            self.phone_logins_accepted += 1
            self._login_tries.pop(uuid, None)
            await self._seat(agent, uuid)
            s = self.settings
            reply = await self.client.api(
                f"uuid_transfer {uuid} {s.agent_extension_prefix}{agent} XML {s.context}"
            )
            if not reply.startswith("+OK"):
                # signed in with a leg that is already gone: the runtime takes the agent out
                self._leg_ended(uuid, self._clock(), 0, f"not moved to its conference: {reply.strip()}")
                return
            log.info("agent %s logged in from the phone (leg %s)", agent, uuid)
            return
        self.phone_logins_refused += 1
        tries = self._login_tries.get(uuid, 0) + 1
        self._login_tries[uuid] = tries
        log.warning(
            "agent %s: phone login %d/%d refused (leg %s): %s", agent, tries, MAX_TRIES, uuid, problem
        )
        await self.client.sendmsg_execute(uuid, "playback", PROMPT_REFUSED, event_lock=True)
        if tries < MAX_TRIES and login is not None:
            # back to the login extension: the PIN prompt again
            again = f"{login_extension(agent)} XML {self.settings.context}"
            await self.client.sendmsg_execute(uuid, "transfer", again, event_lock=True)
        else:
            await self.client.sendmsg_execute(uuid, "hangup", "NORMAL_CLEARING", event_lock=True)

    def _publish(self, event: CallEvent) -> None:
        attempt = event.attempt_id
        live = self._live.get(attempt)
        if live is not None and live.agent_leg:
            if isinstance(event, Connected):
                return  # the agent's own leg joining its room: not a customer's connect
            if isinstance(event, Failed | HungUp):
                self._live.pop(attempt, None)
                live.cancel_timers()
                detail = event.detail if isinstance(event, Failed) else f"hung up ({event.cause_text})"
                self._leg_ended(attempt, event.at, event.cause or 0, detail)
            self._events.put_nowait(event)
            return
        if live is not None:
            if isinstance(event, AmdDetected) and live.window is not None:
                live.window.cancel()
                live.window = None
            if isinstance(event, Connected):
                live.connecting_to = None
                live.connected_to = event.agent_id
            if isinstance(event, Answered):
                self._on_answered(attempt, live)
            if isinstance(event, HungUp) and live.connecting_to is not None:
                # sent to the agent, gone before it joined: the agent never had the call
                agent, live.connecting_to = live.connecting_to, None
                reason = "hung up before joining the agent"
                self._events.put_nowait(ConnectFailed(attempt, event.at, agent, reason, customer_gone=True))
        if isinstance(event, Failed | HungUp):
            done = self._live.pop(attempt, None)
            if done is not None:
                done.cancel_timers()
        self._events.put_nowait(event)

    def _on_answered(self, attempt: str, live: _Live) -> None:
        loop = asyncio.get_running_loop()
        if live.amd and self.settings.amd_window_s > 0:
            live.window = loop.call_later(self.settings.amd_window_s, self._window_over, attempt)
        if not live.routed and self.settings.park_timeout_s > 0:
            live.park_timer = loop.call_later(self.settings.park_timeout_s, self._park_overdue, attempt)

    def _window_over(self, attempt: str) -> None:
        """No beep while avmd listened: a person (as far as avmd can tell); avmd is stopped."""
        live = self._live.get(attempt)
        if live is None:
            return
        live.window = None
        window = self.settings.amd_window_s
        for event in self.tracker.note_amd(
            attempt, AmdResult.PERSON, f"no beep within {window:g} s", self._clock()
        ):
            self._publish(event)
        self._spawn(self._stop_avmd(attempt), f"avmd-stop-{attempt}")

    async def _stop_avmd(self, attempt: str) -> None:
        # api avmd <uuid> stop answers with a false "Beep-Status: DETECTED" (ignored by the tracker)
        try:
            await self.client.api(f"avmd {attempt} stop")
        except PbxError as exc:
            log.info("attempt %s: avmd not stopped (%s)", attempt, exc)

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _park_overdue(self, attempt: str) -> None:
        live = self._live.get(attempt)
        if live is None or live.routed:
            return
        live.park_timer = None
        log.warning(
            "attempt %s answered %g s ago but never parked: routing it now; check that the answer "
            "extension ends in park",
            attempt,
            self.settings.park_timeout_s,
        )
        self._maybe_route(attempt, self._clock())

    def _maybe_route(self, attempt: str, at: float) -> None:
        live = self._live.get(attempt)
        state = self.tracker.attempt(attempt)
        if live is None or state is None or live.agent_leg or live.routed:
            return
        if not state.answered:
            return
        if live.park_timer is not None:
            live.park_timer.cancel()
            live.park_timer = None
        self._route_now(attempt)

    def _route_now(self, attempt: str) -> None:
        """Ask the router at once: nobody waits for the beep window."""
        live = self._live.get(attempt)
        state = self.tracker.attempt(attempt)
        if live is None or state is None or live.routed:
            return
        live.routed = True
        if not live.amd:
            amd, detail = None, ""
        elif state.amd is not None:
            amd, detail = state.amd, state.amd_detail
        else:
            # avmd is still listening: a beep later comes as AmdDetected(MACHINE) for the call.
            window = self.settings.amd_window_s
            amd = AmdResult.UNKNOWN
            detail = f"avmd listening {window:g} s after answer" if window > 0 else "avmd listening"
        call = AnsweredCall(attempt, self._clock(), amd=amd, amd_detail=detail)
        live.call = call
        self._spawn(self._decide(call), f"answer-{attempt}")

    async def _ask(self, call: AnsweredCall, failed: tuple[str, str] | None) -> AnswerDecision:
        attempt = call.attempt_id
        if self._router is None:
            log.error("attempt %s answered but no answer router is set: hanging up", attempt)
            return HangupCall()
        try:
            if failed is None:
                return await self._router.on_answered(call)
            return await self._router.on_connect_failed(call, failed[0], failed[1])
        except Exception:
            self.router_errors += 1
            log.exception("answer router failed for attempt %s: hanging up", attempt)
            return HangupCall()

    async def _decide(self, call: AnsweredCall) -> None:
        attempt = call.attempt_id
        decision = await self._ask(call, None)
        prepared = False
        for _ in range(MAX_CONNECT_ROUNDS):
            try:
                if not isinstance(decision, ConnectToAgent):
                    await self._execute(attempt, decision)
                    return
                announcement = ""
                if not prepared:
                    prepared = True
                    await self._start_recording(attempt, decision)
                    announcement = decision.announcement
                reason, still_there = await self._move(attempt, decision.agent_id, announcement)
            except PbxError as exc:
                self.action_errors += 1
                log.error("attempt %s: %s failed (%s); hanging up", attempt, type(decision).__name__, exc)
                if not isinstance(decision, HangupCall):
                    with contextlib.suppress(PbxError):
                        await self.hangup(attempt)
                return
            if reason is None:
                return
            agent = decision.agent_id
            log.warning("attempt %s: not connected to agent %s: %s", attempt, agent, reason)
            if not still_there or attempt not in self._live:
                # nobody left to route: the runtime hears of it as an event
                self._publish(ConnectFailed(attempt, self._clock(), agent, reason, customer_gone=True))
                return
            # the customer is still held: the router hears of it by being asked again
            decision = await self._ask(call, (agent, reason))
        log.error("attempt %s: %d connects failed; hanging up", attempt, MAX_CONNECT_ROUNDS)
        with contextlib.suppress(PbxError):
            await self.hangup(attempt)

    async def _start_recording(self, attempt: str, decision: ConnectToAgent) -> None:
        """``uuid_record start`` (record_session) before the move: ``<attempt>.wav`` in recordings_dir.

        On demand: ``mask`` at once (silence in the file) until the agent asks.  A refused
        recording is logged; the customer still reaches the agent.
        """
        if not decision.record:
            return
        verbs = ("start", "mask") if decision.record_muted else ("start",)
        for verb in verbs:
            reply = await self.client.api(f"uuid_record {attempt} {verb} {attempt}.wav")
            if not reply.startswith("+OK"):
                log.error("attempt %s: FreeSWITCH refused uuid_record %s: %s", attempt, verb, reply.strip())
                if verb == "mask":  # never record unasked: a recording that cannot be muted is stopped
                    await self.client.api(f"uuid_record {attempt} stop {attempt}.wav")
                return
        log.info("attempt %s: recording to %s.wav%s", attempt, attempt, " (masked)" * decision.record_muted)

    async def set_recording_muted(self, attempt_id: str, muted: bool) -> None:
        """``uuid_record mask|unmask``: silence or resume the call's recording."""
        attempt = _ident("attempt id", attempt_id)
        verb = "mask" if muted else "unmask"
        reply = await self.client.api(f"uuid_record {attempt} {verb} {attempt}.wav")
        if not reply.startswith("+OK"):
            raise PbxError(f"FreeSWITCH refused uuid_record {verb} for attempt {attempt}: {reply.strip()}")

    async def monitor(self, agent_id: str, mode: MonitorMode, endpoint: str) -> str:
        """Originate the supervisor's phone into ``eavesdrop`` on the agent's leg.

        Whisper: ``eavesdrop_whisper_aleg=true`` (the agent's leg hears the supervisor);
        barge: ``three_way`` (both hear).
        """
        agent = _ident("agent id", agent_id)
        target = self._current.get(agent)
        if target is None or target not in self._seats.get(agent, set()):
            raise MonitorRefused(
                f"agent {agent} has no phone leg in its conference on FreeSWITCH {self.name}"
            )
        if not endpoint or not re.fullmatch(r"[\w./@:+-]+", endpoint):
            raise MonitorRefused(f"supervisor phone {endpoint!r} is not a dial string (e.g. user/2001)")
        leg = f"spy-{agent}-{uuidlib.uuid4().hex[:12]}"
        variables = f"origination_uuid={leg},origination_caller_id_name={mode.value}"
        if mode is MonitorMode.WHISPER:
            variables += ",eavesdrop_whisper_aleg=true"
        app = f"three_way({target})" if mode is MonitorMode.BARGE else f"eavesdrop({target})"
        reply = await self.client.api(f"originate {{{variables}}}{endpoint} &{app}")
        if not reply.startswith("+OK"):
            raise MonitorRefused(
                f"FreeSWITCH {self.name} did not call the supervisor's phone: {reply.strip()}"
            )
        log.info("agent %s: supervisor %s leg %s", agent, mode.value, leg)
        return leg

    async def end_monitor(self, leg_id: str) -> None:
        leg = _ident("monitoring leg", leg_id)
        reply = await self.client.api(f"uuid_kill {leg}")
        if not reply.startswith("+OK") and "No such channel" not in reply:
            raise PbxError(f"FreeSWITCH did not hang up the supervisor's leg {leg}: {reply.strip()}")

    async def _execute(self, attempt: str, decision: AnswerDecision) -> None:
        if isinstance(decision, ConnectToAgent):
            await self.connect_to_agent(attempt, decision.agent_id)
        elif isinstance(decision, PlayMessageThenHangup):
            await self.play_then_hangup(attempt, decision.message)
        else:
            await self.hangup(attempt, decision.cause)

    async def _reconcile(self, at: float, connection: int) -> None:
        """After (re)connecting: end what the switch no longer has, never re-dial; sort out agent legs.

        Every attempt sent on an earlier connection is checked (one sent on
        this connection may not have its channel yet): a missing unanswered
        one is ``Failed(LOST)``, a missing answered one ``HungUp``.  Agent
        legs we knew that are gone end with ``AgentLegEnded``; legs in an
        agent conference that are not that agent's current leg are hung up
        when the agent is logged in here, adopted otherwise.
        """
        try:
            channels = await self._show_channels()
        except PbxError as exc:
            log.error(
                "cannot list FreeSWITCH channels after connecting (%s); will retry on the next one", exc
            )
            return
        stale = [a for a, live in self._live.items() if live.connection < connection]
        for attempt in stale:
            live = self._live.get(attempt)
            if live is None:
                continue
            row = channels.get(attempt)
            if row is None:
                for event in self.tracker.mark_lost(attempt, at):
                    self._publish(event)
                label = self.tracker.outcome_label(attempt)
                if label == "lost":
                    self.lost_attempts += 1
                log.warning("attempt %s: no channel after reconnect; ended as %s", attempt, label)
                continue
            live.connection = connection
            state = self.tracker.attempt(attempt)
            if state is not None and not state.answered and row.get("callstate") == "ACTIVE":
                for event in self.tracker.note_answered(attempt, at):
                    self._publish(event)
            if row.get("application") == "park":
                self._maybe_route(attempt, at)
        for uuid in [u for u in self._legs if u not in channels and u not in self._live]:
            self._leg_ended(uuid, at, 0, "gone after reconnect")
        for uuid, agent in self._agent_rows(channels).items():
            current = self._current.get(agent)
            if uuid in self._legs or uuid == current:
                self._legs[uuid] = agent
                self._seats.setdefault(agent, set()).add(uuid)
            elif current is not None:
                await self._clear_leg(uuid, agent)
            else:
                log.warning("agent %s: leg %s found in its conference; adopted", agent, uuid)
                self._legs[uuid] = agent
                self._seats.setdefault(agent, set()).add(uuid)
