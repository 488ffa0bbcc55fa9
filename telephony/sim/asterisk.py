"""A protocol-faithful Asterisk 22 PBX simulator: AMI over TCP, FastAGI out, the captures' events.

Speaks the manager protocol as Asterisk does (banner, Login, FullyBooted,
Originate, Hangup, Redirect, Setvar, Getvar, CoreShowChannels, UserEvent,
Ping, Logoff) and plays every call with the event sequences recorded from
real Asterisk in ``../shared/asterisk-transcripts`` (see ``asterisk_pbx``).
Used by the adapter's end-to-end tests, the demo and the benchmarks::

    async with AsteriskSimulator(ScriptedCallee(), shape="sip", time_scale=10) as sim:
        ... connect an AMI client to 127.0.0.1:sim.port ...

``shape`` is the PBX's way to its callees: ``"sip"`` a PJSIP trunk (one
``PJSIP/<endpoint>-<n>`` channel per call; Local channels work too),
``"local"`` the lab's Local channels only (``;1``/``;2`` pairs).  The dial
string's technology decides each call's channels, as on Asterisk.

``crash()`` drops every connection and call without a word (a killed
Asterisk); ``start()`` again is the restarted PBX.  ``restart()`` (and
``stop()``) is ``core restart now``: calls are hung up, ``Event: Shutdown``
goes out to a user with the ``system`` read class (``system_read``; the
project's ``dialer`` user has not, and gets no FullyBooted either), then the
connections close.  ``version`` 22.10 gives the restart of
``sip_restart_least_privilege`` (``asterisk_restart``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from types import TracebackType
from typing import Literal

from telephony.asterisk.protocol import AmiMessage, AmiParser, encode
from telephony.sim import ami_events as ev
from telephony.sim import asterisk_mixmonitor as mixmonitor
from telephony.sim.ami_events import Headers, SimChannel
from telephony.sim.asterisk_agi import DEFAULT_AGI_PORT, run_agi
from telephony.sim.asterisk_dialplan import DialplanName
from telephony.sim.asterisk_pbx import Leg, OriginateRefused, PbxEngine
from telephony.sim.asterisk_phones import phone_dials_in
from telephony.sim.asterisk_restart import hold_for_agi, restart_calls
from telephony.sim.asterisk_spy import CONFBRIDGE_ACTIONS, confbridge_action
from telephony.sim.model import CalleeModel, ScriptedCallee

log = logging.getLogger(__name__)

BANNER = b"Asterisk Call Manager/11.0.0\r\n"
SHUTDOWN_DELAY_S = 1.1  # PBX seconds between the last hang-up and Event: Shutdown (capture)


class _Session:
    """One manager connection."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.authenticated = False
        self.closed = False

    def write(self, data: bytes) -> None:
        if self.closed or self.writer.is_closing():
            return
        self.writer.write(data)


