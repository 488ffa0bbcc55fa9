"""``AsteriskPbx``: the dialer's ``Pbx`` on Asterisk, over AMI (calls) and FastAGI (answered calls).

Wiring, not rules: the call rules live in ``tracker.py``, the wire protocol in
``protocol.py`` / ``client.py`` / ``fastagi.py``.  This module builds the
actions, feeds AMI events to the tracker, queues the normalized events for the
runtime, and reconciles in-flight attempts whenever the AMI link comes back.

Never ``Application=AGI`` in an Originate: that needs the AMI ``system``
class, which our manager user must not hold.  Calls are originated into the
``dialer-answered`` context, whose dialplan calls our FastAGI server.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import re
import secrets
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from telephony.asterisk.agent_login import AgentLoginHandler
from telephony.asterisk.client import AmiActionError, AmiClient
from telephony.asterisk.fastagi import AnsweredHandler, FastAgiServer
from telephony.asterisk.protocol import AmiMessage, Header
from telephony.asterisk.settings import MIN_RING_TIMEOUT_S, AsteriskSettings
from telephony.asterisk.tracker import CallTracker, agent_of_bridge
from telephony.base import (
    Q850,
    ActionTimeout,
    AmdDetected,
    AnswerRouter,
    CallEvent,
    Connected,
    Failed,
    HungUp,
    OriginateRequest,
    PbxError,
    PbxUnavailable,
    PhoneLogin,
    mask_number,
)
from telephony.supervision import MonitorMode, MonitorRefused

log = logging.getLogger(__name__)

CONTEXT_ANSWERED = "dialer-answered"
CONTEXT_CONNECT = "dialer-connect"
CONTEXT_ABANDON = "dialer-abandon"
# The agent joins first, so the bridge takes the quiet profiles of config/asterisk/confbridge_dialer.conf.
AGENT_BRIDGE_DATA = "agent_{agent_id},dialer_agent_bridge,dialer_agent"

_ID = re.compile(r"^[A-Za-z0-9_.:+-]{1,120}$")  # ChannelId becomes the Uniqueid: keep it plain
_VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_EXTEN = re.compile(r"^[0-9A-Za-z_+-]{1,40}$")
_SOUND = re.compile(r"^[A-Za-z0-9_./-]{1,200}$")
_HOUSEKEEPING_S = 1.0
# File extensions of the formats Asterisk plays (format_*.so): Playback picks whichever is there.
_SOUND_FORMATS = ("wav", "WAV", "wav16", "gsm", "ulaw", "alaw", "sln", "sln16", "g722", "g729")


def _check(pattern: re.Pattern[str], value: str, what: str) -> str:
    if not pattern.match(value):
        raise PbxError(f"{what} {value!r} is not allowed here (letters, digits and _ . : + - only)")
    return value


class AsteriskPbx:
    """One Asterisk PBX behind the ``telephony.base.Pbx`` protocol."""

    def __init__(self, settings: AsteriskSettings, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.name = settings.name
        self._clock = clock
        self.tracker = CallTracker(grace_s=settings.tracker_grace_s)
        self.client = AmiClient(
            settings,
            on_event=self._on_ami_event,
            on_connected=self._on_link_up,
            on_disconnected=self._on_link_down,
            clock=clock,
        )
        self._router: AnswerRouter | None = None
        self.answered_handler = AnsweredHandler(
            lambda: self._router, settings.decision_timeout_s, on_event=self._emit, clock=clock
        )
        self.answered_handler.mute_recording = self._mute_new_recording
        self._spy_legs = itertools.count(1)
        self._phone_login: PhoneLogin | None = None
        self.agent_login_handler = AgentLoginHandler(lambda: self._phone_login)
        self.fastagi = FastAgiServer(
            {"answered": self.answered_handler, "agent-login": self.agent_login_handler},
            settings.fastagi_host,
            settings.fastagi_port,
            command_timeout_s=settings.agi_command_timeout_s,
        )
        self._events: asyncio.Queue[CallEvent | None] = asyncio.Queue()
        self._numbers: dict[str, str] = {}  # attempt -> masked number, for the log lines
        self._at_risk: set[str] = set()  # in flight when the link dropped: reconcile on the way back
        self._unconfirmed: dict[str, float] = {}  # originate not acknowledged: check after this time
        self._agent_legs = itertools.count(1)
        self._boot_tag = secrets.token_hex(3)
        self._housekeeper: asyncio.Task[None] | None = None
        self._link_lost_once = False
        self.reconciled_lost = 0

    # ------------------------------------------------------------------
    # Lifecycle

    async def start(self) -> None:
        """Listen for FastAGI first (answered calls must find us), then log in to AMI."""
        await self.fastagi.start()
        try:
            await self.client.connect()
        except BaseException:
            await self.fastagi.stop()
            await self.client.close()
            raise
        self._housekeeper = asyncio.create_task(self._housekeeping(), name="asterisk-housekeeping")

    async def stop(self) -> None:
        if self._housekeeper is not None:
            self._housekeeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._housekeeper
            self._housekeeper = None
        await self.client.close()
        await self.fastagi.stop()
        self._events.put_nowait(None)

    @property
    def connected(self) -> bool:
        return self.client.connected

    @property
    def fastagi_port(self) -> int:
        return self.fastagi.port

    async def events(self) -> AsyncIterator[CallEvent]:
        """Normalized call events, in arrival order, until ``stop()``."""
        while True:
            event = await self._events.get()
            if event is None:
                return
            yield event

    def set_answer_router(self, router: AnswerRouter) -> None:
        self._router = router

    def set_phone_login(self, login: PhoneLogin) -> None:
        """Who checks agents dialing the login extension (FastAGI ``agent-login``)."""
        self._phone_login = login

    # ------------------------------------------------------------------
    # Actions

    async def originate(self, request: OriginateRequest) -> None:
        attempt = _check(_ID, request.attempt_id, "attempt id")
        if request.ring_timeout_s < MIN_RING_TIMEOUT_S:
            raise PbxError(
                f"attempt {attempt}: ring timeout {request.ring_timeout_s:g} s is below "
                f"{MIN_RING_TIMEOUT_S:g} s; raise the campaign's ring timeout (people need time to answer)"
            )
        if not request.dial_string:
            raise PbxError(f"attempt {attempt}: empty dial string; check the campaign's dial-string template")
        if not self.client.connected:
            raise PbxUnavailable(f"attempt {attempt}: not connected to Asterisk; the call was not placed")
        name = request.caller_id_name.replace('"', "")
        variables = {
            "DIALER_ATTEMPT": attempt,
            "DIALER_CAMPAIGN": request.campaign_id,
            "DIALER_AMD": "1" if request.amd else "0",
        }
        for key, value in request.variables.items():
            _check(_VARIABLE_NAME, key, "channel variable name")
            if key in variables:
                raise PbxError(f"attempt {attempt}: variable {key} is set by the dialer itself")
            variables[key] = value
        for key, value in variables.items():
            if "," in value:  # Asterisk splits a Variable header on commas: the rest would become variables
                raise PbxError(f"attempt {attempt}: variable {key} holds a comma; remove it from the value")
        pairs: list[Header] = [
            ("Action", "Originate"),
            ("ActionID", attempt),
            ("Channel", request.dial_string),
            ("Context", CONTEXT_ANSWERED),
            ("Exten", "s"),
            ("Priority", "1"),
            ("Timeout", str(round(request.ring_timeout_s * 1000))),
            ("CallerID", f'"{name}" <{request.caller_id_number}>'),
            ("Async", "true"),
            ("ChannelId", attempt),
        ]
        pairs.extend(("Variable", f"{k}={v}") for k, v in variables.items())
        masked = mask_number(request.number)
        try:
            self.tracker.register_originate(attempt, attempt, attempt, self._clock())
        except ValueError as exc:
            raise PbxError(f"attempt {attempt} to {masked}: {exc}; the call was not placed again") from exc
        self._numbers[attempt] = masked
        try:
            await self.client.send_action(pairs)
        except AmiActionError as exc:
            self._drop(attempt)
            raise PbxError(f"attempt {attempt} to {masked}: {exc}; the call was not placed") from exc
        except ValueError as exc:
            self._drop(attempt)
            raise PbxError(f"attempt {attempt} to {masked}: {exc}") from exc
        except ActionTimeout:
            # Asterisk may still place it: never re-send; check its channel later.
            self._unconfirmed[attempt] = (
                self._clock() + request.ring_timeout_s + 2 * self.settings.action_timeout_s
            )
            log.warning("attempt %s to %s: Originate not acknowledged; will reconcile", attempt, masked)
            return
        except PbxUnavailable:
            # The link dropped with the Originate written: reconciled when it is back.
            self._at_risk.add(attempt)
            log.warning("attempt %s to %s: AMI link lost during Originate; will reconcile", attempt, masked)
            return
        log.info("attempt %s to %s: originate queued (campaign %s)", attempt, masked, request.campaign_id)

    async def hangup(self, attempt_id: str, cause: int = Q850.NORMAL_CLEARING) -> None:
        self.tracker.note_hangup_requested(attempt_id)
        action = {"Action": "Hangup", "Channel": attempt_id, "Cause": str(int(cause))}
        try:
            await self.client.send_action(action)
        except AmiActionError as exc:
            if "No such channel" in str(exc):
                log.info("attempt %s: hangup requested, the call had already ended", attempt_id)
                return
            raise

    async def connect_to_agent(self, attempt_id: str, agent_id: str) -> None:
        exten = _check(_EXTEN, agent_id, "agent id")
        await self.client.send_action(
            {
                "Action": "Redirect",
                "Channel": attempt_id,
                "Context": CONTEXT_CONNECT,
                "Exten": exten,
                "Priority": "1",
            }
        )
        # Connected only when Asterisk says the customer joined the bridge (ConfbridgeJoin).

    async def play_then_hangup(self, attempt_id: str, message: str) -> None:
        _check(_SOUND, message, "message")
        await self.client.send_action(
            {"Action": "Setvar", "Channel": attempt_id, "Variable": "DIALER_MESSAGE", "Value": message}
        )
        await self.client.send_action(
            {
                "Action": "Redirect",
                "Channel": attempt_id,
                "Context": CONTEXT_ABANDON,
                "Exten": "s",
                "Priority": "1",
            }
        )
        log.info("attempt %s: message %s then hang-up", attempt_id, message)

    async def has_sound(self, name: str) -> bool | None:
        """Whether Asterisk has the sound ``name`` (as ``Playback`` names it); None: cannot tell.

        The manager user has neither the ``command`` nor the ``system`` class, and no other AMI
        action looks at sound files, so Asterisk itself cannot be asked.  With ``sounds_dir`` set
        (Asterisk on this host) the file is looked for there: ``<sounds_dir>/<name>.<format>``,
        or ``<name>.<format>`` for an absolute name.
        """
        if not _SOUND.match(name) or ".." in name:
            return False  # play_then_hangup refuses it
        if not self.settings.sounds_dir:
            return None
        base = Path(name) if name.startswith("/") else Path(self.settings.sounds_dir, name)
        return any(base.with_name(f"{base.name}.{ext}").is_file() for ext in _SOUND_FORMATS)

    async def _redirect(self, attempt_id: str, context: str, exten: str) -> None:
        action = {
            "Action": "Redirect",
            "Channel": attempt_id,
            "Context": context,
            "Exten": exten,
            "Priority": "1",
        }
        await self.client.send_action(action)

    async def login_agent(self, agent_id: str, endpoint: str) -> str:
        """Call the agent's phone into their personal bridge; returns the leg's id.

        The leg is tracked like a call: its ``Answered`` / ``HungUp`` /
        ``Failed`` events carry this id, so the runtime sees the agent leave.
        """
        _check(_EXTEN, agent_id, "agent id")
        if not endpoint:
            raise PbxError(f"agent {agent_id}: empty endpoint; set the agent's phone (e.g. PJSIP/1001)")
        await self.clear_stale_agent_legs(agent_id)
        # Unique across restarts: after a crash the old leg may still sit in its bridge, and
        # Asterisk refuses a ChannelId that is in use.
        leg = f"agent-{agent_id}-{self._boot_tag}-{next(self._agent_legs)}"
        self.tracker.register_agent_leg(leg, agent_id, self._clock(), leg)
        self._numbers[leg] = f"agent {agent_id}"
        fields = {
            "Action": "Originate",
            "ActionID": leg,
            "Channel": endpoint,
            "Application": "ConfBridge",
            "Data": AGENT_BRIDGE_DATA.format(agent_id=agent_id),
            "Timeout": "30000",
            "CallerID": f'"Dialer" <{agent_id}>',
            "Async": "true",
            "ChannelId": leg,
        }
        try:
            await self.client.send_action(fields)
        except (AmiActionError, ValueError) as exc:
            self._drop(leg)
            raise PbxError(f"agent {agent_id}: login call refused: {exc}") from exc
        except (ActionTimeout, PbxUnavailable):
            self._at_risk.add(leg)
            raise
        log.info("agent %s: login call %s queued", agent_id, leg)
        return leg

    async def clear_stale_agent_legs(self, agent_id: str | None = None) -> list[str]:
        """Hang up agent phone legs left in ``agent_<id>`` bridges (after a crash or a stop).

        A leg left behind fills the agent's bridge: the next customer would
        hear ``conf-locked``.  With ``agent_id`` only that agent's bridge is
        cleared (at login); without, every agent bridge (at start and after a
        reconnect).  Legs this adapter still tracks, and customers (whose
        channel id is an attempt id and who joined with no agent profile), are
        left alone.
        """
        listing = await self.client.send_action({"Action": "CoreShowChannels"})
        ours = set(self.tracker.agent_legs())
        stale: list[str] = []
        for entry in listing.events:
            uid = entry.get("Uniqueid", "")
            data = entry.get("ApplicationData", "")
            bridge = data.split(",", 1)[0]
            agent = agent_of_bridge(bridge)
            if not uid or uid in ours or entry.get("Application") != "ConfBridge" or agent is None:
                continue
            if agent_id is not None and agent != agent_id:
                continue
            if not (uid.startswith("agent-") or ",dialer_agent" in data):
                continue  # a customer in the bridge: never cut off here
            stale.append(uid)
        for uid in stale:
            log.warning("agent bridge %s: hanging up a stale agent leg %s", agent_id or "(any)", uid)
            try:
                await self.client.send_action({"Action": "Hangup", "Channel": uid, "Cause": "16"})
            except AmiActionError as exc:
                log.info("stale agent leg %s already gone: %s", uid, exc)
        return stale

    # ------------------------------------------------------------------
    # Supervision (telephony.supervision): recordings on demand, listen / whisper / barge

    async def _mute_new_recording(self, attempt_id: str) -> None:
        """Silence a recording on demand until the agent asks; one that cannot be muted is stopped."""
        try:
            await self.set_recording_muted(attempt_id, True)
            return
        except PbxError as exc:
            log.error("attempt %s: the on-demand recording could not be muted (%s): stopped", attempt_id, exc)
        try:
            await self.client.send_action({"Action": "StopMixMonitor", "Channel": attempt_id})
        except (AmiActionError, PbxError) as exc:
            log.error("attempt %s: the recording could not be stopped either: %s", attempt_id, exc)

    async def set_recording_muted(self, attempt_id: str, muted: bool) -> None:
        """AMI ``MixMonitorMute`` (``call`` class): silence or resume the call's recording."""
        attempt = _check(_ID, attempt_id, "attempt id")
        action = {
            "Action": "MixMonitorMute",
            "Channel": attempt,
            "Direction": "both",
            "State": "1" if muted else "0",
        }
        try:
            await self.client.send_action(action)
        except AmiActionError as exc:
            raise PbxError(f"Asterisk did not {'mute' if muted else 'resume'} the recording: {exc}") from exc

    async def agent_channel(self, agent_id: str) -> str | None:
        """The channel name of the agent's phone leg in its bridge ``agent_<id>``, if any."""
        listing = await self.client.send_action({"Action": "CoreShowChannels"})
        for entry in listing.events:
            data = entry.get("ApplicationData", "")
            if entry.get("Application") != "ConfBridge" or agent_of_bridge(data.split(",", 1)[0]) != agent_id:
                continue
            uid = entry.get("Uniqueid", "")
            if uid.startswith("agent-") or ",dialer_agent" in data:
                return entry.get("Channel") or None
        return None

    async def monitor(self, agent_id: str, mode: MonitorMode, endpoint: str) -> str:
        """Originate the supervisor's phone into ``ChanSpy(<agent's channel>,q[w|B]E)``.

        Allowed with the ``originate`` write class (sip_supervisor_listen_whisper_barge):
        ``q`` no beep, ``w`` whisper to the agent, ``B`` barge (both hear), ``E`` end with the spied call.
        """
        _check(_EXTEN, agent_id, "agent id")
        if not re.fullmatch(r"[A-Za-z0-9_./@:+-]{1,200}", endpoint):
            raise MonitorRefused(f"supervisor phone {endpoint!r} is not a channel (e.g. PJSIP/2001)")
        try:
            channel = await self.agent_channel(agent_id)
        except AmiActionError as exc:
            raise MonitorRefused(f"Asterisk {self.name} refused to list its channels: {exc}") from exc
        if channel is None:
            raise MonitorRefused(f"agent {agent_id} has no phone leg in its bridge on Asterisk {self.name}")
        options = {MonitorMode.LISTEN: "q", MonitorMode.WHISPER: "qw", MonitorMode.BARGE: "qB"}[mode] + "E"
        leg = f"spy-{agent_id}-{self._boot_tag}-{next(self._spy_legs)}"
        fields = {
            "Action": "Originate",
            "ActionID": leg,
            "Channel": endpoint,
            "Application": "ChanSpy",
            "Data": f"{channel},{options}",
            "Timeout": "30000",
            "CallerID": f'"{mode.value}" <{agent_id}>',
            "Async": "true",
            "ChannelId": leg,
        }
        try:
            await self.client.send_action(fields)
        except AmiActionError as exc:
            raise MonitorRefused(
                f"Asterisk {self.name} refused to call the supervisor's phone into ChanSpy: {exc} "
                "(the AMI user needs the originate write class)"
            ) from exc
        log.info("agent %s: supervisor %s leg %s queued (%s)", agent_id, mode.value, leg, endpoint)
        return leg

    async def end_monitor(self, leg_id: str) -> None:
        leg = _check(_ID, leg_id, "monitoring leg")
        try:
            await self.client.send_action({"Action": "Hangup", "Channel": leg, "Cause": "16"})
        except AmiActionError as exc:
            if "No such channel" not in str(exc):
                raise PbxError(f"Asterisk did not hang up the supervisor's leg {leg}: {exc}") from exc

    async def live_attempts(self) -> set[str]:
        return set(await self._live_channels())

    async def _live_channels(self) -> dict[str, str]:
        listing = await self.client.send_action({"Action": "CoreShowChannels"})
        return {e["Uniqueid"]: e.get("ChannelState", "") for e in listing.events if "Uniqueid" in e}

    # ------------------------------------------------------------------
    # Events

    def _on_ami_event(self, msg: AmiMessage, at: float) -> None:
        for event in self.tracker.feed(msg, at):
            self._emit(event)

    def _emit(self, event: CallEvent) -> None:
        attempt = event.attempt_id
        number = self._numbers.get(attempt, "?")
        if isinstance(event, Failed):
            detail = f"{event.outcome.value} cause={event.cause} {event.detail}".rstrip()
        elif isinstance(event, HungUp):
            detail = f"cause={event.cause} {event.cause_text}".rstrip()
        elif isinstance(event, AmdDetected):
            detail = f"{event.result.value} {event.detail}".rstrip()
        elif isinstance(event, Connected):
            detail = f"agent {event.agent_id}"
        else:
            detail = ""
        log.info("attempt %s %s %s %s", attempt, type(event).__name__, number, detail)
        if isinstance(event, Failed | HungUp):
            self._numbers.pop(attempt, None)
            self._unconfirmed.pop(attempt, None)
            self._at_risk.discard(attempt)
        self._events.put_nowait(event)

    def _drop(self, attempt: str) -> None:
        self.tracker.forget_attempt(attempt)
        self._numbers.pop(attempt, None)

    # ------------------------------------------------------------------
    # Reconnects and housekeeping

    def _on_link_down(self) -> None:
        self._link_lost_once = True
        self._at_risk.update(self.tracker.in_flight())

    async def _on_link_up(self) -> None:
        if self._link_lost_once:
            await self._reconcile_at_risk()
        try:
            await self.clear_stale_agent_legs()
        except PbxError as exc:
            log.warning("could not look for stale agent legs: %s", exc)

    async def _reconcile_at_risk(self) -> None:
        if not self._at_risk:
            return
        attempts = sorted(self._at_risk)
        live = await self._live_channels()
        events = self.tracker.reconcile(attempts, live, self._clock(), "AMI link lost; the call is gone")
        self._at_risk.clear()
        self.reconciled_lost += sum(1 for e in events if isinstance(e, Failed | HungUp))
        log.info("AMI back: %d in-flight attempt(s) checked, %d ended while away", len(attempts), len(events))
        for event in events:
            self._emit(event)

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(_HOUSEKEEPING_S)
            now = self._clock()
            for event in self.tracker.expire(now):
                self._emit(event)
            if self._at_risk and self.client.connected:
                try:
                    await self._reconcile_at_risk()  # the check on reconnect failed: try again
                except PbxError as exc:
                    log.warning("could not reconcile attempts in flight during the AMI outage: %s", exc)
            due = [a for a, deadline in self._unconfirmed.items() if deadline <= now]
            if due and self.client.connected:
                try:
                    live = await self._live_channels()
                except PbxError as exc:
                    log.warning("could not list live channels to check unacknowledged originates: %s", exc)
                    continue
                for attempt in due:
                    self._unconfirmed.pop(attempt, None)
                for event in self.tracker.reconcile(due, live, self._clock(), "Originate never acknowledged"):
                    self._emit(event)