class AsteriskSimulator:
    """The simulated Asterisk: one AMI listener, its calls, and the FastAGI connections it opens."""

    def __init__(
        self,
        model: CalleeModel | None = None,
        shape: Literal["local", "sip"] = "sip",
        time_scale: float = 1.0,
        username: str = "dialer",
        secret: str = "dialer-secret",
        fastagi_host: str = "127.0.0.1",
        fastagi_port: int | None = None,
        seed: int = 1,
        dialplan: DialplanName = "production",
        lab_peers: bool | None = None,
        agent_hangs_up_after_s: float | None = None,
        system_read: bool = True,
        version: str = "22.7.0",
    ) -> None:
        if shape not in ("local", "sip"):
            raise ValueError(f"shape must be 'local' or 'sip', got {shape!r}")
        if dialplan not in ("production", "lab"):
            raise ValueError(f"dialplan must be 'production' or 'lab', got {dialplan!r}")
        if time_scale <= 0:
            raise ValueError(f"time_scale must be > 0, got {time_scale}")
        self.model: CalleeModel = model if model is not None else ScriptedCallee()
        self.shape: Literal["local", "sip"] = shape
        self.time_scale = time_scale
        self.username = username
        self.secret = secret
        self.fastagi_host = fastagi_host
        self.fastagi_port = fastagi_port
        self.seed = seed
        self.dialplan: DialplanName = dialplan
        self.lab_peers = lab_peers
        self.agent_hangs_up_after_s = agent_hangs_up_after_s
        # The AMI user has the "system" read class (FullyBooted, Shutdown); the project's
        # least-privilege "dialer" user has not (manager_dialer.conf).
        self.system_read = system_read
        self.version = version
        self.dialstate_wins: set[str] = set()  # see PbxEngine.dialstate_wins
        # The "system" write class (AMI MixMonitor, Originate of MixMonitor/AGI/Exec/System);
        # the project's "dialer" user has not.  Recordings: see asterisk_mixmonitor.
        self.system_write = False
        self.recordings = mixmonitor.Recordings()
        # The "originate" write class (manager_dialer.conf gives it to "dialer"); without it
        # Asterisk answers every Originate "Permission denied" (no channel).
        self.originate_write = True
        self.originates_received: list[str] = []
        self.unanswered_actions: set[str] = set()
        self.port = 0
        self._server: asyncio.Server | None = None
        self._sessions: set[_Session] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self._engine: PbxEngine | None = None
        self._boot = time.monotonic()
        self._runs = 0

    # -- lifecycle -----------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Start listening (again, after crash(): a freshly booted Asterisk with no channels)."""
        if self._server is not None:
            raise RuntimeError("the simulator is already running; crash() or stop() it first")
        agi_url = f"agi://{self.fastagi_host}:{self.fastagi_port or DEFAULT_AGI_PORT}/answered"
        self._engine = PbxEngine(
            emit=self._broadcast,
            model=self.model,
            shape=self.shape,
            dialplan=self.dialplan,
            time_scale=self.time_scale,
            agi_url=agi_url,
            agi_runner=run_agi,
            seed=self.seed + self._runs,
            lab_peers=self.lab_peers,
            agent_hangs_up_after_s=self.agent_hangs_up_after_s,
            version=self.version,
        )
        self._engine.dialstate_wins = self.dialstate_wins
        self._engine.system_write = self.system_write
        self._engine.recordings = self.recordings
        self._runs += 1
        self._boot = time.monotonic()
        self._server = await asyncio.start_server(self._serve, host, port or self.port or 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def crash(self) -> None:
        """Drop every connection and call abruptly, no events: a killed Asterisk."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for session in list(self._sessions):
            session.closed = True
            session.writer.transport.abort()
        self._sessions.clear()
        if self._engine is not None:
            await self._engine.abort()
        await self._cancel_handlers()
        if server is not None:
            with contextlib.suppress(Exception):
                await server.wait_closed()

    async def stop(self) -> None:
        """``core restart now`` as Asterisk 22.7 did it: hang up every call, Event: Shutdown, close."""
        if self._server is None:
            return
        self._server.close()
        engine = self._engine
        if engine is not None:
            busy = bool(engine.legs)
            engine.shutdown_calls()
            if busy:
                await asyncio.sleep(SHUTDOWN_DELAY_S / self.time_scale)
        await self._close_links(engine)

    async def restart(self) -> None:
        """``core restart now`` (see ``asterisk_restart``); ``stop()`` for a simulated Asterisk 22.7.

        Channels are hung up, a channel held in a FastAGI session delays the end up to
        RESTART_HOLD_S, then ``Event: Shutdown`` (only with the ``system`` read class)
        and the connections close.  ``start()`` again is the restarted PBX.
        """
        engine = self._engine
        if self._server is None or engine is None or not engine.modern:
            await self.stop()
            return
        self._server.close()
        restart_calls(engine)
        await hold_for_agi(engine)
        await self._close_links(engine)

    async def _close_links(self, engine: PbxEngine | None) -> None:
        if self.system_read:
            self._broadcast(
                ev.event("Shutdown", ev.PRIV_SYSTEM, [("Shutdown", "Cleanly"), ("Restart", "True")])
            )
        for session in list(self._sessions):
            with contextlib.suppress(Exception):
                await session.writer.drain()
            session.closed = True
            session.writer.close()
        self._sessions.clear()
        if engine is not None:
            await engine.abort()
        await self._cancel_handlers()
        server, self._server = self._server, None
        if server is not None:
            with contextlib.suppress(Exception):
                await server.wait_closed()

    async def _cancel_handlers(self) -> None:
        """Wait for the connection handlers to see their closed sockets (cancel only stragglers)."""
        current = asyncio.current_task()
        handlers = [t for t in self._handlers if t is not current]
        if not handlers:
            return
        _, pending = await asyncio.wait(handlers, timeout=1.0)
        for task in pending:
            task.cancel()

    async def __aenter__(self) -> AsteriskSimulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- what tests look at ------------------------------------------------------------

    def phone_dials_in(self, endpoint: str, exten: str, hangs_up_after_s: float | None = None) -> str:
        """The phone of PJSIP ``endpoint`` dials ``exten`` in ``[dialer-agent]``; its Uniqueid.

        See ``asterisk_phones``: Answer, then the agent's ConfBridge; the phone sends
        BYE ``hangs_up_after_s`` PBX seconds after the answer (None: it stays).
        """
        return phone_dials_in(self._engine_or_fail(), endpoint, exten, hangs_up_after_s)

    def live_channels(self) -> list[SimChannel]:
        return self._engine.live_channels() if self._engine is not None else []

    async def send_raw(self, data: bytes) -> None:
        """Write raw bytes to every connected manager client (malformed-stream tests)."""
        for session in list(self._sessions):
            session.write(data)
            with contextlib.suppress(Exception):
                await session.writer.drain()

    @property
    def running(self) -> bool:
        return self._server is not None

    # -- events -------------------------------------------------------------------

    def _broadcast(self, headers: Headers) -> None:
        data = encode(headers)
        for session in self._sessions:
            if session.authenticated:
                session.write(data)

    # -- one manager connection ----------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        session = _Session(writer)
        self._sessions.add(session)
        parser = AmiParser(expect_banner=False)
        try:
            session.write(BANNER)
            while not session.closed:
                data = await reader.read(65536)
                if not data:
                    break
                errors_before = parser.error_count
                messages = parser.feed(data)
                for _ in range(parser.error_count - errors_before):
                    session.write(encode([("Response", "Error"), ("Message", "Missing action in request")]))
                for message in messages:
                    keep_going = await self._action(session, message)
                    if not keep_going:
                        session.closed = True
                        break
                if not session.closed:
                    await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._sessions.discard(session)
            self._handlers.discard(task)
            if not writer.is_closing():
                with contextlib.suppress(Exception):
                    await writer.drain()
                writer.close()

    def _respond(self, session: _Session, action: AmiMessage, response: str, *pairs: tuple[str, str]) -> None:
        headers: Headers = [("Response", response)]
        if "ActionID" in action:
            headers.append(("ActionID", action["ActionID"]))
        headers.extend(pairs)
        session.write(encode(headers))

    async def _action(self, session: _Session, action: AmiMessage) -> bool:
        """Answer one action; False closes the connection."""
        name = action.get("Action", "")
        if not name:
            self._respond(session, action, "Error", ("Message", "Missing action in request"))
            return True
        lname = name.lower()
        if lname == "originate":
            self.originates_received.append(action.get("ActionID", ""))
        if lname in {a.lower() for a in self.unanswered_actions}:
            return True
        if lname == "login":
            return self._login(session, action)
        if lname == "logoff":
            self._respond(session, action, "Goodbye", ("Message", "Thanks for all the fish."))
            return False
        if not session.authenticated and lname != "challenge":
            self._respond(session, action, "Error", ("Message", "Permission denied"))
            return True
        if lname == "originate" and not self.originate_write:
            self._respond(session, action, "Error", ("Message", "Permission denied"))
            return True
        if lname in mixmonitor.ACTIONS:
            respond = functools.partial(self._respond, session, action)
            mixmonitor.manager_action(self._engine_or_fail(), lname, action, respond, self.system_write)
            return True
        handler = {
            "ping": self._ping,
            "originate": self._originate,
            "hangup": self._hangup,
            "redirect": self._redirect,
            "setvar": self._setvar,
            "getvar": self._getvar,
            "coreshowchannels": self._core_show_channels,
            "userevent": self._user_event,
            **dict.fromkeys(CONFBRIDGE_ACTIONS, self._confbridge),
        }.get(lname)
        if handler is None:
            self._respond(session, action, "Error", ("Message", "Invalid/unknown command"))
            return True
        await handler(session, action)
        return True

    def _login(self, session: _Session, action: AmiMessage) -> bool:
        if action.get("Username") != self.username or action.get("Secret") != self.secret:
            log.info("AMI login refused for user %r", action.get("Username", ""))
            self._respond(session, action, "Error", ("Message", "Authentication failed"))
            return False
        session.authenticated = True
        self._respond(session, action, "Success", ("Message", "Authentication accepted"))
        if not self.system_read:
            return True
        uptime = str(int(time.monotonic() - self._boot))
        session.write(
            encode(
                ev.event(
                    "FullyBooted",
                    ev.PRIV_SYSTEM,
                    [("Uptime", uptime), ("LastReload", uptime), ("Status", "Fully Booted")],
                )
            )
        )
        return True

    async def _ping(self, session: _Session, action: AmiMessage) -> None:
        now = time.time()
        self._respond(session, action, "Success", ("Ping", "Pong"), ("Timestamp", f"{now:.6f}"))

    def _engine_or_fail(self) -> PbxEngine:
        if self._engine is None:
            raise RuntimeError("the simulator is not running")
        return self._engine

    async def _originate(self, session: _Session, action: AmiMessage) -> None:
        engine = self._engine_or_fail()
        try:
            call = engine.originate(action)
        except OriginateRefused as exc:
            self._respond(session, action, "Error", ("Message", str(exc)))
            return
        if call is None or call.asynchronous:
            self._respond(session, action, "Success", ("Message", "Originate successfully queued"))
            return
        assert call.outcome is not None
        answered = await call.outcome
        if answered:
            self._respond(session, action, "Success", ("Message", "Originate successfully queued"))
        else:
            self._respond(session, action, "Error", ("Message", "Originate failed"))

    async def _hangup(self, session: _Session, action: AmiMessage) -> None:
        engine = self._engine_or_fail()
        leg = engine.find(action.get("Channel", ""))
        if leg is None:
            self._respond(session, action, "Error", ("Message", "No such channel"))
            return
        cause_raw = action.get("Cause", "16") or "16"
        cause = int(cause_raw) if cause_raw.isdigit() else 16
        self._respond(session, action, "Success", ("Message", "Channel Hungup"))
        engine.ami_hangup(leg, cause)

    async def _redirect(self, session: _Session, action: AmiMessage) -> None:
        engine = self._engine_or_fail()
        channel = action.get("Channel", "")
        if not channel:
            self._respond(session, action, "Error", ("Message", "Channel not specified"))
            return
        leg = engine.find(channel)
        if leg is None or not leg.ours or not leg.call.answered:
            self._respond(session, action, "Error", ("Message", f"Channel does not exist: {channel}"))
            return
        priority_raw = action.get("Priority", "1") or "1"
        if not priority_raw.isdigit():
            self._respond(session, action, "Error", ("Message", "Invalid priority"))
            return
        self._respond(session, action, "Success", ("Message", "Redirect successful"))
        engine.redirect(
            leg, action.get("Context", leg.chan.context), action.get("Exten", "s"), int(priority_raw)
        )

    def _variable_target(self, session: _Session, action: AmiMessage) -> tuple[str, Leg | None] | None:
        """Setvar/Getvar: the variable name and the channel's leg (None: a global), or None after an error."""
        engine = self._engine_or_fail()
        variable = action.get("Variable", "")
        if not variable:
            self._respond(session, action, "Error", ("Message", "No variable specified"))
            return None
        channel = action.get("Channel", "")
        leg = engine.find(channel) if channel else None
        if channel and leg is None:
            self._respond(session, action, "Error", ("Message", "No such channel"))
            return None
        return variable, leg

    async def _setvar(self, session: _Session, action: AmiMessage) -> None:
        target = self._variable_target(session, action)
        if target is None:
            return
        variable, leg = target
        self._respond(session, action, "Success", ("Message", "Variable Set"))
        self._engine_or_fail().setvar(leg, variable, action.get("Value", ""))

    async def _getvar(self, session: _Session, action: AmiMessage) -> None:
        target = self._variable_target(session, action)
        if target is None:
            return
        variable, leg = target
        source = leg.chan.variables if leg is not None else self._engine_or_fail().global_vars
        self._respond(session, action, "Success", ("Variable", variable), ("Value", source.get(variable, "")))

    async def _core_show_channels(self, session: _Session, action: AmiMessage) -> None:
        engine = self._engine_or_fail()
        self._respond(session, action, "Success", ("EventList", "start"), ("Message", "Channels will follow"))
        action_id = [("ActionID", action["ActionID"])] if "ActionID" in action else []
        channels = engine.live_channels()
        now = time.monotonic()
        for ch in channels:
            seconds = int((now - ch.created) * self.time_scale)
            duration = f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
            session.write(
                encode(
                    [
                        ("Event", "CoreShowChannel"),
                        *action_id,
                        *ch.snapshot(),
                        ("BridgeId", ch.bridge.uniqueid if ch.bridge is not None else ""),
                        ("Application", ch.application),
                        ("ApplicationData", ch.app_data),
                        ("Duration", duration),
                    ]
                )
            )
        session.write(
            encode(
                [
                    ("Event", "CoreShowChannelsComplete"),
                    *action_id,
                    ("EventList", "Complete"),
                    ("ListItems", str(len(channels))),
                ]
            )
        )

    async def _confbridge(self, session: _Session, action: AmiMessage) -> None:
        engine = self._engine_or_fail()
        reply, items, events = confbridge_action(engine, action.get("Action", "").lower(), action)
        self._respond(session, action, reply[0][1], *reply[1:])
        for headers in items:
            session.write(encode(headers))
        for headers in events:
            self._broadcast(headers)

    async def _user_event(self, session: _Session, action: AmiMessage) -> None:
        name = action.get("UserEvent", "")
        if not name:
            self._respond(session, action, "Error", ("Message", "UserEvent not specified"))
            return
        self._respond(session, action, "Success", ("Message", "Event Sent"))
        fields = [(k, v) for k, v in action.items() if k not in ("Action", "ActionID", "UserEvent")]
        self._broadcast(ev.event("UserEvent", ev.PRIV_USER, [("UserEvent", name)], fields))
